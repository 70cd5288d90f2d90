/**
 * The documented CLI works from a new shell that does not have the project's Node on PATH (#21 item 9):
 * `bin/expertmesh` finds the Node setup provisioned (where the system one, e.g. Node 20, cannot run
 * TypeScript) for the engine commands and for `keys`.
 */
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const root = new URL("../../", import.meta.url).pathname;
const launcher = join(root, "bin/expertmesh");
/** A login shell's environment: system directories only, none of this process's PATH. */
const bareEnv = { HOME: process.env.HOME ?? "/tmp", PATH: "/usr/local/bin:/usr/bin:/bin" };

const run = (...args: string[]) => spawnSync(launcher, args, { env: bareEnv, encoding: "utf8", cwd: "/", timeout: 60_000 });

describe("bin/expertmesh from a shell without the project's Node", () => {
  it("runs an engine command (info)", { timeout: 90_000 }, () => {
    const r = run("info");
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toHaveProperty("capabilities");
  });

  it("runs the key CLI (keys): its usage, exit status 2", { timeout: 90_000 }, () => {
    const r = run("keys", "--help");
    expect(r.status).toBe(2);
    expect(r.stdout + r.stderr).toContain("usage: keys <command>");
  });
});
