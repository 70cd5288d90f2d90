/**
 * The port through which routes turn a request into prompt tokens: rendering a conversation and
 * tokenizing raw text. Preparing a prompt is CPU work proportional to its size (seconds for megabytes
 * of adversarial text), so it must not hold the event loop that serves every other request (#20): the
 * thread adapter (adapters/prompt-threads.ts) runs it on worker threads; the inline one here runs it on
 * the caller's thread (tests of other layers, and GATEWAY_RENDER_THREADS=0). Both bound each job by its
 * budget and stop it when its signal fires (the client went away).
 */
import { gatewayErrors } from "../errors.ts";
import { deadlineBudget, type WorkBudget } from "./harmony/budget.ts";
import { type Rendered, renderConversation } from "./harmony/render.ts";
import type { HarmonyTokenizer } from "./harmony/tokenizer.ts";
import type { HarmonyMessage, RenderOptions } from "./harmony/types.ts";

export interface PrepareJob {
  /** The time this job may take once started; beyond, 400 prompt_too_complex. */
  budgetMs: number;
  /** The request field the prompt came from, named in the error. */
  param: string;
  /** Fired when the client has gone: the work stops. */
  signal?: AbortSignal;
}

export interface PromptPreparer {
  render(messages: readonly HarmonyMessage[], options: RenderOptions, job: PrepareJob): Promise<Rendered>;
  /** Raw text in which special-token text becomes special tokens (completions prompts). */
  encodeWithSpecials(text: string, job: PrepareJob): Promise<number[]>;
  close(): Promise<void>;
}

/** The error of a job whose budget ran out. */
export function promptTooComplex(job: Pick<PrepareJob, "budgetMs" | "param">): Error {
  return gatewayErrors.create("prompt_too_complex", { ms: job.budgetMs }, { param: job.param });
}

/** The budget of one job: its time from now, and its signal. */
export function jobBudget(job: PrepareJob): WorkBudget {
  return deadlineBudget(job.budgetMs, () => promptTooComplex(job), job.signal);
}

/** Prepares prompts on the calling thread. */
export class InlinePromptPreparer implements PromptPreparer {
  readonly #tok: HarmonyTokenizer;

  constructor(tok: HarmonyTokenizer) {
    this.#tok = tok;
  }

  async render(messages: readonly HarmonyMessage[], options: RenderOptions, job: PrepareJob): Promise<Rendered> {
    return renderConversation(this.#tok, messages, options, jobBudget(job));
  }

  async encodeWithSpecials(text: string, job: PrepareJob): Promise<number[]> {
    return this.#tok.encodeWithSpecials(text, jobBudget(job));
  }

  async close(): Promise<void> {}
}
