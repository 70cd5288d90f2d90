/**
 * A prompt-preparation thread (adapters/prompt-threads.ts): one tokenizer, one job at a time. A job's
 * budget runs from its start here; the main thread cancels it by setting its shared flag.
 */
import { parentPort } from "node:worker_threads";
import { renderConversation } from "../domain/harmony/render.ts";
import { HarmonyTokenizer } from "../domain/harmony/tokenizer.ts";
import type { ThreadJob, ThreadResult } from "./prompt-thread-protocol.ts";

const tok = new HarmonyTokenizer();

class Stopped extends Error {
  readonly reason: "budget" | "cancelled";
  constructor(reason: "budget" | "cancelled") {
    super(reason);
    this.reason = reason;
  }
}

function run(job: ThreadJob): { text: string; tokens: number[] } {
  const flag = new Int32Array(job.cancel);
  const deadline = performance.now() + job.budgetMs;
  const budget = {
    check() {
      if (Atomics.load(flag, 0) !== 0) throw new Stopped("cancelled");
      if (performance.now() > deadline) throw new Stopped("budget");
    },
  };
  if (job.kind === "render") return renderConversation(tok, job.messages, job.options, budget);
  return { text: job.text, tokens: tok.encodeWithSpecials(job.text, budget) };
}

parentPort?.on("message", (job: ThreadJob) => {
  let result: ThreadResult;
  try {
    const out = run(job);
    const tokens = Int32Array.from(out.tokens);
    result = { id: job.id, ok: true, text: job.kind === "render" ? out.text : "", tokens };
    parentPort?.postMessage(result, [tokens.buffer]);
    return;
  } catch (err) {
    const reason = err instanceof Stopped ? err.reason : "error";
    result = { id: job.id, ok: false, reason, message: err instanceof Error ? err.message : String(err) };
  }
  parentPort?.postMessage(result);
});
