/**
 * A prompt-preparation thread (adapters/prompt-threads.ts): one tokenizer, one job at a time. The thread
 * lowers its own priority at start (on Linux a nice value is per thread), so a megabyte of adversarial
 * text competes for the cores with the event loop and the engine only when they are idle. A job's
 * budget is this thread's CPU time, so waiting for a core is not counted against it; the main thread
 * cancels a job by setting its shared flag.
 */
import { setPriority } from "node:os";
import { parentPort, workerData } from "node:worker_threads";
import { threadCpuClock } from "../domain/harmony/budget.ts";
import { renderConversation } from "../domain/harmony/render.ts";
import { HarmonyTokenizer } from "../domain/harmony/tokenizer.ts";
import type { ThreadData, ThreadJob, ThreadResult } from "./prompt-thread-protocol.ts";

const data = workerData as ThreadData | undefined;
if (data?.nice) {
  try {
    setPriority(0, data.nice); // 0: the calling thread
  } catch {
    // A platform without per-thread priorities: the thread still runs, at the process's priority.
  }
}
const tok = new HarmonyTokenizer();

class Stopped extends Error {
  readonly reason: "budget" | "cancelled";
  constructor(reason: "budget" | "cancelled") {
    super(reason);
    this.reason = reason;
  }
}

function run(job: ThreadJob): number[] {
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
    const out = run(job);
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

parentPort?.on("message", (job: ThreadJob) => {
  const { result, transfer } = answer(job);
  parentPort?.postMessage(result, transfer);
});
