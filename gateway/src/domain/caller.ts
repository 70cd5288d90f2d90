/**
 * Who asked for a generation, carried in the Context every GenerationBackend already receives (the
 * caller's trace context: OTel's own mechanism for request-scoped values), so decorators such as the
 * token limiter can see the API key without each route passing it along. Typed accessors only; the
 * context key is private to this file.
 */
import { type Context, createContextKey } from "@opentelemetry/api";
import type { ApiKeyRecord } from "./api-keys.ts";
import type { RateDecision } from "./rate-limiter.ts";

export interface Caller {
  /** The authenticated key. */
  key: ApiKeyRecord;
  /** Told the token-limit decision taken when the generation is admitted (sent as x-ratelimit-*-tokens). */
  onTokenDecision?: (d: RateDecision) => void;
}

const CALLER = createContextKey("expertmesh.caller");

export function withCaller(ctx: Context, caller: Caller): Context {
  return ctx.setValue(CALLER, caller);
}

export function callerOf(ctx: Context | undefined): Caller | undefined {
  return ctx?.getValue(CALLER) as Caller | undefined;
}
