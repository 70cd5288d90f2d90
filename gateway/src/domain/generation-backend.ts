/**
 * The port the gateway's domain uses to run a generation on some engine group. The worker-pool adapter
 * routes over gRPC; tests can use a scripted token source behind the same contract.
 */
import type { GenerateRequest, GenerateResponse } from "@expertmesh/proto/worker";
import type { Context } from "@opentelemetry/api";

export interface GenerationBackend {
  /**
   * Streams the worker's events; aborting the signal cancels the remote stream. Throws AppError.
   * `parent` is the caller's context: its trace (from its traceparent header) and, once it authenticated,
   * who it is (domain/caller.ts). Decorators pass it on unchanged.
   */
  generate(model: string, request: GenerateRequest, signal: AbortSignal, parent?: Context): AsyncIterable<GenerateResponse>;
  /** Models some ready engine group serves. */
  models(): string[];
}
