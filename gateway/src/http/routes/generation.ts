/**
 * What the generating routes (chat completions, Responses) share: OpenAI sampling fields → the worker's
 * SamplingParams, the stop tokens that end an assistant turn, and cancelling the worker stream when the
 * client goes away.
 */
import type { SamplingParams } from "@expertmesh/proto/worker";
import type { FastifyReply } from "fastify";
import { Special } from "../../domain/harmony/tokenizer.ts";

export interface SamplingFields {
  temperature?: number | null;
  top_p?: number | null;
  top_k?: number | null;
  min_p?: number | null;
  seed?: number | null;
  presence_penalty?: number | null;
  frequency_penalty?: number | null;
  logit_bias?: Record<string, number> | null;
  logprobs?: boolean | null;
  top_logprobs?: number | null;
}

/** <|return|> ends a final answer, <|call|> a tool call; <|endoftext|> is a hard stop. */
export const ASSISTANT_STOP_IDS = [Special.return, Special.call, Special.endoftext];

export function samplingParams(b: SamplingFields): SamplingParams {
  return {
    temperature: b.temperature ?? 1,
    topP: b.top_p ?? 1,
    topK: b.top_k ?? 0,
    minP: b.min_p ?? 0,
    presencePenalty: b.presence_penalty ?? 0,
    frequencyPenalty: b.frequency_penalty ?? 0,
    repetitionPenalty: 1,
    ...(b.seed !== null && b.seed !== undefined ? { seed: b.seed >>> 0 } : {}),
    logitBias: Object.fromEntries(Object.entries(b.logit_bias ?? {}).map(([k, v]) => [Number(k), v])),
    topLogprobs: b.top_logprobs ?? 0,
    logprobs: b.logprobs ?? false,
  };
}

/** An AbortController fired when the response closes before it finished: the client went away. */
export function abortOnClientClose(reply: FastifyReply): AbortController {
  const controller = new AbortController();
  // The request's own "close" only says its body was read; the response's says the socket is gone.
  reply.raw.on("close", () => {
    if (!reply.raw.writableFinished) controller.abort();
  });
  return controller;
}

/** Opens an SSE response on a hijacked reply. */
export function openEventStream(reply: FastifyReply): void {
  reply.hijack();
  reply.raw.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
    connection: "keep-alive",
    "x-request-id": reply.request.id,
  });
}
