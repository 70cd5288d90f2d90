/**
 * The worker's per-token log-probabilities in OpenAI's two shapes: chat (`logprobs.content[]` with
 * token, logprob, bytes and top_logprobs) and legacy completions (`tokens`, `token_logprobs`,
 * `top_logprobs` maps, `text_offset`).
 */

import type { HarmonyTokenizer } from "@expertmesh/grammar/tokenizer";
import type { GeneratedToken } from "@expertmesh/proto/worker";
import { gatewayErrors } from "../../errors.ts";

export interface TokenLogprob {
  token: string;
  logprob: number;
  bytes: number[];
}

export interface ChatTokenLogprob extends TokenLogprob {
  top_logprobs: TokenLogprob[];
}

const utf8 = new TextDecoder("utf-8", { fatal: false });

function entry(tok: HarmonyTokenizer, id: number, logprob: number): TokenLogprob {
  const bytes = tok.bytes(id);
  return { token: utf8.decode(bytes), logprob, bytes: [...bytes] };
}

export function chatLogprob(tok: HarmonyTokenizer, t: GeneratedToken, top: number): ChatTokenLogprob {
  return {
    ...entry(tok, t.tokenId, t.logprob),
    top_logprobs: t.topLogprobs.slice(0, top).map((c) => entry(tok, c.tokenId, c.logprob)),
  };
}

export interface CompletionLogprobs {
  tokens: string[];
  token_logprobs: number[];
  top_logprobs: Array<Record<string, number>>;
  text_offset: number[];
}

/** Legacy completions logprobs, accumulated token by token; `offset` counts characters already emitted. */
export class CompletionLogprobsBuilder {
  readonly #tok: HarmonyTokenizer;
  readonly #top: number;
  #offset = 0;

  constructor(tok: HarmonyTokenizer, top: number) {
    this.#tok = tok;
    this.#top = top;
  }

  take(tokens: readonly GeneratedToken[]): CompletionLogprobs {
    const out: CompletionLogprobs = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
    for (const t of tokens) {
      const e = entry(this.#tok, t.tokenId, t.logprob);
      out.tokens.push(e.token);
      out.token_logprobs.push(t.logprob);
      out.top_logprobs.push(
        Object.fromEntries(t.topLogprobs.slice(0, this.#top).map((c) => [entry(this.#tok, c.tokenId, c.logprob).token, c.logprob])),
      );
      out.text_offset.push(this.#offset);
      this.#offset += e.token.length;
    }
    return out;
  }
}

export function mergeCompletionLogprobs(parts: readonly CompletionLogprobs[]): CompletionLogprobs {
  return {
    tokens: parts.flatMap((p) => p.tokens),
    token_logprobs: parts.flatMap((p) => p.token_logprobs),
    top_logprobs: parts.flatMap((p) => p.top_logprobs),
    text_offset: parts.flatMap((p) => p.text_offset),
  };
}

/** OpenAI's rule: top_logprobs needs logprobs. */
export function checkLogprobs(logprobs: boolean | null | undefined, topLogprobs: number | null | undefined): void {
  if ((topLogprobs ?? 0) > 0 && !logprobs)
    throw gatewayErrors.create("invalid_request_error", { detail: "top_logprobs requires logprobs to be true" }, { param: "top_logprobs" });
}
