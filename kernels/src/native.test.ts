/**
 * The native test executables, run as part of the suite: the shared op test (every backend against the
 * fp64 references), the communicator test (forked ranks over Gloo; NCCL where a GPU is present), the
 * CUDA emulator's test (kernels run on the CPU) and the safetensors fuzzer under AddressSanitizer (10k
 * mutated headers).
 */
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { capabilities } from "./capabilities.ts";
import { fixturesDir } from "./testing/golden.ts";

const run = promisify(execFile);
const bin = (name: string) => new URL(`../build/tests/${name}`, import.meta.url).pathname;

describe("native", () => {
  // The CUDA columns (cuda-emu, and cuda on a GPU machine) do not read EXPERTMESH_SIMD: they run once, with
  // the avx512 path; the other SIMD paths run the CPU column alone. The whole run takes minutes on a loaded
  // 2-core machine, hence the explicit limit.
  it.each([
    ["scalar", true],
    ["avx2", true],
    ["avx512", false],
  ] as const)(
    "test_ops (%s path): every op matches its fp64 reference, with named boundary cases",
    { timeout: 600_000 },
    async (simd, cpuOnly) => {
      const args = cpuOnly ? ["--cpu-only"] : [];
      const { stdout } = await run(bin("test_ops"), args, { env: { ...process.env, EXPERTMESH_SIMD: simd } });
      process.stdout.write(stdout);
      expect(stdout).toMatch(/ops: \d+ passed, 0 failed/);
      expect(stdout).not.toMatch(/^FAIL/m);
      if (cpuOnly) {
        expect(stdout).toMatch(/^SKIP cuda and cuda-emu: --cpu-only$/m);
        expect(stdout).not.toMatch(/^PASS cuda-emu\//m);
        return;
      }
      expect(stdout).toMatch(/^PASS cuda-emu\//m);
      // A GPU machine runs the CUDA column too; elsewhere it must say why it skipped.
      if (capabilities().devices.includes("cuda:0")) expect(stdout).toMatch(/^cuda: \d+ device\(s\), running/m);
      else expect(stdout).toMatch(/^SKIP cuda: /m);
    },
  );

  it("test_comm: collectives over 2 and 4 forked ranks, watchdog timeout, peer lost, abort, rendezvous (NCCL skipped without a GPU)", async () => {
    const { stdout } = await run(bin("test_comm"), { timeout: 60_000 });
    process.stdout.write(stdout);
    expect(stdout).toMatch(/comm: [1-9]\d* passed, 0 failed/);
    expect(stdout).not.toMatch(/^FAIL/m);
    expect(stdout).toMatch(/^PASS watchdog_timeout_w3$/m);
    // A GPU machine runs the NCCL cases too; here it must say why it skipped.
    if (!/^PASS nccl_/m.test(stdout)) expect(stdout).toMatch(/^SKIP nccl: /m);
  });

  it("test_emu: the CUDA emulator and the kernel wrappers against plain loops, divergence aborts in forked children", async () => {
    const { stdout } = await run(bin("test_emu"), { timeout: 120_000 });
    process.stdout.write(stdout);
    expect(stdout).toMatch(/emu: [1-9]\d* passed, 0 failed/);
    expect(stdout).not.toMatch(/^FAIL/m);
    expect(stdout).toMatch(/^PASS divergence\/half_block_skips_syncthreads /m);
    expect(stdout).toMatch(/^PASS mma\/m16n8k16_bf16_vs_fp64_of_rounded_inputs /m);
  });

  it("fuzz_safetensors: 10k mutated headers under ASan, zero crashes, every rejection typed", async () => {
    const seeds = ["g1-tiny", "g3-odd-shapes"].map((c) => join(fixturesDir(), "golden", c, "model.safetensors"));
    const { stdout } = await run(bin("fuzz_safetensors"), ["10000", ...seeds], {
      env: { ...process.env, ASAN_OPTIONS: "detect_leaks=1:abort_on_error=1", UBSAN_OPTIONS: "halt_on_error=1" },
      timeout: 300_000,
    });
    process.stdout.write(stdout);
    expect(stdout).toMatch(/fuzz: 10000 mutated headers .* 0 crashes/);
  });
});
