/**
 * Tokens per minute per API key, applied to any GenerationBackend (as AdmittingBackend applies
 * admission): the prompt's tokens are reserved when a generation starts — refused with 429
 * rate_limit_exceeded when the key's remaining tokens cannot cover them — and completion tokens are
 * charged as they stream (in batches of `flushTokens`, and the rest when the generation ends, however it
 * ends). A generation that passes the limit mid-way is not cut off; the key's next one is refused. One
 * that fails before its first token (overloaded, no engine, client gone) gives its prompt back, so
 * retries under overload do not eat the key's budget.
 *
 * The key comes from the caller context (domain/caller.ts); without a caller (auth off) or with a limit of
 * 0 the inner backend is returned untouched, at no cost per token. With n > 1 choices every choice is a
 * generation and reserves its own prompt: the engine does process it once per choice.
 */
import type { GenerateRequest, GenerateResponse } from "@expertmesh/proto/worker";
import type { Context } from "@opentelemetry/api";
import { gatewayErrors } from "../errors.ts";
import { type Caller, callerOf } from "./caller.ts";
import { type GenerationBackend, relay } from "./generation-backend.ts";
import type { RateLimiter } from "./rate-limiter.ts";

export const TOKEN_WINDOW_MS = 60_000;

export interface TokenLimitOptions {
  limiter: RateLimiter;
  /** Default tokens per minute per key (0 = unlimited); a key record may override it. */
  tokensPerMinute: number;
  /** Completion tokens are charged every this many (default 64), and at the end. */
  flushTokens?: number;
  /** Told when charging completion tokens fails (the generation itself goes on). */
  onChargeError?: (err: unknown) => void;
}

export class TokenLimitedBackend implements GenerationBackend {
  readonly #inner: GenerationBackend;
  readonly #o: TokenLimitOptions;

  constructor(inner: GenerationBackend, o: TokenLimitOptions) {
    this.#inner = inner;
    this.#o = o;
  }

  generate(model: string, request: GenerateRequest, signal: AbortSignal, parent?: Context): AsyncIterable<GenerateResponse> {
    const caller = callerOf(parent);
    const limit = caller ? (caller.key.tokens_per_minute ?? this.#o.tokensPerMinute) : 0;
    if (!caller || limit <= 0) return this.#inner.generate(model, request, signal, parent);
    return this.#limited(caller, limit, model, request, signal, parent);
  }

  models(): string[] {
    return this.#inner.models();
  }

  #limited(
    caller: Caller,
    limit: number,
    model: string,
    request: GenerateRequest,
    signal: AbortSignal,
    parent?: Context,
  ): AsyncIterable<GenerateResponse> {
    const { limiter } = this.#o;
    const bucket = `tpm:${caller.key.id}`;
    const prompt = request.promptTokenIds.length;
    const flushTokens = this.#o.flushTokens ?? 64;
    let reserved = false;
    let pending = 0;
    let generated = 0;
    // Off the token path: the stream does not wait for Redis (one connection keeps the charges in order).
    const flush = () => {
      const n = pending;
      pending = 0;
      if (n !== 0) void limiter.charge(bucket, n, TOKEN_WINDOW_MS).catch((err) => this.#o.onChargeError?.(err));
    };
    return relay(
      async () => {
        const d = await limiter.reserve(bucket, prompt, limit, TOKEN_WINDOW_MS);
        caller.onTokenDecision?.(d);
        if (!d.allowed)
          throw gatewayErrors.create(
            "rate_limit_exceeded",
            { key: caller.key.id, unit: "tokens", limit, requested: prompt },
            { retryAfterMs: d.resetMs },
          );
        reserved = true;
        return this.#inner.generate(model, request, signal, parent)[Symbol.asyncIterator]();
      },
      {
        onEvent: (e) => {
          const n = e.tokens?.tokens.length ?? 0;
          generated += n;
          pending += n;
          if (pending >= flushTokens) flush();
        },
        onEnd: (err) => {
          if (!reserved) return;
          if (err !== undefined && generated === 0) pending -= prompt;
          flush();
        },
      },
    );
  }
}
