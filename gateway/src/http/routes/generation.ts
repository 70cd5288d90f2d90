/**
 * What the generating routes (chat completions, Responses) share: OpenAI sampling fields → the worker's
 * SamplingParams, the stop tokens that end an assistant turn, and cancelling the worker stream when the
 * client goes away. The constraint and reasoning budget come in ready-made (output-controls.ts).
 */
import type { Socket } from "node:net";
import { Special, VOCAB_SIZE } from "@expertmesh/grammar/tokenizer";
import { type Constraint, type GenerateResponse, Priority, type SamplingParams } from "@expertmesh/proto/worker";
import { type Context, propagation, ROOT_CONTEXT } from "@opentelemetry/api";
import type { FastifyReply, FastifyRequest } from "fastify";
import { withCaller } from "../../domain/caller.ts";
import type { GenerationBackend, PipeableIterator } from "../../domain/generation-backend.ts";
import { gatewayErrors } from "../../errors.ts";
import { setRateLimitHeaders } from "../rate-limit-headers.ts";

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

/** JSON-schema fragments the generating routes' bodies share. */
export const num = (min: number, max: number) => ({ type: ["number", "null"], minimum: min, maximum: max });
export const STOP_SCHEMA = { anyOf: [{ type: "string" }, { type: "array", items: { type: "string" }, maxItems: 4 }, { type: "null" }] };

/** The largest max_tokens accepted (the wire field is a uint32); the worker then checks the context. */
export const MAX_TOKENS_LIMIT = 2 ** 32 - 1;

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
    logitBias: logitBias(b.logit_bias),
    topLogprobs: b.top_logprobs ?? 0,
    logprobs: b.logprobs ?? false,
  };
}

function logitBias(given: Record<string, number> | null | undefined): Record<number, number> {
  const out: Record<number, number> = {};
  for (const [k, v] of Object.entries(given ?? {})) {
    const id = /^\d{1,6}$/.test(k) ? Number(k) : -1;
    if (id < 0 || id >= VOCAB_SIZE)
      throw gatewayErrors.create(
        "invalid_request_error",
        { detail: `logit_bias keys must be token ids below ${VOCAB_SIZE}; got '${k.slice(0, 32)}'` },
        { param: "logit_bias" },
      );
    if (typeof v !== "number" || !Number.isFinite(v) || v < -100 || v > 100)
      throw gatewayErrors.create(
        "invalid_request_error",
        { detail: `logit_bias values must be numbers in [-100, 100]` },
        { param: "logit_bias" },
      );
    out[id] = v;
  }
  return out;
}

/** The caller's trace context from its traceparent / tracestate headers (the root context without). */
export function callerTrace(request: FastifyRequest): Context {
  return propagation.extract(ROOT_CONTEXT, request.headers);
}

/** The caller's trace context plus, when it authenticated, who it is (for per-key token limits). */
function callerContext(reply: FastifyReply): Context {
  const trace = callerTrace(reply.request);
  const key = reply.request.apiKey;
  return key ? withCaller(trace, { key, onTokenDecision: (d) => setRateLimitHeaders(reply, "tokens", d) }) : trace;
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

/** An open SSE response: writes made in the same tick leave in one syscall; nothing is written after end. */
export interface EventStream {
  write(text: string): void;
  end(text?: string): void;
}

/**
 * One process.nextTick for every stream written in this tick (a worker step delivers tokens for many
 * streams at once), not one per stream.
 */
let dueNow: Array<() => void> = [];
let dueLater: Array<() => void> = [];
let tickScheduled = false;
function flushAtTickEnd(flush: () => void): void {
  dueNow.push(flush);
  if (tickScheduled) return;
  tickScheduled = true;
  process.nextTick(() => {
    tickScheduled = false;
    const due = dueNow;
    dueNow = dueLater;
    dueLater = due;
    for (const f of due) f();
    due.length = 0;
  });
}

/** Opens an SSE response on a hijacked reply, with the headers already set on it (x-ratelimit-*). */
export function openEventStream(reply: FastifyReply): EventStream {
  reply.hijack();
  for (const [name, value] of Object.entries(reply.getHeaders())) if (value !== undefined) reply.raw.setHeader(name, value);
  reply.raw.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
    connection: "keep-alive",
    "x-request-id": reply.request.id,
  });
  const raw = reply.raw;
  // The headers and this tick's events (the role chunk a stream starts with) leave in one socket write, as do
  // the last events and the chunked body's terminator at the end; in between, each tick's events leave as
  // one HTTP chunk in one write. The chunk is framed here and written to the response's own socket: Node's
  // chunked writer sends a chunk as a writev of four pieces behind a cork / nextTick uncork, which is a large
  // part of a token's cost through the gateway. Where the socket is not (yet) this response's own — a
  // pipelined request waiting its turn — or the response is not chunked (HTTP/1.0), the response's write()
  // is used.
  const socket = raw.socket as (Socket & { _httpMessage?: unknown }) | null;
  const framed = raw.chunkedEncoding && socket !== null && socket._httpMessage === raw;
  let corked = false;
  if (framed) {
    socket.cork();
    corked = true;
  }
  raw.flushHeaders();
  let pending = "";
  let scheduled = false;
  const send = (text: string) => {
    if (framed && socket.writable) socket.write(`${Buffer.byteLength(text).toString(16)}\r\n${text}\r\n`);
    else raw.write(text);
  };
  const uncork = () => {
    if (!corked) return;
    corked = false;
    socket?.uncork();
  };
  const flush = () => {
    scheduled = false;
    if (pending !== "" && !raw.writableEnded) {
      const text = pending;
      pending = "";
      send(text);
    }
    uncork();
  };
  // The headers wait for the end of this tick, with whatever the caller writes in it.
  scheduled = true;
  flushAtTickEnd(flush);
  return {
    write(text) {
      if (raw.writableEnded) return;
      pending += text;
      if (!scheduled) {
        // A worker step often delivers several events at once: this tick's events share a chunk.
        scheduled = true;
        flushAtTickEnd(flush);
      }
    },
    end(text = "") {
      const rest = pending + text;
      pending = "";
      if (raw.writableEnded) return uncork();
      // Corked, the last chunk and the terminator raw.end() writes leave together (end() uncorks fully).
      if (framed && !corked) socket.cork();
      corked = false;
      if (rest !== "") send(rest);
      raw.end();
    },
  };
}

export interface GenerationStart {
  /** The request id (also the worker's request id). */
  id: string;
  model: string;
  promptTokenIds: number[];
  sampling: SamplingParams;
  /** The client's limit, or null when it gave none (then `defaultMaxTokens`, lowered to fit the context). */
  maxTokens: number | null;
  defaultMaxTokens: number;
  /** How long the generation may run (the worker call's deadline). */
  timeoutMs: number;
  /** What the output must be (domain/constraints); undefined: free sampling. */
  constraint?: Constraint | undefined;
  /** Tokens the analysis channel may take before the worker forces the answer; 0 = no budget. */
  maxReasoningTokens: number;
}

export interface StartedGeneration {
  controller: AbortController;
  iterator: PipeableIterator<GenerateResponse>;
  /** The first event: it decides between an HTTP error (thrown here) and a 200. */
  first: IteratorResult<GenerateResponse>;
}

/** Starts a generation for an HTTP request: cancelled when the client goes away, in the caller's trace. */
export function startGeneration(backend: GenerationBackend, reply: FastifyReply, g: GenerationStart): Promise<StartedGeneration> {
  return beginGeneration(backend, g, abortOnClientClose(reply), callerContext(reply));
}

/** Starts a generation cancelled by `controller`, in `ctx` (the trace, and the caller for token limits). */
export async function beginGeneration(
  backend: GenerationBackend,
  g: GenerationStart,
  controller: AbortController,
  ctx: Context,
): Promise<StartedGeneration> {
  const iterator = backend
    .generate(
      g.model,
      {
        requestId: g.id,
        promptTokenIds: g.promptTokenIds,
        sampling: g.sampling,
        stopTokenIds: ASSISTANT_STOP_IDS,
        maxTokens: g.maxTokens ?? g.defaultMaxTokens,
        clampMaxTokens: g.maxTokens === null,
        ...(g.constraint ? { constraint: g.constraint } : {}),
        maxReasoningTokens: g.maxReasoningTokens,
        priority: Priority.PRIORITY_ONLINE,
        deadlineUnixMs: Date.now() + g.timeoutMs,
      },
      controller.signal,
      ctx,
    )
    [Symbol.asyncIterator]();
  return { controller, iterator, first: await iterator.next() };
}
