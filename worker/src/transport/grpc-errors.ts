/**
 * Maps worker catalogue errors onto gRPC: status code, message, and a typed ErrorDetail in the binary
 * metadata key "expertmesh-error-bin". Unknown errors become INTERNAL with ENGINE_FAILURE.
 */
import { AppError, GrpcCode } from "@expertmesh/common";
import { ErrorDetail, ErrorKind } from "@expertmesh/proto/worker";
import { Metadata as GrpcMetadata, type Metadata, type ServiceError, type StatusObject } from "@grpc/grpc-js";
import { errorKindOf, type WorkerErrorCode, workerErrors } from "../errors.ts";

export const ERROR_DETAIL_KEY = "expertmesh-error-bin";

/** The status code and typed detail an error maps to (GenerateStream sends them as a GenerationError). */
export function toErrorDetail(err: unknown): { code: number; details: string; detail: ErrorDetail } {
  if (err instanceof AppError && workerErrors.is(err)) {
    const detail = { kind: errorKindOf[err.code as WorkerErrorCode], message: err.message, retryAfterMs: err.retryAfterMs ?? 0 };
    return { code: err.grpc, details: err.message, detail };
  }
  const message = err instanceof Error ? err.message : String(err);
  return {
    code: GrpcCode.INTERNAL,
    details: `internal error: ${message}`,
    detail: { kind: ErrorKind.ERROR_KIND_ENGINE_FAILURE, message, retryAfterMs: 0 },
  };
}

export function toGrpcError(err: unknown): Partial<StatusObject> & { code: number; details: string; metadata: Metadata } {
  const { code, details, detail } = toErrorDetail(err);
  const metadata = new GrpcMetadata();
  metadata.set(ERROR_DETAIL_KEY, Buffer.from(ErrorDetail.encode(detail).finish()));
  return { code, details, metadata };
}

/** Client side: the typed detail of a failed call, if the worker sent one. */
export function errorDetailOf(err: ServiceError): ErrorDetail | undefined {
  const raw = err.metadata?.get(ERROR_DETAIL_KEY)[0];
  return raw instanceof Buffer ? ErrorDetail.decode(raw) : undefined;
}
