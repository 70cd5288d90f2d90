/**
 * The port between the gRPC transport and whatever runs the model. The transport only sees this
 * interface; the native engine (kernels/) and test stubs implement it.
 *
 * Contract:
 * - generate() yields token batches in order and ends with exactly one Finished event, or throws an
 *   AppError from the worker catalogue before or between batches.
 * - aborting the signal makes generate() finish with FINISH_REASON_ABORTED at the next step.
 * - abort(requestId) is idempotent; it returns false when the id is unknown.
 * - request.deadline_unix_ms (set by the transport from the gRPC deadline too) ends the request with a
 *   deadline_exceeded error once passed.
 */

import type { PrefixSummary } from "@expertmesh/proto/cluster";
import type { Finished, GenerateRequest, InfoResponse, TokenBatch } from "@expertmesh/proto/worker";
import type { SpanContext } from "@opentelemetry/api";

export type EngineEvent = { kind: "tokens"; tokens: TokenBatch } | { kind: "finished"; finished: Finished };

export interface EnginePort {
  /** False until a model is loaded; the reason is shown to clients and in health. */
  readonly ready: boolean;
  readonly notReadyReason: string;
  info(): Omit<InfoResponse, "workerId" | "rank" | "worldSize">;
  /** trace: the request's span, linked from the engine steps that serve it. */
  generate(request: GenerateRequest, signal: AbortSignal, trace?: SpanContext): AsyncIterable<EngineEvent>;
  abort(requestId: string): boolean;
  /** What its prefix cache holds, published for cache-aware routing (absent: no cache). */
  prefixSummary?(): PrefixSummary;
  /** Stops admitting and resolves once admitted work has finished (absent: nothing to wait for). */
  drain?(): Promise<void>;
}
