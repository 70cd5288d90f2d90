/**
 * The grammar package's error catalogue. Spec errors (400s naming what is wrong) are raised where the
 * gateway builds a spec and again where the worker parses one; engine errors come from compiling and
 * matching. Transport layers map these to HTTP or gRPC with the shared AppError fields.
 */
import { defineErrorCatalogue, GrpcCode } from "@expertmesh/common";

export const grammarErrors = defineErrorCatalogue({
  unsupported_schema_keyword: {
    http: 400,
    grpc: GrpcCode.INVALID_ARGUMENT,
    type: "invalid_request_error",
    retryable: false,
    message: (p: { keyword: string; path: string; where: string }) =>
      `${p.where}: JSON schema keyword "${p.keyword}" at ${p.path} is not supported by constrained decoding`,
  },
  schema_too_complex: {
    http: 400,
    grpc: GrpcCode.INVALID_ARGUMENT,
    type: "invalid_request_error",
    retryable: false,
    message: (p: { where: string; path: string; detail: string }) =>
      `${p.where}: the JSON schema at ${p.path} ${p.detail}, more than constrained decoding accepts`,
  },
  invalid_constraint: {
    http: 400,
    grpc: GrpcCode.INVALID_ARGUMENT,
    type: "invalid_request_error",
    retryable: false,
    message: (p: { field: string; problem: string }) => `constraint ${p.field}: ${p.problem}`,
  },
  compile_too_slow: {
    http: 400,
    grpc: GrpcCode.INVALID_ARGUMENT,
    type: "invalid_request_error",
    retryable: false,
    message: (p: { ms: number; limitMs: number }) =>
      `the constraint took ${p.ms.toFixed(0)} ms to compile, over the limit of ${p.limitMs} ms; simplify the schema`,
  },
  matcher_misuse: {
    http: 500,
    grpc: GrpcCode.INTERNAL,
    type: "server_error",
    retryable: false,
    message: (p: { detail: string }) => `grammar matcher: ${p.detail}`,
  },
});

export type GrammarErrorCode = keyof typeof grammarErrors.specs;
