/**
 * A prompt-preparation thread (adapters/prompt-threads.ts): one tokenizer, one job at a time. The thread
 * lowers its own priority at start (on Linux a nice value is per thread), so a megabyte of adversarial
 * text competes for the cores with the event loop and the engine only when they are idle. A job's
 * budget is this thread's CPU time, so waiting for a core is not counted against it; the main thread
 * cancels a job by setting its shared flag.
 */
import { parentPort, workerData } from "node:worker_threads";
import { HarmonyTokenizer, threadCpuClock } from "@expertmesh/grammar/tokenizer";
import { renderConversation } from "../domain/harmony/render.ts";
import { putLargeString } from "./large-strings.ts";
import type { ThreadData, ThreadJob, ThreadResult, ThreadSlice } from "./prompt-thread-protocol.ts";
import { lowerThreadPriority } from "./thread-priority.ts";

// The tokenizer loads first, at the process's priority: starting a thread is not a request's work, and
// at a low priority on a saturated machine it would take many times as long.
const tok = new HarmonyTokenizer();
lowerThreadPriority((workerData as ThreadData | undefined)?.nice);

class Stopped extends Error {
  readonly reason: "budget" | "cancelled";
  constructor(reason: "budget" | "cancelled") {
    super(reason);
    this.reason = reason;
  }
}

function prepare(job: ThreadJob): number[] {
  const flag = new Int32Array(job.cancel);
  const deadline = threadCpuClock() + job.budgetMs;
  const budget = {
    check() {
      if (Atomics.load(flag, 0) !== 0) throw new Stopped("cancelled");
      if (threadCpuClock() > deadline) throw new Stopped("budget");
    },
  };
  if (job.kind === "render") return renderConversation(tok, job.messages, job.options, budget).tokens;
  return tok.encodeWithSpecials(job.text, budget);
}

function answer(job: ThreadJob): { result: ThreadResult; transfer: ArrayBuffer[] } {
  try {
    const out = prepare(job);
    // A prompt over the limit is refused here, so its tokens never cross to the event loop.
    if (job.maxTokens !== undefined && out.length > job.maxTokens)
      return { result: { id: job.id, ok: false, reason: "too_long", message: "", count: out.length }, transfer: [] };
    const tokens = Int32Array.from(out);
    return { result: { id: job.id, ok: true, tokens }, transfer: [tokens.buffer] };
  } catch (err) {
    const reason = err instanceof Stopped ? err.reason : "error";
    const message = err instanceof Error ? err.message : String(err);
    return { result: { id: job.id, ok: false, reason, message }, transfer: [] };
  }
}

/** Jobs whose large strings are still arriving: the slices so far. */
const arriving = new Map<number, { job: ThreadJob; slices: string[]; received: number }>();

function run(job: ThreadJob): void {
  const { result, transfer } = answer(job);
  parentPort?.postMessage(result, transfer);
}

/** The next slice of a job's large strings; the job runs once all have come. */
function receive(m: ThreadSlice): void {
  const a = arriving.get(m.id);
  if (!a) return;
  if ("drop" in m) {
    arriving.delete(m.id);
    parentPort?.postMessage({ id: m.id, ok: false, reason: "cancelled", message: "the client went away" } satisfies ThreadResult);
    return;
  }
  a.slices.push(m.slice);
  a.received += m.slice.length;
  const large = a.job.large ?? [];
  if (a.received < large.reduce((n, l) => n + l.length, 0)) return;
  arriving.delete(m.id);
  const text = a.slices.join("");
  let offset = 0;
  for (const { path, length } of large) {
    putLargeString(a.job, path, text.slice(offset, offset + length));
    offset += length;
  }
  run(a.job);
}

parentPort?.on("message", (m: ThreadJob | ThreadSlice) => {
  if ("slice" in m || "drop" in m) return receive(m);
  if (m.large?.length) arriving.set(m.id, { job: m, slices: [], received: 0 });
  else run(m);
});
