/**
 * ptxas's per-kernel resource report (nvcc --resource-usage, the same text as -Xptxas -v) for the CUDA op
 * set: parsed into one row per kernel and architecture, printed as a table by scripts/build.ts, and the
 * spill rule the build enforces.
 *
 * The rule (isDecodeKernel below is its one implementation): a kernel is a *decode kernel* unless its
 * name contains "prefill", and a decode kernel must report 0 bytes of spill stores on every target
 * architecture. Every kernel in cuda/ops but the tensor-core panel products is a decode kernel: a decode
 * step's forward pass launches them (embed, rmsnorm, the bf16 and MXFP4 GEMVs, rope, kv_store, sdpa_sinks,
 * router_topk, the MoE route/scatter/combine kernels, swiglu, add; sample is the device sampler for the
 * same step, not called by the engine yet), and a spill there turns register traffic into local-memory
 * traffic on every token. A kernel that only runs for long prefill chunks (gemm_bf16_prefill_kernel,
 * moe_mxfp4_prefill_kernel) is exempt by carrying "prefill" in its name; its spills still show in the table. A device function that ptxas kept out of
 * line is judged by the same rule on its own name (it runs inside its callers).
 */

export interface KernelUsage {
  kernel: string; // short name: the kernel's own identifier, without namespaces or parameter types
  mangled: string;
  entry: boolean; // false: a device function ptxas kept out of line (a callee of the kernels in the same object)
  arch: string; // "sm_80"
  registers: number; // entry functions only (ptxas reports no registers for a callee)
  sharedBytes: number; // static shared memory (dynamic shared memory is sized at launch, not here)
  stackBytes: number;
  spillStores: number;
  spillLoads: number;
}

/** The part of a kernel's name the decode rule looks at; see the module comment. */
export const isDecodeKernel = (kernel: string): boolean => !kernel.includes("prefill");

/**
 * The kernel's own identifier from an Itanium-mangled name: `_ZN6gptoss4cuda2nv10add_kernelEPfPKfl` →
 * add_kernel (the last component of the nested name), `_Z10add_kernelPf` → add_kernel. Anything else
 * (extern "C" kernels) is returned as it is.
 */
export function shortName(mangled: string): string {
  const nested = mangled.startsWith("_ZN");
  if (!nested && !mangled.startsWith("_Z")) return mangled;
  let i = nested ? 3 : 2;
  // cv-qualifiers of a nested member name (`_ZNK…`) do not occur on kernels; skip them anyway.
  while (nested && /[rVK]/.test(mangled[i] ?? "")) i++;
  let last: string | undefined;
  for (;;) {
    const len = /^\d+/.exec(mangled.slice(i))?.[0];
    if (len === undefined) break;
    i += len.length;
    last = mangled.slice(i, i + Number(len));
    i += Number(len);
    if (!nested) break;
  }
  return last ?? mangled;
}

/**
 * Parses ptxas's report: any number of objects and architectures concatenated. An entry (kernel) starts
 * at "Compiling entry function '<mangled>' for 'sm_XX'"; the stack/spill line follows "Function
 * properties for <mangled>", and the entry's "Used N registers, …" line carries registers and static
 * shared memory. A device function that ptxas kept out of line (e.g. __internal_trig_reduction_slowpathd,
 * the slow path of double-precision sin/cos) has a "Function properties" block of its own after its
 * caller's entry: it becomes a row with entry=false for the architecture of the entry before it, so its
 * spills are checked too.
 */
export function parsePtxasReport(text: string): KernelUsage[] {
  const rows: KernelUsage[] = [];
  let arch: string | undefined; // the architecture of the section being read
  let compiling: KernelUsage | undefined; // the entry whose "Used N registers" line is still to come
  let target: KernelUsage | undefined; // the row the next stack/spill line belongs to
  const row = (mangled: string, entry: boolean, sm: string): KernelUsage => {
    const r = {
      kernel: shortName(mangled),
      mangled,
      entry,
      arch: sm,
      registers: 0,
      sharedBytes: 0,
      stackBytes: 0,
      spillStores: 0,
      spillLoads: 0,
    };
    rows.push(r);
    return r;
  };
  for (const line of text.split("\n")) {
    const entry = /^ptxas info\s*: Compiling entry function '([^']+)' for '(sm_\w+)'/.exec(line);
    if (entry) {
      arch = entry[2] as string;
      compiling = target = row(entry[1] as string, true, arch);
      continue;
    }
    if (arch === undefined) continue;
    const properties = /^ptxas info\s*: Function properties for (\S+)/.exec(line);
    if (properties) {
      const name = properties[1] as string;
      if (target?.mangled !== name) target = row(name, false, arch);
      continue;
    }
    const frame = /^\s+(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads/.exec(line);
    if (frame && target) {
      target.stackBytes = Number(frame[1]);
      target.spillStores = Number(frame[2]);
      target.spillLoads = Number(frame[3]);
      continue;
    }
    const used = /^ptxas info\s*: Used (\d+) registers/.exec(line);
    if (used && compiling) {
      compiling.registers = Number(used[1]);
      compiling.sharedBytes = Number(/(\d+) bytes smem/.exec(line)?.[1] ?? 0);
      compiling = undefined;
    }
  }
  return rows;
}

/** One message per decode kernel and architecture with spill stores, naming both. */
export function spillViolations(rows: KernelUsage[]): string[] {
  return rows
    .filter((r) => isDecodeKernel(r.kernel) && r.spillStores > 0)
    .map(
      (r) =>
        `${r.entry ? "decode kernel" : "device function (callee of decode kernels)"} ${r.kernel} spills on ${r.arch}: ` +
        `${r.spillStores} bytes of spill stores, ${r.spillLoads} bytes of spill loads${r.entry ? ` (${r.registers} registers)` : ""}`,
    );
}

/**
 * The architectures ptxas compiles SASS for, from CMAKE_CUDA_ARCHITECTURES entries: "80" and "90a-real"
 * do ("90a"); "80-virtual" (PTX only) and keywords such as "native" or "all" are not checked.
 */
export const sassArchitectures = (cmakeArchs: string[]): string[] =>
  cmakeArchs.filter((a) => /^\d+[af]?(-real)?$/.test(a)).map((a) => a.replace(/-real$/, ""));

/** Kernels that lack a row for one of the target architectures (`archs` as sassArchitectures gives them: "80", "90"). */
export function missingArchitectures(rows: KernelUsage[], archs: string[]): string[] {
  const seen = new Map<string, Set<string>>();
  for (const r of rows.filter((x) => x.entry)) {
    const s = seen.get(r.mangled) ?? new Set<string>();
    s.add(r.arch);
    seen.set(r.mangled, s);
  }
  const out: string[] = [];
  for (const [mangled, have] of seen) {
    const lacking = archs.map((a) => `sm_${a}`).filter((a) => !have.has(a));
    if (lacking.length > 0) out.push(`${shortName(mangled)} has no ptxas report for ${lacking.join(", ")}`);
  }
  return out;
}

/** The table: one line per kernel and architecture, sorted by kernel; "decode" marks the kernels the spill rule covers. */
export function formatTable(rows: KernelUsage[]): string {
  const sorted = [...rows].sort((a, b) => a.kernel.localeCompare(b.kernel) || a.arch.localeCompare(b.arch));
  const label = (r: KernelUsage) => (r.entry ? r.kernel : `${r.kernel} (callee)`);
  const w = Math.max("kernel".length, ...sorted.map((r) => label(r).length));
  const head = `${"kernel".padEnd(w)}  arch    regs  smem B  stack B  spill st B  spill ld B  decode`;
  const lines = sorted.map((r) =>
    [
      label(r).padEnd(w),
      r.arch.padEnd(6),
      (r.entry ? String(r.registers) : "-").padStart(4),
      (r.entry ? String(r.sharedBytes) : "-").padStart(6),
      String(r.stackBytes).padStart(7),
      String(r.spillStores).padStart(10),
      String(r.spillLoads).padStart(10),
      isDecodeKernel(r.kernel) ? "yes" : "no",
    ].join("  "),
  );
  return [head, ...lines].join("\n");
}
