/**
 * One generation as the BatchEngine tracks it: what is still to be computed, its KV blocks, its output
 * and the channel its events go to. Built from the request here, with what a step and a finish read of
 * it; the engine owns every change after.
 */
import { randomBytes } from "node:crypto";
import type { SamplingOptions, StepSequence } from "@expertmesh/kernels";
import { type Finished, FinishReason, type GenerateRequest, Priority } from "@expertmesh/proto/worker";
import type { SpanContext } from "@opentelemetry/api";
import { Channel } from "./channel.ts";
import type { SequenceConstraint } from "./constraints.ts";
import type { EngineEvent } from "./engine-port.ts";
import { type BlockTables, emptyTables } from "./kv-cache.ts";
import type { ScheduledSequence } from "./scheduler.ts";

/** Mutable here: the fields the Scheduler reads are documented on ScheduledSequence. */
export interface Live extends ScheduledSequence {
  request: GenerateRequest;
  batch: boolean; // PRIORITY_BATCH
  prompt: number[];
  promptLength: number; // the client's prompt length (usage)
  output: number[];
  fed: number;
  unfed: number;
  opened: boolean;
  constraint: SequenceConstraint | undefined;
  blocks: BlockTables;
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
  admittedSeq: number;
  trace: SpanContext | undefined;
  cachedTokens: number; // prompt tokens served from the prefix cache at first admission
  queried: boolean; // prefix-cache metrics counted
  promptChain?: string[] | undefined; // its prompt's block hashes, computed once another sequence waits on them
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
    blocks: emptyTables(),
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
    cachedTokens: 0,
    queried: false,
  };
}

/** The sequence's tokens in position order: its prompt, then what it generated. */
export function tokensOf(live: Live): number[] {
  return live.prompt.length === live.promptLength
    ? [...live.prompt, ...live.output]
    : [...live.prompt.slice(0, live.promptLength), ...live.output];
}

/** Preemption by recompute: the sequence waits again with its output folded into its prompt, nothing in the KV cache. */
export function foldForRecompute(live: Live, now: number): void {
  live.prompt = [...live.prompt.slice(0, live.promptLength), ...live.output];
  live.promptChain = undefined;
  live.fed = 0;
  live.unfed = 0;
  live.waitingSince = now;
}

/** The step entry that feeds `tokens` of the sequence, sampling after them when `sample`. */
export function stepEntry(live: Live, tokens: number[], sample: boolean): StepSequence {
  // Past the prompt, the rows fed are the output tokens not in the cache yet (see Live.unfed).
  const posBegin = live.fed < live.prompt.length ? live.fed : live.promptLength + live.output.length - live.unfed;
  return {
    tokens,
    posBegin,
    fullBlocks: live.blocks.full,
    slidingBlocks: live.blocks.sliding,
    returnLogits: false,
    ...(sample
      ? {
          sampling: {
            ...live.sampling,
            counter: live.output.length,
            promptTokens: live.sampling.repetitionPenalty !== 1 ? live.prompt.slice(0, live.promptLength) : [],
            outputTokens: live.output,
          },
        }
      : {}),
  };
}

/** The Finished event of a sequence that ended (not failed) at `now`, having pinned `pinnedBlocks` for its tool call. */
export function finishedOf(live: Live, reason: FinishReason | undefined, now: number, pinnedBlocks = 0): Finished {
  return {
    reason: reason ?? FinishReason.FINISH_REASON_STOP,
    usage: { promptTokens: live.promptLength, completionTokens: live.output.length, cachedPromptTokens: live.cachedTokens },
    timings: {
      queueSeconds: ((live.started || now) - live.enqueued) / 1000,
      firstTokenSeconds: live.firstToken ? (live.firstToken - live.enqueued) / 1000 : 0,
    },
    reasoningTruncated: live.constraint?.truncated ?? false,
    pinnedBlocks,
  };
}
