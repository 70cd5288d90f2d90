/**
 * The command line of scripts/gpu-check.sh. Parsing only: where --out defaults to ($OUT, else a new
 * temporary directory) is decided here, creating it is main.ts's job.
 */
import { parseArgs } from "node:util";

export const USAGE = `usage: bash scripts/gpu-check.sh [--dry-run] [--out DIR] [--help]
  Builds the kernels with CUDA, runs every GPU-gated check this machine can run (which ones follows from its
  GPUs, NCCL and compute-sanitizer), and prints one table. Exit status 0 only when every applicable check
  passed; a check that was expected to run but skipped counts as failed. The run keeps within 12 minutes.
  --dry-run  build only if no build exists (never with CUDA forced), describe the machine, print the plan
             (each check's command under its timeout, or why it does not apply), run nothing; exit 0
  --out DIR  logs and vitest reports (default: $OUT, else a new temporary directory)
  --help     this text`;

export class UsageError extends Error {}

export interface GpuCheckArgs {
  dryRun: boolean;
  help: boolean;
  /** undefined: make a temporary directory. */
  out: string | undefined;
}

/** Throws UsageError (exit 2) on anything it does not know. */
export function parseGpuCheckArgs(argv: string[], env: NodeJS.ProcessEnv): GpuCheckArgs {
  let values: { "dry-run"?: boolean; help?: boolean; out?: string };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { "dry-run": { type: "boolean" }, out: { type: "string" }, help: { type: "boolean", short: "h" } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (values.out === "") throw new UsageError("--out needs a directory");
  return { dryRun: values["dry-run"] ?? false, help: values.help ?? false, out: values.out ?? (env.OUT || undefined) };
}
