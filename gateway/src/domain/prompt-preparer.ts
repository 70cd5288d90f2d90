/**
 * The port through which routes turn a request into prompt tokens: rendering a conversation and
 * tokenizing raw text. Preparing a prompt is CPU work proportional to its size (seconds for megabytes
 * of adversarial text), so it must not hold the event loop that serves every other request (#20): the
 * thread adapter (adapters/prompt-threads.ts) runs it on worker threads; the inline one here runs it on
 * the caller's thread (tests of other layers, and GATEWAY_RENDER_THREADS=0). Both bound each job by its
 * budget and stop it when its signal fires (the client went away).
 */

import { type Clock, deadlineBudget, type HarmonyTokenizer, type WorkBudget } from "@expertmesh/grammar/tokenizer";
import { gatewayErrors } from "../errors.ts";
import { renderConversation } from "./harmony/render.ts";
import type { HarmonyMessage, RenderOptions } from "./harmony/types.ts";

export interface PrepareJob {
  /** The time this job may take once started; beyond, 400 prompt_too_complex. */
  budgetMs: number;
  /** The most tokens a prompt may have (GATEWAY_MAX_PROMPT_TOKENS); beyond, 400 context_length_exceeded. */
  maxTokens?: number;
  /** The request field the prompt came from, named in the error. */
  param: string;
  /** Fired when the client has gone: the work stops. */
  signal?: AbortSignal;
}

/** A prompt ready for a worker. */
export interface PreparedPrompt {
  tokens: number[];
}

export interface PromptPreparer {
  render(messages: readonly HarmonyMessage[], options: RenderOptions, job: PrepareJob): Promise<PreparedPrompt>;
  /** Raw text in which special-token text becomes special tokens (completions prompts). */
  encodeWithSpecials(text: string, job: PrepareJob): Promise<number[]>;
  close(): Promise<void>;
}

/** The error of a job whose budget ran out. */
export function promptTooComplex(job: Pick<PrepareJob, "budgetMs" | "param">): Error {
  return gatewayErrors.create("prompt_too_complex", { ms: job.budgetMs }, { param: job.param });
}

/** The error of a prompt longer than the job allows. */
export function promptTooLong(job: Pick<PrepareJob, "maxTokens" | "param">, count: number): Error {
  const detail = `the prompt has ${count} tokens; this gateway accepts at most ${job.maxTokens}`;
  return gatewayErrors.create("context_length_exceeded", { detail }, { param: job.param });
}

/** Throws promptTooLong when `count` tokens are more than the job allows. */
export function checkPromptLength(count: number, job: Pick<PrepareJob, "maxTokens" | "param">): void {
  if (job.maxTokens !== undefined && count > job.maxTokens) throw promptTooLong(job, count);
}

/** The budget of one job: its time from now on `clock`, and its signal. */
export function jobBudget(job: PrepareJob, clock?: Clock): WorkBudget {
  return deadlineBudget(job.budgetMs, () => promptTooComplex(job), job.signal, clock);
}

/** Prepares prompts on the calling thread. */
export class InlinePromptPreparer implements PromptPreparer {
  readonly #tok: HarmonyTokenizer;

  constructor(tok: HarmonyTokenizer) {
    this.#tok = tok;
  }

  async render(messages: readonly HarmonyMessage[], options: RenderOptions, job: PrepareJob): Promise<PreparedPrompt> {
    const { tokens } = renderConversation(this.#tok, messages, options, jobBudget(job));
    checkPromptLength(tokens.length, job);
    return { tokens };
  }

  async encodeWithSpecials(text: string, job: PrepareJob): Promise<number[]> {
    const tokens = this.#tok.encodeWithSpecials(text, jobBudget(job));
    checkPromptLength(tokens.length, job);
    return tokens;
  }

  async close(): Promise<void> {}
}
