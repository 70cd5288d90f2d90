/**
 * The CLI as users run it (a real process): `expertmesh logits` meets the golden tolerances on every
 * case, on the CPU and through the emulated CUDA kernels (`--device cuda-emu`, alone and over two ranks);
 * `generate` and `make-checkpoint` work; usage errors exit 2 with a message.
 */
import { execFile } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { capabilities } from "./index.ts";
import { compareLogits, type GoldenCase, goldenCases, relL2 } from "./testing/golden.ts";

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

/** `expertmesh logits` on a golden case in exact precision, with extra flags; the rows, flattened. */
async function goldenLogits(g: GoldenCase, ...flags: string[]): Promise<Float32Array> {
  const out = join(tmp, `${g.name}-${flags.join("_").replaceAll(/[^\w-]/g, "")}.json`);
  await run(process.execPath, [
    cli,
    "logits",
    "--model",
    g.dir,
    "--tokens",
    g.tokens.join(","),
    "--out",
    out,
    "--precision",
    "exact",
    ...flags,
  ]);
  const rows = (JSON.parse(readFileSync(out, "utf8")) as { logits: number[][] }).logits;
  expect(rows).toHaveLength(g.tokens.length);
  return new Float32Array(rows.flat());
}

describe("expertmesh logits --device", () => {
  // g1 splits two ways (4 q heads, 2 kv heads, 4 experts), and the emulator takes ~1 s on it.
  const g1 = goldenCases().find((c) => c.name === "g1-tiny") as GoldenCase;

  it("cuda-emu on g1 meets the exact tolerances; over 2 ranks (the follower on cuda-emu too) it equals one rank", async () => {
    const [one, two] = await Promise.all([
      goldenLogits(g1, "--device", "cuda-emu"),
      goldenLogits(g1, "--device", "cuda-emu", "--world", "2"),
    ]);
    const cmp = compareLogits(one, g1, 1e-3);
    expect(cmp.relL2).toBeLessThanOrEqual(1e-4);
    expect(cmp.maxAbs).toBeLessThanOrEqual(1e-3);
    expect(cmp.top1Mismatches).toEqual([]);
    expect(relL2(two, one)).toBeLessThanOrEqual(1e-4);
  });

  it("GPU-gated: cuda:0 over 2 ranks (NCCL, rank 1 on cuda:1) equals one rank on cuda:0", async (ctx) => {
    const caps = capabilities();
    if (!caps.nccl.loadable || !caps.devices.includes("cuda:1"))
      ctx.skip(`needs libnccl.so.2 and 2 CUDA devices (nccl loadable: ${caps.nccl.loadable}, CUDA devices: ${caps.cuda.deviceCount})`);
    const one = await goldenLogits(g1, "--device", "cuda:0");
    const two = await goldenLogits(g1, "--device", "cuda:0", "--world", "2");
    expect(relL2(two, one)).toBeLessThanOrEqual(1e-4);
  });

  it("generate --device cuda-emu gives the reference's greedy tokens", async () => {
    const { stdout } = await run(process.execPath, [
      cli,
      "generate",
      "--model",
      g1.dir,
      "--tokens",
      g1.tokens.join(","),
      "--max-tokens",
      "4",
      "--no-stop-on-eos",
      "--device",
      "cuda-emu",
    ]);
    const tokens = (JSON.parse(stdout) as { tokens: number[] }).tokens;
    const firstTie = g1.fp32.greedy_margins.findIndex((m) => m <= 1e-3);
    const n = firstTie < 0 ? 4 : Math.min(4, firstTie);
    expect(tokens.slice(0, n)).toEqual(g1.fp32.greedy.slice(0, n));
  });

  it("any other device is a usage error (exit 2) in logits, generate and the followers' _follow", async () => {
    for (const args of [
      ["logits", "--model", g1.dir, "--tokens", "1,2", "--device", "gpu"],
      ["logits", "--model", g1.dir, "--tokens", "1,2", "--device", "cuda:", "--world", "2"],
      ["generate", "--model", g1.dir, "--tokens", "1,2", "--max-tokens", "1", "--device", "CUDA:0"],
      [
        "_follow",
        "--model",
        g1.dir,
        "--positions",
        "2",
        "--rank",
        "1",
        "--world",
        "2",
        "--rendezvous",
        "file:///nonexistent",
        "--device",
        "cuda",
      ],
    ]) {
      const err = (await run(process.execPath, [cli, ...args]).catch((e: unknown) => e)) as { code: number; stderr: string };
      expect(err.code, args.join(" ")).toBe(2);
      expect(err.stderr).toContain("--device must be cpu, cuda-emu or cuda:N, got '");
    }
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
