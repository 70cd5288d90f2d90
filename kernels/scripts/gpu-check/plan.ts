/**
 * The plan of scripts/gpu-check.sh: which GPU-gated checks a machine gets, each as one command line under
 * `timeout`, and how its outcome is read. Pure: it takes a description of the machine (machine.ts probes
 * one) and decides nothing by looking around, so every kind of machine is a unit test (plan.test.ts).
 *
 * A check is one of three things on a machine: planned (it must run and pass), not applicable (the
 * machine lacks what it is about: a second GPU, NCCL, compute-sanitizer; with the reason), or blocked
 * (it should run but cannot: no CUDA device; it counts as failed). The vitest checks select tests by
 * name (`-t`), so a test that skips inside the selection is a failure, not a silent pass.
 */

/** What the machine has, as the engine and the toolkit see it. */
export interface Machine {
  /** CUDA devices the engine's build sees (capabilities().cuda.deviceCount; 0 when CUDA is not compiled). */
  gpus: number;
  /** nvidia-smi's one line per GPU (name, memory, driver); empty without a driver. */
  gpuNames: string[];
  /** The kernels were built with the CUDA backend. */
  cudaCompiled: boolean;
  ncclLoadable: boolean;
  /** NCCL version as "2.21.5" ("" when not loadable). */
  ncclVersion: string;
  /** Path of compute-sanitizer, when the toolkit has one. */
  sanitizer?: string;
}

/** How a check's outcome is read from its run. */
export type Judge =
  /** Exit status 0 and every pattern found in the output. */
  | { kind: "output"; mustMatch: RegExp[] }
  /** Exit status 0 and every test of the vitest JSON report whose name matches `select` passed (at least one). */
  | { kind: "vitest"; select: RegExp; report: string };

export interface Check {
  id: string;
  title: string;
  /** argv without the `timeout` wrapper. */
  argv: string[];
  /** Where it runs, relative to the repository root (default: the root). */
  cwd?: "kernels";
  /** The cap on this check's time; the runner lowers it when the whole run's budget is short. */
  timeoutS: number;
  judge: Judge;
  /** The check reads what the background preparation (the bench checkpoint) writes: it waits for it. */
  needsPrepare?: boolean;
}

export type Planned =
  | { state: "planned"; check: Check }
  | { state: "not-applicable"; id: string; title: string; reason: string }
  | { state: "blocked"; check: Check; reason: string };

export interface PlanContext {
  /** Where logs and reports go (--out). */
  out: string;
  /** Nominal rooflines for bench/engine (bench/gpu-model.ts DEVICES), from the GPU's name; none when unknown. */
  roofline?: "h100" | "h200";
}

/** The whole run (build included) must end within 12 minutes on one H100; 30 s are left for the report. */
export const RUN_BUDGET_S = 690;
/** The build's cap: setup (npm state, proto) and the kernels with nvcc for sm_80 and sm_90. */
export const BUILD_TIMEOUT_S = 360;

/** The tiny golden model, for the sanitizer runs: 2 layers, every kernel of a step, seconds under instrumentation. */
const TINY = "test/fixtures/golden/g1-tiny";
const SANITIZER_TOOLS = ["memcheck", "racecheck", "synccheck"] as const;

function vitest(ctx: PlanContext, id: string, file: string, select: string): Pick<Check, "argv" | "cwd" | "judge"> {
  const report = `${ctx.out}/${id}.json`;
  return {
    // vitest matches -t against "describe > test"; the judge applies the same pattern to the JSON report.
    argv: ["npx", "vitest", "run", file, "-t", select, "--reporter=verbose", "--reporter=json", `--outputFile.json=${report}`],
    cwd: "kernels",
    judge: { kind: "vitest", select: new RegExp(select), report },
  };
}

/** The checks that need one CUDA device and nothing else. */
function deviceChecks(ctx: PlanContext): Check[] {
  return [
    {
      id: "ops",
      title: "test_ops: every op against its fp64 reference on the nvcc-built op set",
      argv: ["kernels/build/tests/test_ops"],
      timeoutS: 180,
      judge: { kind: "output", mustMatch: [/^cuda: \d+ device\(s\), running/m, /^ops: \d+ passed, 0 failed$/m] },
    },
    {
      id: "golden",
      title: "golden cases through cuda:0 (exact-mode tolerances)",
      ...vitest(ctx, "golden", "src/golden-cuda.test.ts", "^golden .* on cuda:0 > "),
      timeoutS: 120,
    },
    {
      id: "decode-graphs",
      title: "decode steps replayed from CUDA graphs equal eager steps (bucket capture and replay)",
      ...vitest(ctx, "decode-graphs", "src/decode-graphs.test.ts", "^decode graphs \\(cuda:0\\) > "),
      timeoutS: 60,
    },
    {
      id: "cuda-vs-cpu-20b",
      title: "cuda:0 against the CPU on the gpt-oss-20b widths (default precision)",
      ...vitest(ctx, "cuda-vs-cpu-20b", "src/golden-cuda.test.ts", "^20b widths on cuda:0 against the CPU > "),
      timeoutS: 240,
    },
  ];
}

const nccl = {
  join: (ctx: PlanContext): Check => ({
    id: "nccl-join",
    title: "NCCL: GPU ranks join (rendezvous, unique id) and run the collectives (Communicator)",
    ...vitest(ctx, "nccl-join", "src/communicator.test.ts", "^communicator \\(NCCL\\) > joins GPU ranks"),
    timeoutS: 90,
  }),
  native: (): Check => ({
    id: "nccl-native",
    title: "test_comm: NCCL collectives and all-to-all over min(GPUs, 4) ranks",
    argv: ["kernels/build/tests/test_comm"],
    timeoutS: 120,
    judge: { kind: "output", mustMatch: [/^PASS nccl_collectives_w\d+/m, /^comm: [1-9]\d* passed, 0 failed$/m] },
  }),
  absent: (ctx: PlanContext): Check => ({
    id: "nccl-absent",
    title: "without NCCL a GPU group fails at once with transport",
    ...vitest(ctx, "nccl-absent", "src/communicator.test.ts", "^communicator \\(NCCL\\) > without NCCL every rank"),
    timeoutS: 60,
  }),
  w2: (ctx: PlanContext): Check => ({
    id: "nccl-w2",
    title: "CLI logits: NCCL W = 2 (cuda:0 + cuda:1) equals W = 1",
    ...vitest(ctx, "nccl-w2", "src/cli.test.ts", "^expertmesh logits --device > GPU-gated: cuda:0 over 2 ranks"),
    timeoutS: 120,
  }),
};

function sanitizerCheck(sanitizer: string, tool: (typeof SANITIZER_TOOLS)[number]): Check {
  const summary = tool === "racecheck" ? /RACECHECK SUMMARY: 0 hazards|ERROR SUMMARY: 0 errors/ : /ERROR SUMMARY: 0 errors/;
  return {
    id: `sanitizer-${tool}`,
    title: `compute-sanitizer ${tool}: prefill + 4 decode steps of the tiny model on cuda:0`,
    // generate runs prefill and decode steps (sampling included); the tokens are any ids of the vocabulary.
    argv: [
      sanitizer,
      "--tool",
      tool,
      "--error-exitcode",
      "1",
      "node",
      "kernels/src/cli/main.ts",
      "generate",
      "--model",
      TINY,
      "--tokens",
      "1,2,3,4,5,6,7,8",
      "--max-tokens",
      "4",
      "--device",
      "cuda:0",
    ],
    timeoutS: 120,
    judge: { kind: "output", mustMatch: [summary] },
  };
}

/** bench/engine on cuda:0: decode at batch 1, 16, 64 and a 2048-token prefill on the full 20b shape. */
export function benchCheck(ctx: PlanContext): Check {
  return {
    id: "bench",
    title: `bench/engine --device cuda:0, 20b: decode batch 1/16/64, prefill 2048${ctx.roofline ? ` (${ctx.roofline} rooflines)` : ""}`,
    argv: [
      "node",
      "bench/engine.ts",
      "--device",
      "cuda:0",
      "--shape",
      "20b",
      "--steps",
      "8",
      "--batches",
      "1,16,64",
      "--prefill",
      "2048",
      "--probe-gib",
      "0.5",
      ...(ctx.roofline ? ["--roofline", ctx.roofline] : []),
      "--json",
    ],
    timeoutS: 240,
    // The figures are reported (the table quotes these rows), not judged against docs/PERFORMANCE.md's
    // targets: this check fails when the bench does not run, not when the engine is slower than planned.
    judge: {
      kind: "output",
      mustMatch: [
        /^\| decode tok\/s, batch 1 +\| \d/m,
        /^\| decode tok\/s, batch 64 +\| \d/m,
        /^\| prefill tok\/s, 2048-token prompt +\| \d/m,
        ...(ctx.roofline ? [/^\| batch-1 decode % of bandwidth roofline +\| \d/m] : []),
      ],
    },
    needsPrepare: true,
  };
}

/** Writes the bench's 20b checkpoint (13 GB, one core, ~1-2 min) while the build compiles: started first. */
export function prepareArgv(): string[] {
  return ["node", "bench/engine.ts", "--shape", "20b", "--prepare"];
}

/** The plan for `m`, in the order the checks run. */
export function planChecks(m: Machine, ctx: PlanContext): Planned[] {
  const noDevice = !m.cudaCompiled
    ? "the kernels were built without the CUDA backend (nvcc not found?)"
    : m.gpus < 1
      ? "no CUDA device visible to the engine"
      : undefined;
  const required = (check: Check): Planned => (noDevice ? { state: "blocked", check, reason: noDevice } : { state: "planned", check });
  const onlyIf = (check: Check, missing: string | undefined): Planned =>
    missing ? { state: "not-applicable", id: check.id, title: check.title, reason: missing } : required(check);
  const ncclMissing = m.ncclLoadable ? undefined : "libnccl.so.2 cannot be loaded here";
  return [
    ...deviceChecks(ctx).map(required),
    onlyIf(nccl.join(ctx), ncclMissing),
    onlyIf(nccl.native(), ncclMissing),
    // Without NCCL the failure path is what this machine can check.
    onlyIf(nccl.absent(ctx), m.ncclLoadable ? `NCCL ${m.ncclVersion} is loadable (the path needs a host without it)` : undefined),
    onlyIf(nccl.w2(ctx), ncclMissing ?? (m.gpus < 2 ? `needs 2 CUDA devices, this machine has ${m.gpus}` : undefined)),
    ...SANITIZER_TOOLS.map((tool) => {
      const check = sanitizerCheck(m.sanitizer ?? "compute-sanitizer", tool);
      return onlyIf(check, m.sanitizer ? undefined : "the CUDA toolkit here has no compute-sanitizer");
    }),
    required(benchCheck(ctx)),
  ];
}

/** bench/engine's --roofline for a GPU named by nvidia-smi ("NVIDIA H100 80GB HBM3, …"). */
export function rooflineOf(gpuNames: string[]): PlanContext["roofline"] {
  const first = gpuNames[0] ?? "";
  if (/\bH200\b/.test(first)) return "h200";
  if (/\bH100\b/.test(first)) return "h100";
  return undefined;
}

/** argv under `timeout`: -k kills a check that ignores SIGTERM 10 s later; timeout signals the whole process group. */
export function timed(argv: string[], timeoutS: number): string[] {
  return ["timeout", "-k", "10", String(timeoutS), ...argv];
}

/** A command line as it could be pasted into a shell. */
export function shellLine(argv: string[]): string {
  return argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`)).join(" ");
}
