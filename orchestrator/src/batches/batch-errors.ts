/** The Files and Batches error catalogue: OpenAI-shaped at the gateway, stable codes everywhere. */
import { defineErrorCatalogue, GrpcCode } from "@expertmesh/common";

export const batchErrors = defineErrorCatalogue({
  file_not_found: {
    http: 404,
    grpc: GrpcCode.NOT_FOUND,
    type: "invalid_request_error",
    retryable: false,
    message: (p: { id: string }) => `No such File object: ${p.id}`,
  },
  batch_not_found: {
    http: 404,
    grpc: GrpcCode.NOT_FOUND,
    type: "invalid_request_error",
    retryable: false,
    message: (p: { id: string }) => `No batch found with id '${p.id}'.`,
  },
  invalid_file: {
    http: 400,
    grpc: GrpcCode.INVALID_ARGUMENT,
    type: "invalid_request_error",
    retryable: false,
    message: (p: { detail: string }) => p.detail,
  },
  file_too_large: {
    http: 413,
    grpc: GrpcCode.INVALID_ARGUMENT,
    type: "invalid_request_error",
    retryable: false,
    message: (p: { limit: number }) => `The file exceeds the maximum size of ${p.limit} bytes.`,
  },
  invalid_batch: {
    http: 400,
    grpc: GrpcCode.INVALID_ARGUMENT,
    type: "invalid_request_error",
    retryable: false,
    message: (p: { detail: string }) => p.detail,
  },
  batch_not_cancellable: {
    http: 409,
    grpc: GrpcCode.FAILED_PRECONDITION,
    type: "invalid_request_error",
    retryable: false,
    message: (p: { id: string; status: string }) => `Batch ${p.id} cannot be cancelled: it is ${p.status}.`,
  },
  batches_unavailable: {
    http: 503,
    grpc: GrpcCode.UNAVAILABLE,
    type: "server_error",
    retryable: true,
    message: (p: { reason: string }) => p.reason,
  },
});
