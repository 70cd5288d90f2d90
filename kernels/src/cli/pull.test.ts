/**
 * expertmesh pull against a local hub (pull-test-hub.ts) serving a synthetic checkpoint: a full pull is
 * byte-identical and loads; a killed pull resumes; a corrupted byte is caught; offline, gated and unknown
 * repositories end with one clear line; a re-run of a complete pull downloads nothing.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SHAPES } from "../checkpoint/shapes.ts";
import { writeSyntheticCheckpoint } from "../checkpoint/synthetic.ts";
import { Model } from "../model.ts";
import { MARKER, runPull } from "./pull.ts";
import { repoFiles, startTestHub, type TestHub } from "./pull-test-hub.ts";

const REPO = "openai/gpt-oss-tiny";
const tmp = mkdtempSync(join(tmpdir(), "expertmesh-pull-"));
const src = join(tmp, "src");
const shape = { ...SHAPES.tiny, vocab: 4096 };
let hub: TestHub;

beforeAll(async () => {
  writeSyntheticCheckpoint({ shape, out: src, seed: 5, shardBytes: 1_000_000 });
  hub = await startTestHub(
    REPO,
    repoFiles(src, {
      "tokenizer.json": Buffer.from('{"version":"1.0"}'),
      "README.md": Buffer.from("# not needed\n"),
      "original/model.safetensors": Buffer.alloc(4096, 7),
      "metal/model.bin": Buffer.alloc(4096, 9),
    }),
  );
});
afterAll(async () => hub?.close());

/** runPull with its output captured. */
async function run(argv: string[], env: NodeJS.ProcessEnv = {}, minRangeBytes?: number) {
  const r = { code: 0, out: "", err: "" };
  r.code = await runPull(argv, {
    env,
    out: (t) => {
      r.out += t;
    },
    err: (t) => {
      r.err += t;
    },
    tty: false,
    ...(minRangeBytes ? { minRangeBytes } : {}),
  });
  return r;
}

const pull = (args: string[], env: NodeJS.ProcessEnv = {}) => run([REPO, "--endpoint", hub.url, ...args], env, 100_000);

/** The files ExpertMesh needs: everything but README and the original/ and metal/ copies. */
function wanted() {
  return hub.files.filter((f) => !f.path.includes("/") && f.path !== "README.md");
}

function expectIdentical(dir: string): void {
  for (const f of wanted()) expect(readFileSync(join(dir, f.path)).equals(f.data), f.path).toBe(true);
  expect(existsSync(join(dir, "original"))).toBe(false);
  expect(existsSync(join(dir, "metal"))).toBe(false);
  expect(existsSync(join(dir, "README.md"))).toBe(false);
  expect(readdirSync(dir).filter((n) => n.includes(".part"))).toEqual([]);
}

const totalBytes = () => wanted().reduce((s, f) => s + f.data.length, 0);

describe("expertmesh pull", () => {
  it("pulls the needed files in parallel ranges, byte-identical, and the engine loads them", async () => {
    const dir = join(tmp, "full");
    hub.served = 0;
    const r = await pull(["--dir", dir, "--connections", "4"]);
    expect(r.err).not.toContain("expertmesh pull:");
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ dir, files: wanted().length, downloaded: wanted().length });
    expect(wanted().length).toBeGreaterThan(4); // more than one page of the tree listing
    expectIdentical(dir);
    expect(hub.served).toBe(totalBytes());
    const [pulled, original] = [await Model.load(dir), await Model.load(src)];
    expect(pulled.config).toEqual(original.config);

    // A re-run trusts the completion record and the sizes: nothing is downloaded.
    hub.served = 0;
    const again = await pull(["--dir", dir]);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.out)).toMatchObject({ downloaded: 0, bytes: 0 });
    expect(hub.served).toBe(0);
    expect(JSON.parse(readFileSync(join(dir, MARKER), "utf8")).repo).toBe(REPO);

    // A file damaged on disk at the same size is trusted by a plain re-run; --verify rehashes and refetches it.
    const shard = wanted().find((f) => f.lfs) as TestHub["files"][number];
    const fd = openSync(join(dir, shard.path), "r+");
    writeSync(fd, Buffer.from([0xaa]), 0, 1, 10);
    closeSync(fd);
    const verified = await pull(["--dir", dir, "--verify"]);
    expect(verified.code).toBe(0);
    expect(JSON.parse(verified.out)).toMatchObject({ downloaded: 1, bytes: shard.data.length });
    expectIdentical(dir);
  });

  it("bad usage exits 2 with the usage line", async () => {
    const bad = await run(["not-a-repo"]);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain("expected one repository as OWNER/NAME");
    expect((await run([REPO, "--connections", "0"])).code).toBe(2);
    const unknown = await run([REPO, "--bogus"]);
    expect(unknown.code).toBe(2);
    expect(unknown.err).toContain("usage: expertmesh pull OWNER/NAME");
  });

  it("resumes a pull killed mid-download, fetching fewer bytes than the whole", async () => {
    const dir = join(tmp, "resume");
    hub.served = 0;
    hub.stallAfter = Math.floor(totalBytes() / 2);
    const main = join(import.meta.dirname, "main.ts");
    const child: ChildProcess = spawn(process.execPath, [main, "pull", REPO, "--endpoint", hub.url, "--dir", dir], {
      stdio: "ignore",
    });
    const exited = new Promise((resolve) => child.on("exit", resolve));
    // Wait until the child recorded progress of a file in flight, then kill it without warning.
    const progressed = () =>
      readdirSync(dir)
        .filter((n) => n.endsWith(".part.json"))
        .some((n) => JSON.parse(readFileSync(join(dir, n), "utf8")).ranges.some((x: { done: number }) => x.done > 0));
    while (!(existsSync(dir) && progressed())) await new Promise((r) => setTimeout(r, 50));
    child.kill("SIGKILL");
    await exited;
    hub.stallAfter = Number.POSITIVE_INFINITY;
    hub.served = 0;
    const r = await pull(["--dir", dir]);
    expect(r.code).toBe(0);
    expectIdentical(dir);
    expect(hub.served).toBeLessThan(totalBytes());
    expect(hub.served).toBeGreaterThan(0);
  });

  it("a corrupted byte is caught: deleted and fetched again once; twice is a clear failure", async () => {
    const shard = wanted().find((f) => f.lfs) as TestHub["files"][number];
    hub.corrupt.set(shard.path, 1);
    hub.served = 0;
    const once = await pull(["--dir", join(tmp, "corrupt-once")]);
    expect(once.code).toBe(0);
    expectIdentical(join(tmp, "corrupt-once"));
    expect(hub.served).toBe(totalBytes() + shard.data.length); // the bad shard came twice

    hub.corrupt.set(shard.path, 2);
    const dir = join(tmp, "corrupt-twice");
    const twice = await pull(["--dir", dir]);
    expect(twice.code).toBe(1);
    expect(twice.err).toContain(`${shard.path}: content check failed twice (expected sha256:${shard.sha256}, got sha256:`);
    expect(existsSync(join(dir, shard.path))).toBe(false);
    expect(existsSync(join(dir, `${shard.path}.part`))).toBe(false);
  });

  it("an unreachable hub is one line and exit 2", async () => {
    const down = await startTestHub(REPO, []);
    const url = down.url;
    await down.close();
    const r = await run([REPO, "--dir", join(tmp, "offline")], { HF_ENDPOINT: url });
    expect(r.code).toBe(2);
    expect(r.err).toBe(`expertmesh pull: cannot reach ${url}: ECONNREFUSED — check the network or set HF_ENDPOINT\n`);
  });

  it("a gated repository asks for HF_TOKEN, and pulls with it; an unknown one says so", async () => {
    hub.token = "hf_test_token";
    try {
      const denied = await pull(["--dir", join(tmp, "gated"), "--include", "config.json"]);
      expect(denied.code).toBe(1);
      expect(denied.err).toContain("the repository is gated or private — set HF_TOKEN");
      const ok = await pull(["--dir", join(tmp, "gated"), "--include", "config.json"], { HF_TOKEN: "hf_test_token" });
      expect(ok.code).toBe(0);
      expect(readdirSync(join(tmp, "gated")).sort()).toEqual([MARKER, "config.json"].sort());
    } finally {
      delete hub.token;
    }
    const unknown = await pull(["--dir", join(tmp, "x"), "--revision", "nope"]);
    expect(unknown.code).toBe(1);
    expect(unknown.err).toContain(`unknown repository or revision: ${REPO}@nope (HTTP 404)`);
  });
});
