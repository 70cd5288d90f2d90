/**
 * The CLI as users run it (a real process): `expertmesh logits` meets the golden tolerances on every
 * case; `generate` and `make-checkpoint` work; usage errors exit 2 with a message.
 */
import { execFile } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { compareLogits, goldenCases } from "./testing/golden.ts";

const run = promisify(execFile);
const cli = new URL("./cli/main.ts", import.meta.url).pathname;
const tmp = mkdtempSync(join(tmpdir(), "expertmesh-cli-"));

describe("expertmesh logits", () => {
  it.each(goldenCases())("$name matches the reference in exact mode", async (g) => {
    const out = join(tmp, `${g.name}.json`);
    await run(process.execPath, [cli, "logits", "--model", g.dir, "--tokens", g.tokens.join(","), "--out", out, "--precision", "exact"]);
    const rows = (JSON.parse(readFileSync(out, "utf8")) as { logits: number[][] }).logits;
    expect(rows).toHaveLength(g.tokens.length);
    const flat = new Float32Array(rows.flat());
    const cmp = compareLogits(flat, g, 1e-3);
    expect(cmp.relL2).toBeLessThanOrEqual(1e-4);
    expect(cmp.maxAbs).toBeLessThanOrEqual(1e-3);
    expect(cmp.top1Mismatches).toEqual([]);
  });
});

describe("expertmesh generate / make-checkpoint / errors", () => {
  it("generates the reference's greedy tokens", async () => {
    const g = goldenCases().find((c) => c.name === "g1-tiny") as ReturnType<typeof goldenCases>[number];
    const { stdout } = await run(process.execPath, [
      cli,
      "generate",
      "--model",
      g.dir,
      "--tokens",
      g.tokens.join(","),
      "--max-tokens",
      "8",
      "--no-stop-on-eos",
    ]);
    const tokens = (JSON.parse(stdout) as { tokens: number[] }).tokens;
    const firstTie = g.fp32.greedy_margins.findIndex((m) => m <= 1e-3);
    const n = firstTie < 0 ? 8 : firstTie;
    expect(tokens.slice(0, n)).toEqual(g.fp32.greedy.slice(0, n));
  });

  it("writes a tiny checkpoint that then serves logits", async () => {
    const dir = join(tmp, "tiny");
    const { stdout } = await run(process.execPath, [cli, "make-checkpoint", "--shape", "tiny", "--out", dir, "--seed", "3"]);
    expect(JSON.parse(stdout)).toMatchObject({ out: dir });
    const { stdout: logits } = await run(process.execPath, [cli, "logits", "--model", dir, "--tokens", "200006,17360,200008"], {
      maxBuffer: 256 * 1024 * 1024,
    });
    const rows = (JSON.parse(logits) as { logits: number[][] }).logits;
    expect(rows).toHaveLength(3);
    expect(rows[0]).toHaveLength(201088);
    expect(rows.flat().every(Number.isFinite)).toBe(true);
  });

  it("exits 2 with usage on bad arguments and 1 naming the file on a broken model", async () => {
    const usage = await run(process.execPath, [cli, "logits", "--model", tmp, "--tokens", "1,x"]).catch(
      (e: { code: number; stderr: string }) => e,
    );
    expect(usage).toMatchObject({ code: 2 });
    expect((usage as { stderr: string }).stderr).toContain("--tokens: 'x' is not a token id");
    const broken = await run(process.execPath, [cli, "logits", "--model", tmp, "--tokens", "1"]).catch(
      (e: { code: number; stderr: string }) => e,
    );
    expect(broken).toMatchObject({ code: 1 });
    expect((broken as { stderr: string }).stderr).toContain(`${tmp}/config.json`);
  });

  it("the issue's repro: `logits` on a config with rope_theta -1 exits 1 naming the key, never printing null logits", async () => {
    const dir = goldenCases().find((c) => c.name === "g1-tiny")?.dir as string;
    const config = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
    const bad = join(tmp, "theta");
    cpSync(dir, bad, { recursive: true });
    writeFileSync(join(bad, "config.json"), JSON.stringify({ ...config, rope_theta: -1 }));
    const err = (await run(process.execPath, [cli, "logits", "--model", bad, "--tokens", "1,2"]).catch((e: unknown) => e)) as {
      code: number;
      stdout: string;
      stderr: string;
    };
    expect(err.code).toBe(1);
    expect(err.stderr).toContain(`${bad}/config.json: 'rope_theta' must be greater than 1 (got -1)`);
    expect(err.stdout).not.toContain("null");
  });

  it("expertmesh batch is the Batch API client (usage error → exit 2 with its usage)", async () => {
    const err = (await run(process.execPath, [cli, "batch", "frobnicate"]).catch((e: unknown) => e)) as { code: number; stderr: string };
    expect(err.code).toBe(2);
    expect(err.stderr).toMatch(/usage: expertmesh batch <command>/);
  });
});
