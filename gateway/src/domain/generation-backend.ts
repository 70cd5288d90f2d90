/**
 * The port the gateway's domain uses to run a generation on some engine group. The worker-pool adapter
 * routes over gRPC; tests can use a scripted token source behind the same contract.
 */
import type { GenerateRequest, GenerateResponse } from "@expertmesh/proto/worker";

export interface GenerationBackend {
  /** Streams the worker's events; aborting the signal cancels the remote stream. Throws AppError. */
  generate(model: string, request: GenerateRequest, signal: AbortSignal): AsyncIterable<GenerateResponse>;
  /** Models some ready engine group serves. */
  models(): string[];
}
