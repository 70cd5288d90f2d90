/**
 * Error catalogue base. Each service declares one catalogue: stable code → HTTP status, gRPC status,
 * OpenAI error type and a message template. Transport layers map an AppError to their wire shape;
 * domain code only ever throws catalogue errors.
 */

/** grpc-js status codes, repeated here so this package does not depend on grpc-js. */
export const GrpcCode = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;
export type GrpcCode = (typeof GrpcCode)[keyof typeof GrpcCode];

export type OpenAiErrorType =
  | "invalid_request_error"
  | "authentication_error"
  | "permission_error"
  | "not_found_error"
  | "rate_limit_error"
  | "server_error";

export interface ErrorSpec<P> {
  http: number;
  grpc: GrpcCode;
  type: OpenAiErrorType;
  /** Whether a client may retry the same request. */
  retryable: boolean;
  message: (params: P) => string;
}

export class AppError<C extends string = string> extends Error {
  override readonly name = "AppError";
  readonly code: C;
  readonly http: number;
  readonly grpc: GrpcCode;
  readonly type: OpenAiErrorType;
  readonly retryable: boolean;
  readonly param: string | null;
  readonly retryAfterMs: number | undefined;

  constructor(code: C, spec: ErrorSpec<never>, message: string, extra: ErrorExtra = {}) {
    super(message, extra.cause === undefined ? undefined : { cause: extra.cause });
    this.code = code;
    this.http = spec.http;
    this.grpc = spec.grpc;
    this.type = spec.type;
    this.retryable = spec.retryable;
    this.param = extra.param ?? null;
    this.retryAfterMs = extra.retryAfterMs;
  }

  /** The OpenAI error body: {"error": {"message", "type", "param", "code"}}. */
  toOpenAi(): { error: { message: string; type: OpenAiErrorType; param: string | null; code: string } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

export interface ErrorExtra {
  param?: string;
  retryAfterMs?: number;
  cause?: unknown;
}

// biome-ignore lint/suspicious/noExplicitAny: the catalogue's parameter types are inferred per entry
type Catalogue = Record<string, ErrorSpec<any>>;

/** Declares a catalogue and returns a typed factory: errors.create("model_not_found", { model }). */
export function defineErrorCatalogue<T extends Catalogue>(specs: T) {
  return {
    specs,
    create<C extends keyof T & string>(code: C, params: Parameters<T[C]["message"]>[0], extra?: ErrorExtra): AppError<C> {
      const spec = specs[code] as ErrorSpec<unknown>;
      return new AppError(code, spec as ErrorSpec<never>, spec.message(params), extra);
    },
    is(err: unknown): err is AppError<keyof T & string> {
      return err instanceof AppError && err.code in specs;
    },
  };
}
