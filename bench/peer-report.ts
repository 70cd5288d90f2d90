/**
 * bench/peer-report — the pure half of bench/peer: parsers for what llama.cpp's `llama-bench -o json`,
 * `llama-batched-bench --output-format jsonl` and bench/engine's `--json` print, and the markdown
 * comparison table. It runs nothing and reads no files (peer-report.test.ts feeds it outputs
 * captured from real runs, kept in bench/fixtures/).
 *
 * Every parser returns rates keyed by one metric name, so the two programs' figures meet by name:
 * `decode tok/s, batch B` (aggregate tokens per second over B sequences) and `prefill tok/s, N-token prompt`.
 */
import { median } from "./stats.ts";

/** Tokens per second by metric name. */
export type Rates = Map<string, number>;

export const decodeMetric = (batch: number): string => `decode tok/s, batch ${batch}`;
export const prefillMetric = (tokens: number): string => `prefill tok/s, ${tokens}-token prompt`;

/** What llama-bench says about itself and the machine, from the first test object. */
export interface LlamaBenchInfo {
  buildCommit: string;
  buildNumber: number;
  cpuInfo: string;
  modelType: string;
  threads: number;
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

function num(o: Record<string, unknown>, key: string, what: string): number {
  const v = o[key];
  if (typeof v !== "number" || !Number.isFinite(v)) throw new Error(`${what}: field '${key}' is not a number (${JSON.stringify(v)})`);
  return v;
}

/**
 * llama-bench `-o json`: a JSON array, one object per test. A test with n_prompt > 0 and n_gen = 0 is a
 * prefill (ppN); n_prompt = 0 and n_gen > 0 is batch-1 decode (tgN); a combined pp+tg test is refused.
 * The rate is avg_ts (the mean over llama-bench's own -r repetitions).
 */
export function parseLlamaBench(stdout: string): { rates: Rates; info: LlamaBenchInfo } {
  const start = stdout.indexOf("[");
  if (start < 0) throw new Error("llama-bench output: no JSON array (was it run with -o json?)");
  const tests: unknown = JSON.parse(stdout.slice(start));
  if (!Array.isArray(tests) || tests.length === 0) throw new Error("llama-bench output: an empty or non-array JSON document");
  const rates: Rates = new Map();
  for (const t of tests) {
    if (!isRecord(t)) throw new Error("llama-bench output: a test entry is not an object");
    const what = `llama-bench test ${JSON.stringify(t.model_type ?? "?")}`;
    const [prompt, gen] = [num(t, "n_prompt", what), num(t, "n_gen", what)];
    if (prompt > 0 && gen === 0) rates.set(prefillMetric(prompt), num(t, "avg_ts", what));
    else if (prompt === 0 && gen > 0) rates.set(decodeMetric(1), num(t, "avg_ts", what));
    else throw new Error(`${what}: n_prompt ${prompt} with n_gen ${gen} is neither a pp nor a tg test`);
  }
  const first = tests[0] as Record<string, unknown>;
  const info: LlamaBenchInfo = {
    buildCommit: String(first.build_commit ?? "?"),
    buildNumber: Number(first.build_number ?? Number.NaN),
    cpuInfo: String(first.cpu_info ?? "?"),
    modelType: String(first.model_type ?? "?"),
    threads: Number(first.n_threads ?? Number.NaN),
  };
  return { rates, info };
}

/**
 * llama-batched-bench `--output-format jsonl`: one JSON object per (pp, tg, pl) line, mixed with other
 * log lines. The decode rate is speed_tg = pl·tg / t_tg (aggregate over the pl sequences, prefill excluded).
 */
export function parseBatchedBench(stdout: string): Rates {
  const rates: Rates = new Map();
  for (const line of stdout.split("\n")) {
    const text = line.trim();
    if (!text.startsWith("{") || !text.includes('"speed_tg"')) continue;
    const row: unknown = JSON.parse(text);
    if (!isRecord(row)) continue;
    rates.set(decodeMetric(num(row, "pl", "batched-bench line")), num(row, "speed_tg", "batched-bench line"));
  }
  if (rates.size === 0) throw new Error("llama-batched-bench output: no JSONL result lines (was it run with --output-format jsonl?)");
  return rates;
}

/** What bench/engine says about how far its own run can be trusted (absent in output from before 2026-12-05). */
export interface EngineHealth {
  /** CPU cores the engine's process used during the batch-1 decode (of the machine's count). */
  decodeCores: number | undefined;
  /** The bandwidth probe's verdict, e.g. "27 of 27 passes undisturbed" or "host busy: …". */
  bandwidthNote: string | undefined;
}

/** bench/engine `--json`: the table, then one JSON line last; its decode/prefill maps are keyed by batch / prompt length. */
export function parseEngine(stdout: string): { rates: Rates; health: EngineHealth } {
  const last = stdout
    .trim()
    .split("\n")
    .findLast((l) => l.startsWith("{"));
  if (last === undefined) throw new Error("bench/engine output: no JSON line (was it run with --json?)");
  const doc: unknown = JSON.parse(last);
  if (!isRecord(doc) || !isRecord(doc.decode) || !isRecord(doc.prefill)) throw new Error("bench/engine output: no decode/prefill maps");
  const rates: Rates = new Map();
  for (const b of Object.keys(doc.decode)) rates.set(decodeMetric(Number(b)), num(doc.decode, b, "bench/engine decode"));
  for (const n of Object.keys(doc.prefill)) rates.set(prefillMetric(Number(n)), num(doc.prefill, n, "bench/engine prefill"));
  const health: EngineHealth = {
    decodeCores: typeof doc.decodeCores === "number" ? doc.decodeCores : undefined,
    bandwidthNote: isRecord(doc.bandwidth) && typeof doc.bandwidth.note === "string" ? doc.bandwidth.note : undefined,
  };
  return { rates, health };
}

/** One alternation: what each program measured (a program that failed or skipped a metric simply lacks it). */
export interface Round {
  peer: Rates;
  ours: Rates;
}

/**
 * The markdown table: one row per metric in `metrics`, each side's runs in order, and the median over
 * rounds of the paired ratio ExpertMesh / llama.cpp (pairing within a round cancels slow drift of the
 * shared machine; > 1 means ExpertMesh is faster).
 */
export function comparisonTable(metrics: readonly string[], rounds: readonly Round[]): string {
  const fmt = (x: number | undefined) => (x === undefined ? "—" : x >= 100 ? x.toFixed(0) : x.toFixed(2));
  const rows = metrics.map((m) => {
    const peer = rounds.map((r) => r.peer.get(m));
    const ours = rounds.map((r) => r.ours.get(m));
    const ratios = rounds.flatMap((r) => {
      const [p, o] = [r.peer.get(m), r.ours.get(m)];
      return p !== undefined && o !== undefined && p > 0 ? [o / p] : [];
    });
    const ratio = ratios.length === 0 ? "—" : `${median(ratios).toFixed(2)}×`;
    return [m, peer.map(fmt).join(", "), ours.map(fmt).join(", "), ratio];
  });
  const head = ["metric", "llama.cpp runs", "ExpertMesh runs", "median ratio (ExpertMesh / llama.cpp)"];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] as number)).join(" | ")} |`;
  return [line(head), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...rows.map(line)].join("\n");
}
