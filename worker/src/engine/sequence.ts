/**
 * One generation as the BatchEngine tracks it: what is still to be computed, its KV blocks, its output
 * and the channel its events go to. Built from the request here; the engine owns every change after.
 */
import { randomBytes } from "node:crypto";
import type { SamplingOptions } from "@expertmesh/kernels";
import { type GenerateRequest, Priority } from "@expertmesh/proto/worker";
import type { SpanContext } from "@opentelemetry/api";
import { Channel } from "./channel.ts";
import type { SequenceConstraint } from "./constraints.ts";
import type { EngineEvent } from "./engine-port.ts";

export interface Live {
  request: GenerateRequest;
  batch: boolean; // PRIORITY_BATCH
  prompt: number[]; // tokens to (re)compute before decoding: the prompt, plus output after a preemption
  promptLength: number; // the client's prompt length (usage)
  output: number[];
  fed: number; // prompt tokens already in the KV cache
  /** Output tokens not in the KV cache yet: the last sampled one, plus any forced after it. */
  unfed: number;
  /** False while the constraint compiles: not admitted yet. */
  opened: boolean;
  constraint: SequenceConstraint | undefined;
  fullBlocks: number[];
  slidingBlocks: number[]; // by position; -1 once wholly out of the window
  channel: Channel<EngineEvent>;
  aborted: boolean;
  deadline: number; // epoch ms, 0 = none
  sampling: SamplingOptions;
  stops: Set<number>;
  enqueued: number; // performance.now() at submission
  waitingSince: number;
  started: number;
  firstToken: number;
  lastToken: number;
  admittedSeq: number; // admission order: newest = largest
  trace: SpanContext | undefined;
  hashes: string[]; // chain hashes of the complete token blocks computed so far
  registered: number; // blocks registered with the prefix cache
  cachedTokens: number; // prompt tokens served from the prefix cache at first admission
  queried: boolean; // prefix-cache metrics counted
}

/** The native sampler's settings for a request: proto defaults (0 = off) mapped to the engine's. */
function samplingOf(request: GenerateRequest): SamplingOptions {
  const s = request.sampling;
  return {
    temperature: s?.temperature ?? 0,
    topP: s?.topP ? s.topP : 1,
    topK: s?.topK ?? 0,
    minP: s?.minP ?? 0,
    presencePenalty: s?.presencePenalty ?? 0,
    frequencyPenalty: s?.frequencyPenalty ?? 0,
    repetitionPenalty: s?.repetitionPenalty ? s.repetitionPenalty : 1,
    seed: s?.seed !== undefined ? BigInt(s.seed) : randomBytes(8).readBigUInt64LE(),
    topLogprobs: s?.topLogprobs ?? 0,
    logitBias: new Map(Object.entries(s?.logitBias ?? {}).map(([k, v]) => [Number(k), v])),
  };
}

/** A validated request's record, waiting; `opened` is false when its constraint has yet to compile. */
export function newLive(request: GenerateRequest, eosTokenId: number, trace: SpanContext | undefined): Live {
  const now = performance.now();
  return {
    request,
    batch: request.priority === Priority.PRIORITY_BATCH,
    prompt: [...request.promptTokenIds],
    promptLength: request.promptTokenIds.length,
    output: [],
    fed: 0,
    unfed: 0,
    opened: request.constraint === undefined && request.maxReasoningTokens === 0,
    constraint: undefined,
    fullBlocks: [],
    slidingBlocks: [],
    channel: new Channel<EngineEvent>(),
    aborted: false,
    deadline: request.deadlineUnixMs,
    sampling: samplingOf(request),
    stops: new Set(request.stopTokenIds.length > 0 ? request.stopTokenIds : [eosTokenId]),
    enqueued: now,
    waitingSince: now,
    started: 0,
    firstToken: 0,
    lastToken: 0,
    admittedSeq: 0,
    trace,
    hashes: [],
    registered: 0,
    cachedTokens: 0,
    queried: false,
  };
}
