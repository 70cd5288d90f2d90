/**
 * The batch engine's observability ports: what it reports (EngineObserver, the metrics) and the span it
 * opens around each native step (StepTracer). The engine defines them and knows no exporter; the worker
 * wires adapters in (metrics.ts: Prometheus, vLLM's names; transport/tracing.ts: OpenTelemetry).
 * Times are in seconds.
 */
import type { SpanContext } from "@opentelemetry/api";

export interface EngineObserver {
  /** A request was queued with this many prompt tokens. */
  queued(promptTokens: number): void;
  /** A request started running for the first time, after waiting this long. */
  started(queueSeconds: number): void;
  /** A sequence's first prefix-cache lookup: tokens looked up, tokens served, the hit rate since start. */
  prefixLookup(queriedTokens: number, hitTokens: number, hitRate: number): void;
  preempted(): void;
  /** Requests running and waiting, and the fraction of full-attention KV blocks in use. */
  load(running: number, waiting: number, kvUsage: number): void;
  /** One native step: its wall time and token rows. */
  stepped(seconds: number, rows: number): void;
  /** Scheduler time of one step outside the native call. */
  scheduled(seconds: number): void;
  /** Time to compute one step's allowed-token masks. */
  masked(seconds: number): void;
  /** A request's first token was sampled, this long after it was queued. */
  firstToken(seconds: number): void;
  /** A request's next token was sampled, this long after its previous one. */
  interToken(seconds: number): void;
  /** Tokens streamed to requests (sampled and forced). */
  generated(tokens: number): void;
  /** A request finished (not failed), this long after it was queued. */
  finished(e2eSeconds: number): void;
  /** Tool-loop pins: `released` pins ended for `reason`, leaving `pinnedBlocks` full-attention blocks pinned. */
  pins(pinnedBlocks: number, released?: { reason: PinRelease; count: number }): void;
}

/** Why a tool-loop pin ended: its follow-up turn arrived, its TTL passed, or live requests needed the blocks. */
export type PinRelease = "follow_up" | "expired" | "pressure";

/** Reports nothing (no metrics registry). */
export const silentObserver: EngineObserver = {
  queued: () => {},
  started: () => {},
  prefixLookup: () => {},
  preempted: () => {},
  load: () => {},
  stepped: () => {},
  scheduled: () => {},
  masked: () => {},
  firstToken: () => {},
  interToken: () => {},
  generated: () => {},
  finished: () => {},
  pins: () => {},
};

/** One engine step as its span records it. */
export interface StepTrace {
  rank: number;
  sequences: number;
  rows: number;
  /** The spans of the requests the step serves. */
  links: SpanContext[];
}

export interface StepTracer {
  /** Opens the step's span; the engine ends it when the native step returns or throws. */
  startStep(step: StepTrace): { end(): void };
}

/** Records nothing. */
export const silentTracer: StepTracer = { startStep: () => ({ end: () => {} }) };
