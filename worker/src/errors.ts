/**
 * The worker's error catalogue. The gRPC edge maps each to a status plus an ErrorDetail
 * (metadata "expertmesh-error-bin") so clients branch on a typed kind, never on message text.
 */
import { defineErrorCatalogue, GrpcCode } from "@expertmesh/common";
import { ErrorKind } from "@expertmesh/proto/worker";

export const workerErrors = defineErrorCatalogue({
  invalid_argument: {
    http: 400,
    grpc: GrpcCode.INVALID_ARGUMENT,
    type: "invalid_request_error",
    retryable: false,
    message: (p: { field: string; problem: string }) => `${p.field}: ${p.problem}`,
  },
  context_length_exceeded: {
    http: 400,
    grpc: GrpcCode.OUT_OF_RANGE,
    type: "invalid_request_error",
    retryable: false,
    message: (p: { requested: number; limit: number }) =>
      `prompt plus max_tokens is ${p.requested} tokens, over the context length of ${p.limit}`,
  },
  queue_full: {
    http: 429,
    grpc: GrpcCode.RESOURCE_EXHAUSTED,
    type: "rate_limit_error",
    retryable: true,
    message: (p: { waiting: number }) => `the worker queue is full (${p.waiting} waiting)`,
  },
  not_ready: {
    http: 503,
    grpc: GrpcCode.UNAVAILABLE,
    type: "server_error",
    retryable: true,
    message: (p: { reason: string }) => `the worker is not ready: ${p.reason}`,
  },
  deadline_exceeded: {
    http: 504,
    grpc: GrpcCode.DEADLINE_EXCEEDED,
    type: "server_error",
    retryable: false,
    message: (p: { deadlineMs: number }) => `the request deadline (${new Date(p.deadlineMs).toISOString()}) passed before it finished`,
  },
  engine_failure: {
    http: 500,
    grpc: GrpcCode.INTERNAL,
    type: "server_error",
    retryable: false,
    message: (p: { detail: string }) => `engine failure: ${p.detail}`,
  },
});

export type WorkerErrorCode = keyof typeof workerErrors.specs;

/** The typed kind carried to clients for each catalogue code. */
export const errorKindOf: Record<WorkerErrorCode, ErrorKind> = {
  invalid_argument: ErrorKind.ERROR_KIND_INVALID_ARGUMENT,
  context_length_exceeded: ErrorKind.ERROR_KIND_CONTEXT_LENGTH_EXCEEDED,
  queue_full: ErrorKind.ERROR_KIND_QUEUE_FULL,
  not_ready: ErrorKind.ERROR_KIND_NOT_READY,
  deadline_exceeded: ErrorKind.ERROR_KIND_DEADLINE_EXCEEDED,
  engine_failure: ErrorKind.ERROR_KIND_ENGINE_FAILURE,
};
