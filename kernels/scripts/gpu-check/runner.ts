/**
 * Runs gpu-check's commands: each under `timeout` from the repository root (or kernels/), its output kept
 * in <out>/<id>.log and in memory for the judge (report.ts), within what is left of the run's budget;
 * and the background preparation of the bench checkpoint.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream, existsSync, readFileSync, rmSync } from "node:fs";
import { constants } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { type Check, prepareArgv, RUN_BUDGET_S, shellLine, timed } from "./plan.ts";
import { judgeRun, type Outcome, type RunResult } from "./report.ts";

/** The repository root. */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");

export const log = (line: string) => console.log(`[gpu-check] ${line}`);

/** The last lines of a command's output, marked as quoted (so that a quoted vitest summary is not read as ours). */
export function printTail(output: string, lines = 25): void {
  for (const line of output.trim().split("\n").slice(-lines)) console.log(`[gpu-check]    │ ${line}`);
}

/** Runs argv (from the repository root, or `cwd` under it), output to `logFile` and kept for the judge. */
export function run(argv: string[], cwd: string | undefined, logFile: string): Promise<Omit<RunResult, "vitestReport">> {
  const started = performance.now();
  const file = createWriteStream(logFile);
  const child = spawn(argv[0] as string, argv.slice(1), { cwd: join(ROOT, cwd ?? ""), stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  const keep = (b: Buffer) => {
    output += b.toString();
    file.write(b);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  return new Promise((done) => {
    child.on("close", (code, signal) => {
      file.end();
      const seconds = (performance.now() - started) / 1000;
      // timeout exits 124 when it stopped the command (137 when it had to SIGKILL it); a command that died
      // of a signal makes timeout die of the same one.
      if (code === null)
        done({
          code: 128 + (constants.signals[signal as NodeJS.Signals] ?? 0),
          signal: signal ?? undefined,
          timedOut: false,
          output,
          seconds,
        });
      else done({ code, timedOut: code === 124 || code === 137, output, seconds });
    });
  });
}

/** The bench checkpoint, written in the background from the start; resolves true when it was written. */
export function startPrepare(out: string): { done: Promise<boolean>; child: ChildProcess } {
  const file = createWriteStream(join(out, "prepare.log"));
  const child = spawn(prepareArgv()[0] as string, prepareArgv().slice(1), { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  child.stdout?.pipe(file);
  child.stderr?.pipe(file);
  return { child, done: new Promise((ok) => child.on("close", (code) => ok(code === 0))) };
}

export async function runCheck(check: Check, out: string, remainingS: number, prepared?: Promise<boolean>): Promise<Outcome> {
  const base = { id: check.id, title: check.title };
  const t0 = performance.now();
  if (check.needsPrepare && prepared && !(await prepared)) {
    return {
      ...base,
      status: "fail",
      detail: `the checkpoint was not written: see ${out}/prepare.log`,
      seconds: (performance.now() - t0) / 1000,
    };
  }
  const left = remainingS - (performance.now() - t0) / 1000;
  if (left < 15) return { ...base, status: "fail", detail: `not run: the run's ${RUN_BUDGET_S} s budget is spent` };
  const timeoutS = Math.min(check.timeoutS, Math.floor(left));
  if (check.judge.kind === "vitest") rmSync(check.judge.report, { force: true });
  const argv = timed(check.argv, timeoutS);
  log(`── ${check.id}: ${check.title}\n[gpu-check]    ${shellLine(argv)}${check.cwd ? ` (in ${check.cwd}/)` : ""}`);
  const result = await run(argv, check.cwd, join(out, `${check.id}.log`));
  const report = check.judge.kind === "vitest" && existsSync(check.judge.report) ? readFileSync(check.judge.report, "utf8") : undefined;
  const verdict = judgeRun(check.judge, { ...result, vitestReport: report });
  const seconds = (performance.now() - t0) / 1000;
  log(`   ${verdict.status.toUpperCase()} in ${Math.round(seconds)} s: ${verdict.detail}`);
  if (verdict.status !== "pass") printTail(result.output);
  return { ...base, ...verdict, seconds };
}
