import { describe, expect, it } from "vitest";
import {
  formatTable,
  isDecodeKernel,
  missingArchitectures,
  parsePtxasReport,
  sassArchitectures,
  shortName,
  spillViolations,
} from "./ptxas-report.ts";

// Captured from this build (nvcc 13.0.88 --resource-usage, sm_80 and sm_90): the reports
// scripts/keep-ptxas-report.sh kept for cuda/ops/rmsnorm.cu and cuda/ops/rope.cu. rope_kernel's
// double-precision sin/cos leaves __internal_trig_reduction_slowpathd out of line.
const RMSNORM = `ptxas info    : 0 bytes gmem
ptxas info    : Compiling entry function '_ZN6gptoss4cuda2nv14rmsnorm_kernelEPKfiS3_fPf' for 'sm_80'
ptxas info    : Function properties for _ZN6gptoss4cuda2nv14rmsnorm_kernelEPKfiS3_fPf
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 27 registers, used 1 barriers, 264 bytes smem, 392 bytes cmem[0]
ptxas info    : Compile time = 65.759 ms
ptxas info    : 0 bytes gmem
ptxas info    : Compiling entry function '_ZN6gptoss4cuda2nv14rmsnorm_kernelEPKfiS3_fPf' for 'sm_90'
ptxas info    : Function properties for _ZN6gptoss4cuda2nv14rmsnorm_kernelEPKfiS3_fPf
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 27 registers, used 1 barriers, 264 bytes smem
ptxas info    : Compile time = 64.139 ms
`;
const ROPE = `ptxas info    : 272 bytes gmem, 16 bytes cmem[4]
ptxas info    : Compiling entry function '_ZN6gptoss4cuda2nv11rope_kernelEPfiilPKiPKff' for 'sm_80'
ptxas info    : Function properties for _ZN6gptoss4cuda2nv11rope_kernelEPfiilPKiPKff
    40 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 30 registers, used 0 barriers, 40 bytes cumulative stack size, 396 bytes cmem[0], 32 bytes cmem[2]
ptxas info    : Compile time = 47.616 ms
ptxas info    : Function properties for __internal_trig_reduction_slowpathd
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : 272 bytes gmem
ptxas info    : Compiling entry function '_ZN6gptoss4cuda2nv11rope_kernelEPfiilPKiPKff' for 'sm_90'
ptxas info    : Function properties for _ZN6gptoss4cuda2nv11rope_kernelEPfiilPKiPKff
    40 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 34 registers, used 0 barriers, 40 bytes cumulative stack size
ptxas info    : Compile time = 66.097 ms
ptxas info    : Function properties for __internal_trig_reduction_slowpathd
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
`;

// A real spill: cuda/ops/sdpa_sinks.cu compiled once with -maxrregcount=16 added (ptxas raises it to 24),
// through the same launcher; the report as it was kept.
const SDPA_SPILLING = `ptxas warning : For profile sm_80 adjusting per thread register count of 16 to lower bound of 24
ptxas info    : Overriding maximum register limit 256 for '_ZN6gptoss4cuda2nv17sdpa_sinks_kernelENS1_8AttnArgsE' with  24 of maxrregcount option
ptxas info    : 0 bytes gmem
ptxas info    : Compiling entry function '_ZN6gptoss4cuda2nv17sdpa_sinks_kernelENS1_8AttnArgsE' for 'sm_80'
ptxas info    : Function properties for _ZN6gptoss4cuda2nv17sdpa_sinks_kernelENS1_8AttnArgsE
    16 bytes stack frame, 12 bytes spill stores, 12 bytes spill loads
ptxas info    : Used 24 registers, used 0 barriers, 16 bytes cumulative stack size, 464 bytes cmem[0]
ptxas info    : Compile time = 25.432 ms
ptxas warning : For profile sm_90 adjusting per thread register count of 16 to lower bound of 24
ptxas info    : Overriding maximum register limit 256 for '_ZN6gptoss4cuda2nv17sdpa_sinks_kernelENS1_8AttnArgsE' with  24 of maxrregcount option
ptxas info    : 0 bytes gmem
ptxas info    : Compiling entry function '_ZN6gptoss4cuda2nv17sdpa_sinks_kernelENS1_8AttnArgsE' for 'sm_90'
ptxas info    : Function properties for _ZN6gptoss4cuda2nv17sdpa_sinks_kernelENS1_8AttnArgsE
    8 bytes stack frame, 12 bytes spill stores, 16 bytes spill loads
ptxas info    : Used 24 registers, used 0 barriers, 8 bytes cumulative stack size
ptxas info    : Compile time = 29.693 ms
`;

// A report with its first kernel spilling on sm_90 (the stack/spill line as ptxas writes it for a spill).
const spillOnSm90 = (text: string) => {
  const i = text.indexOf("for 'sm_90'");
  return (
    text.slice(0, i) +
    text
      .slice(i)
      .replace(
        "0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads",
        "24 bytes stack frame, 24 bytes spill stores, 16 bytes spill loads",
      )
  );
};

describe("ptxas report", () => {
  it("reads registers, static shared memory, stack and spills per kernel and architecture", () => {
    const rows = parsePtxasReport(RMSNORM + ROPE);
    expect(rows.filter((r) => r.entry).map(({ mangled: _, ...r }) => r)).toEqual([
      {
        kernel: "rmsnorm_kernel",
        entry: true,
        arch: "sm_80",
        registers: 27,
        sharedBytes: 264,
        stackBytes: 0,
        spillStores: 0,
        spillLoads: 0,
      },
      {
        kernel: "rmsnorm_kernel",
        entry: true,
        arch: "sm_90",
        registers: 27,
        sharedBytes: 264,
        stackBytes: 0,
        spillStores: 0,
        spillLoads: 0,
      },
      { kernel: "rope_kernel", entry: true, arch: "sm_80", registers: 30, sharedBytes: 0, stackBytes: 40, spillStores: 0, spillLoads: 0 },
      { kernel: "rope_kernel", entry: true, arch: "sm_90", registers: 34, sharedBytes: 0, stackBytes: 40, spillStores: 0, spillLoads: 0 },
    ]);
    // the out-of-line callee: a row per architecture, after the entry that precedes it
    expect(rows.filter((r) => !r.entry).map((r) => [r.kernel, r.arch])).toEqual([
      ["__internal_trig_reduction_slowpathd", "sm_80"],
      ["__internal_trig_reduction_slowpathd", "sm_90"],
    ]);
    expect(missingArchitectures(rows, ["80", "90"])).toEqual([]);
    expect(sassArchitectures(["80", "90a-real", "100-virtual", "native"])).toEqual(["80", "90a"]);
    expect(missingArchitectures(parsePtxasReport(RMSNORM), ["80", "90", "100"])).toEqual(["rmsnorm_kernel has no ptxas report for sm_100"]);
  });

  it("shortens mangled names to the kernel's identifier", () => {
    expect(shortName("_ZN6gptoss4cuda2nv14rmsnorm_kernelEPKfiS3_fPf")).toBe("rmsnorm_kernel");
    expect(shortName("_ZN6gptoss4cuda2nv11gemv_kernelILi4EEEvPKf")).toBe("gemv_kernel");
    expect(shortName("_Z10add_kernelPfPKfl")).toBe("add_kernel");
    expect(shortName("__internal_trig_reduction_slowpathd")).toBe("__internal_trig_reduction_slowpathd");
  });

  it("prints one line per kernel and architecture", () => {
    const lines = formatTable(parsePtxasReport(RMSNORM + ROPE)).split("\n");
    expect(lines).toHaveLength(1 + 6);
    expect(lines[0]).toMatch(/^kernel +arch +regs +smem B +stack B +spill st B +spill ld B +decode$/);
    expect(lines.some((l) => /^rmsnorm_kernel +sm_90 +27 +264 +0 +0 +0 +yes$/.test(l))).toBe(true);
    expect(lines.some((l) => /^__internal_trig_reduction_slowpathd \(callee\) +sm_80 +- +- +0 +0 +0 +yes$/.test(l))).toBe(true);
  });

  it("names the decode kernel and architecture that spill, and nothing when none does", () => {
    expect(spillViolations(parsePtxasReport(RMSNORM + ROPE))).toEqual([]);
    expect(spillViolations(parsePtxasReport(RMSNORM + SDPA_SPILLING + ROPE))).toEqual([
      "decode kernel sdpa_sinks_kernel spills on sm_80: 12 bytes of spill stores, 12 bytes of spill loads (24 registers)",
      "decode kernel sdpa_sinks_kernel spills on sm_90: 12 bytes of spill stores, 16 bytes of spill loads (24 registers)",
    ]);
    const text = spillOnSm90(RMSNORM) + ROPE;
    expect(text).toContain("24 bytes spill stores");
    expect(spillViolations(parsePtxasReport(text))).toEqual([
      "decode kernel rmsnorm_kernel spills on sm_90: 24 bytes of spill stores, 16 bytes of spill loads (27 registers)",
    ]);
    const callee = ROPE.replace(
      /(Function properties for __internal_trig_reduction_slowpathd\n) {4}0 bytes stack frame, 0 bytes spill stores/,
      "$1    8 bytes stack frame, 8 bytes spill stores",
    );
    expect(spillViolations(parsePtxasReport(callee))).toEqual([
      "device function (callee of decode kernels) __internal_trig_reduction_slowpathd spills on sm_80: 8 bytes of spill stores, 0 bytes of spill loads",
    ]);
  });

  it("exempts kernels named prefill: their spills show in the table but do not fail the build", () => {
    expect(isDecodeKernel("gemv_bf16_kernel")).toBe(true);
    expect(isDecodeKernel("gemm_bf16_prefill_kernel")).toBe(false);
    const prefill = spillOnSm90(RMSNORM).replaceAll("14rmsnorm_kernel", "22rmsnorm_prefill_kernel");
    const rows = parsePtxasReport(prefill);
    expect(rows.find((r) => r.arch === "sm_90")?.spillStores).toBe(24);
    expect(spillViolations(rows)).toEqual([]);
    expect(formatTable(rows)).toMatch(/rmsnorm_prefill_kernel +sm_90 +27 +264 +24 +24 +16 +no/);
  });
});
