/**
 * Outcomes of scripts/gpu-check.sh: reading one check's run (exit status, output, vitest's JSON report)
 * into pass / fail / skip, and the one table printed at the end. A skip is a test the plan expected to
 * run that skipped itself (its reason quoted from the log): it fails the run like a failure does. Pure
 * functions over strings; running the commands is main.ts's job.
 */
import { stripVTControlCharacters } from "node:util";
import type { Judge, Planned } from "./plan.ts";

export type Status = "pass" | "fail" | "skip" | "n/a";

export interface Outcome {
  id: string;
  title: string;
  status: Status;
  detail: string;
  seconds?: number;
}

/** What one run of a check left behind. */
export interface RunResult {
  /** Exit status; 124 or 137 from `timeout` when it ran out of time; 128 + the signal's number after a signal. */
  code: number;
  /** The signal the command died of ("SIGSEGV"), if one did. */
  signal?: string;
  timedOut: boolean;
  /** stdout and stderr together. */
  output: string;
  /** The vitest JSON report's text, when the judge reads one and it was written. */
  vitestReport?: string;
  seconds: number;
}

interface VitestAssertion {
  ancestorTitles: string[];
  title: string;
  status: string;
  failureMessages?: string[];
}

/** The reason vitest's verbose reporter printed for a skipped test ("↓ … name … [reason]"). */
export function skipReason(output: string, title: string): string | undefined {
  for (const line of stripVTControlCharacters(output).split("\n")) {
    if (!line.includes("↓") || !line.includes(title)) continue;
    const m = /\[([^\]]+)\]\s*$/.exec(line);
    if (m) return m[1];
  }
  return undefined;
}

function judgeVitest(judge: Extract<Judge, { kind: "vitest" }>, run: RunResult): Pick<Outcome, "status" | "detail"> {
  if (!run.vitestReport) return { status: "fail", detail: `vitest wrote no report (exit ${run.code})` };
  const files = (JSON.parse(run.vitestReport) as { testResults: Array<{ assertionResults: VitestAssertion[] }> }).testResults;
  const selected = files.flatMap((f) => f.assertionResults).filter((a) => judge.select.test([...a.ancestorTitles, a.title].join(" > ")));
  if (selected.length === 0) return { status: "fail", detail: `no test matches ${judge.select}` };
  const failed = selected.filter((a) => a.status === "failed");
  if (failed.length > 0) {
    const first = (failed[0]?.failureMessages?.[0] ?? "").split("\n")[0];
    return { status: "fail", detail: `${failed.length} of ${selected.length} failed: ${failed[0]?.title}: ${first}` };
  }
  const skipped = selected.filter((a) => a.status !== "passed");
  if (skipped.length > 0) {
    const a = skipped[0] as VitestAssertion;
    const why = skipReason(run.output, a.title) ?? "no reason printed";
    return { status: "skip", detail: `${skipped.length} of ${selected.length} skipped, expected to run: ${why}` };
  }
  if (run.code !== 0) return { status: "fail", detail: `every selected test passed but vitest exited ${run.code}` };
  return { status: "pass", detail: `${selected.length} test(s) passed` };
}

/** The outcome of one run under `judge`. */
export function judgeRun(judge: Judge, run: RunResult): Pick<Outcome, "status" | "detail"> {
  if (run.timedOut) return { status: "fail", detail: `timed out after ${Math.round(run.seconds)} s` };
  if (run.signal) return { status: "fail", detail: `killed by ${run.signal}: ${lastLine(run.output)}` };
  if (judge.kind === "vitest") return judgeVitest(judge, run);
  if (run.code !== 0) return { status: "fail", detail: `exit status ${run.code}: ${lastLine(run.output)}` };
  const missing = judge.mustMatch.filter((re) => !re.test(run.output));
  if (missing.length > 0) return { status: "fail", detail: `output lacks ${missing.map(String).join(", ")}` };
  return { status: "pass", detail: judge.mustMatch.map((re) => firstMatch(run.output, re)).join("; ") };
}

function lastLine(output: string): string {
  const lines = stripVTControlCharacters(output).trim().split("\n");
  return (lines[lines.length - 1] ?? "").slice(0, 160);
}

function firstMatch(output: string, re: RegExp): string {
  const m = re.exec(output);
  if (!m) return "";
  // The whole line the pattern matched on, as a short quote.
  const start = output.lastIndexOf("\n", m.index) + 1;
  const end = output.indexOf("\n", m.index);
  return output
    .slice(start, end < 0 ? undefined : end)
    .replace(/\s+/g, " ")
    .trim()
    .slice(0, 100);
}

/** The outcome a plan entry has without running: not applicable, or failed because it is blocked. */
export function outcomeWithoutRun(p: Exclude<Planned, { state: "planned" }>): Outcome {
  if (p.state === "not-applicable") return { id: p.id, title: p.title, status: "n/a", detail: p.reason };
  return { id: p.check.id, title: p.check.title, status: "fail", detail: `not run: ${p.reason}` };
}

/** 0 only when every applicable check passed (and at least one ran). */
export function exitStatus(outcomes: Outcome[]): 0 | 1 {
  const applicable = outcomes.filter((o) => o.status !== "n/a");
  return applicable.length > 0 && applicable.every((o) => o.status === "pass") ? 0 : 1;
}

/** The table printed at the end: one row per check, then the verdict. */
export function formatReport(outcomes: Outcome[]): string {
  const rows = outcomes.map((o) => [o.status.toUpperCase(), o.id, o.seconds === undefined ? "" : `${Math.round(o.seconds)} s`, o.detail]);
  const head = ["result", "check", "time", "detail"];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] as number)).join(" | ")} |`;
  const count = (s: Status) => outcomes.filter((o) => o.status === s).length;
  const verdict = exitStatus(outcomes) === 0 ? "GPU CHECK PASS" : "GPU CHECK FAIL";
  return [
    line(head),
    line(widths.map((w) => "-".repeat(w))),
    ...rows.map(line),
    `${verdict}: ${count("pass")} passed, ${count("fail")} failed, ${count("skip")} skipped (expected to run), ${count("n/a")} not applicable`,
  ].join("\n");
}
