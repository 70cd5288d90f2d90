import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { capabilities } from "./index.ts";

// Ground truth for the CPU flags: the kernel's view in /proc/cpuinfo.
const cpuinfoFlags = new Set((readFileSync("/proc/cpuinfo", "utf8").match(/^flags\s*:(.*)$/m)?.[1] ?? "").trim().split(/\s+/));
const hasNvidiaDevice = (() => {
  try {
    return execFileSync("nvidia-smi", ["-L"], { encoding: "utf8", timeout: 10_000 }).includes("GPU");
  } catch {
    return false;
  }
})();

describe("capabilities()", () => {
  it("reports CPU features that match /proc/cpuinfo", () => {
    const caps = capabilities();
    expect(caps.cpu.avx2).toBe(cpuinfoFlags.has("avx2"));
    expect(caps.cpu.avx512f).toBe(cpuinfoFlags.has("avx512f"));
    expect(caps.cpu.avx512bf16).toBe(cpuinfoFlags.has("avx512_bf16"));
    expect(caps.cpu.avx512vnni).toBe(cpuinfoFlags.has("avx512_vnni"));
    expect(caps.cpu.logicalCores).toBeGreaterThan(0);
    expect(["avx512", "avx2", "scalar"]).toContain(caps.cpu.simd);
  });

  it.runIf(!hasNvidiaDevice)("reports zero CUDA devices on a machine without a GPU, without hanging", () => {
    const started = Date.now();
    const caps = capabilities();
    expect(caps.cuda.deviceCount).toBe(0);
    expect(caps.cuda.error).not.toBe("");
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it.runIf(hasNvidiaDevice)("sees the GPUs nvidia-smi lists", () => {
    const caps = capabilities();
    expect(caps.cuda.compiled).toBe(true);
    expect(caps.cuda.deviceCount).toBeGreaterThan(0);
  });

  it("lists the devices an engine may name: cpu, cuda-emu, and cuda:i for each CUDA device it sees", () => {
    const caps = capabilities();
    const gpus = caps.cuda.compiled ? caps.cuda.deviceCount : 0;
    expect(caps.devices).toEqual(["cpu", "cuda-emu", ...Array.from({ length: gpus }, (_, i) => `cuda:${i}`)]);
    if (!hasNvidiaDevice) expect(caps.devices).toEqual(["cpu", "cuda-emu"]);
  });

  it("compiled CUDA for sm_80 and sm_90 when nvcc was present at build time", () => {
    const caps = capabilities();
    const nvccPresent = (() => {
      try {
        execFileSync("sh", ["-c", "command -v nvcc || test -x /usr/local/cuda/bin/nvcc"], { stdio: "ignore" });
        return true;
      } catch {
        return false;
      }
    })();
    if (process.env.EXPERTMESH_CUDA?.toUpperCase() === "OFF" || !nvccPresent) {
      expect(caps.cuda.compiled).toBe(false);
    } else {
      expect(caps.cuda.compiled).toBe(true);
      expect(caps.cuda.architectures.split(",")).toEqual(expect.arrayContaining(["80", "90"]));
    }
  });

  it("links Gloo and opens a loopback TCP device; NCCL is only ever dlopen'ed", () => {
    const caps = capabilities();
    expect(caps.gloo.compiled).toBe(true);
    expect(caps.gloo.usable).toBe(true);
    expect(typeof caps.nccl.loadable).toBe("boolean");
    if (!caps.nccl.loadable) expect(caps.nccl.version).toBe(0);
    const deps = execFileSync("ldd", [new URL("../build/Release/expertmesh_kernels.node", import.meta.url).pathname], {
      encoding: "utf8",
    });
    expect(deps).not.toMatch(/libnccl/);
  });
});
