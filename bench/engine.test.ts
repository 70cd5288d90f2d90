/**
 * bench/engine's options as scripts/gpu-check.sh uses them, run for real on the CPU with the tiny shape:
 * --device reaches the engine, --batches / --prefill choose the rows, --prepare writes the checkpoint
 * and stops, a device this machine lacks is refused before any work. (The cuda:0 run itself is
 * gpu-check.sh's "bench" check.)
 */
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const run = promisify(execFile);
const script = new URL("./engine.ts", import.meta.url).pathname;
const dir = join(mkdtempSync(join(tmpdir(), "bench-engine-")), "tiny");
const bench = (...args: string[]) => run(process.execPath, [script, "--shape", "tiny", "--dir", dir, "--probe-gib", "0.01", ...args]);

describe("bench/engine", () => {
  it("--prepare writes the checkpoint and exits without running the engine", { timeout: 120_000 }, async () => {
    const { stdout } = await bench("--prepare");
    expect(existsSync(join(dir, ".complete"))).toBe(true);
    expect(stdout).toBe("");
  });

  it("--device cpu with chosen batches and prompt lengths: one row each, rooflines from the CPU probes", { timeout: 120_000 }, async () => {
    const { stdout } = await bench("--device", "cpu", "--steps", "1", "--batches", "1,2", "--prefill", "16,32", "--json");
    expect(stdout).toMatch(/^\| device +\| cpu \(engine backend: cpu\) \|$/m);
    for (const row of [
      "decode tok/s, batch 1",
      "decode tok/s, batch 2",
      "prefill tok/s, 16-token prompt",
      "prefill tok/s, 32-token prompt",
    ])
      expect(stdout).toMatch(new RegExp(`^\\| ${row} +\\| \\d+\\.\\d+ \\|$`, "m"));
    expect(stdout).not.toMatch(/batch 4|batch 64|1024-token/);
    expect(stdout).toMatch(/^\| batch-1 decode % of bandwidth roofline +\| \d+\.\d %/m);
    const json = JSON.parse(stdout.trim().split("\n").at(-1) as string);
    expect(json.device).toBe("cpu");
    expect(Object.keys(json.decode)).toEqual(["1", "2"]);
    expect(Object.keys(json.prefill)).toEqual(["16", "32"]);
  });

  it("--roofline h100 judges against the H100's nominal HBM bandwidth and bf16 peak", { timeout: 120_000 }, async () => {
    const { stdout } = await bench("--device", "cpu", "--steps", "1", "--batches", "1", "--prefill", "16", "--roofline", "h100");
    expect(stdout).toMatch(/^\| batch-1 decode roofline \(H100 SXM nominal HBM \/ bytes per token\) +\| \d+\.\d+ tok\/s \|$/m);
    expect(stdout).toMatch(/^\| prefill roofline \(bf16 peak \/ 2·active params\) +\|/m);
  });

  it("refuses a device this machine does not show, a bad list and an unknown roofline", { timeout: 120_000 }, async () => {
    await expect(bench("--device", "cuda:63")).rejects.toMatchObject({
      stderr: expect.stringMatching(/--device cuda:63: this machine shows cpu, cuda-emu/),
    });
    await expect(bench("--device", "gpu")).rejects.toMatchObject({
      stderr: expect.stringMatching(/--device must be cpu, cuda-emu or cuda:N, got 'gpu'/),
    });
    await expect(bench("--batches", "1,0")).rejects.toMatchObject({
      stderr: expect.stringMatching(/--batches must list positive integers/),
    });
    await expect(bench("--roofline", "a100")).rejects.toMatchObject({
      stderr: expect.stringMatching(/--roofline must be one of h100, h200/),
    });
  });
});
