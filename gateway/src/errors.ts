/** The gateway's error catalogue; every HTTP error body is OpenAI-shaped ({error:{message,type,param,code}}). */
import { defineErrorCatalogue, GrpcCode } from "@expertmesh/common";

export const gatewayErrors = defineErrorCatalogue({
  invalid_api_key: {
    http: 401,
    grpc: GrpcCode.UNAUTHENTICATED,
    type: "authentication_error",
    retryable: false,
    message: (p: { reason: string }) => p.reason,
  },
  not_found: {
    http: 404,
    grpc: GrpcCode.NOT_FOUND,
    type: "invalid_request_error",
    retryable: false,
    message: (p: { method: string; url: string }) => `Unknown request URL: ${p.method} ${p.url}`,
  },
  model_not_found: {
    http: 404,
    grpc: GrpcCode.NOT_FOUND,
    type: "invalid_request_error",
    retryable: false,
    message: (p: { model: string }) => `The model '${p.model}' does not exist or you do not have access to it.`,
  },
  response_not_found: {
    http: 404,
    grpc: GrpcCode.NOT_FOUND,
    type: "invalid_request_error",
    retryable: false,
    message: (p: { id: string }) => `Response with id '${p.id}' not found.`,
  },
  invalid_request_error: {
    http: 400,
    grpc: GrpcCode.INVALID_ARGUMENT,
    type: "invalid_request_error",
    retryable: false,
    message: (p: { detail: string }) => p.detail,
  },
  /** A schema the request asks constrained decoding to enforce uses a keyword it cannot (README, "Constrained decoding"). */
  unsupported_schema_keyword: {
    http: 400,
    grpc: GrpcCode.INVALID_ARGUMENT,
    type: "invalid_request_error",
    retryable: false,
    message: (p: { detail: string }) => p.detail,
  },
  prompt_too_complex: {
    http: 400,
    grpc: GrpcCode.INVALID_ARGUMENT,
    type: "invalid_request_error",
    retryable: false,
    message: (p: { ms: number }) =>
      `Preparing this prompt took longer than the ${p.ms} ms a request may spend on it (GATEWAY_RENDER_BUDGET_MS); shorten the input.`,
  },
  context_length_exceeded: {
    http: 400,
    grpc: GrpcCode.OUT_OF_RANGE,
    type: "invalid_request_error",
    retryable: false,
    message: (p: { detail: string }) => `This model's maximum context length was exceeded: ${p.detail}`,
  },
  rate_limit_exceeded: {
    http: 429,
    grpc: GrpcCode.RESOURCE_EXHAUSTED,
    type: "rate_limit_error",
    retryable: true,
    message: (p: { key: string; unit: "requests" | "tokens"; limit: number; requested?: number }) =>
      p.requested !== undefined && p.requested > p.limit
        ? `Request too large for key ${p.key} on ${p.unit} per minute: limit ${p.limit}, requested ${p.requested}. Send fewer ${p.unit}.`
        : `Rate limit reached for key ${p.key} on ${p.unit} per minute: limit ${p.limit}` +
          (p.requested === undefined ? "" : `, requested ${p.requested}`) +
          ". Please retry after the indicated time.",
  },
  overloaded: {
    http: 429,
    grpc: GrpcCode.RESOURCE_EXHAUSTED,
    type: "rate_limit_error",
    retryable: true,
    message: (p: { reason: string }) => `The server is overloaded (${p.reason}); retry after the indicated delay.`,
  },
  timeout: {
    http: 504,
    grpc: GrpcCode.DEADLINE_EXCEEDED,
    type: "server_error",
    retryable: true,
    message: (p: { detail: string }) => `The request timed out: ${p.detail}`,
  },
  request_too_large: {
    http: 413,
    grpc: GrpcCode.INVALID_ARGUMENT,
    type: "invalid_request_error",
    retryable: false,
    message: (p: { limit: number }) => `The request body is over the limit of ${p.limit} bytes (GATEWAY_BODY_LIMIT_BYTES).`,
  },
  request_timeout: {
    http: 408,
    grpc: GrpcCode.DEADLINE_EXCEEDED,
    type: "invalid_request_error",
    retryable: true,
    message: (p: { detail: string }) => `The request body was not received in time: ${p.detail}`,
  },
  upstream_error: {
    http: 502,
    grpc: GrpcCode.INTERNAL,
    type: "server_error",
    retryable: true,
    message: (p: { detail: string }) => `The engine failed: ${p.detail}`,
  },
  server_error: {
    http: 500,
    grpc: GrpcCode.INTERNAL,
    type: "server_error",
    retryable: false,
    message: (p: { requestId: string }) => `The server had an error while processing your request (request id ${p.requestId}).`,
  },
  store_unavailable: {
    http: 503,
    grpc: GrpcCode.UNAVAILABLE,
    type: "server_error",
    retryable: true,
    message: (p: { what: string }) => `${p.what} is unavailable; retry after the indicated delay.`,
  },
  service_unavailable: {
    http: 503,
    grpc: GrpcCode.UNAVAILABLE,
    type: "server_error",
    retryable: true,
    message: (p: { reason: string }) => p.reason,
  },
});
