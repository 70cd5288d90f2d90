/**
 * One mapping for every Redis-backed port: a Redis that refuses connections, hangs or is still loading
 * becomes the typed `store_unavailable` (503, retry-after), never a 500 or a request that hangs.
 * `redisOptions` makes ioredis fail a command at once while disconnected and after `timeoutMs` when
 * Redis does not answer; `guardRedis` also bounds calls that wait for a connection before sending any
 * command (BullMQ's queue does), and maps what they throw.
 */
import { AppError } from "@expertmesh/common";
import type { RedisOptions } from "ioredis";
import type { RateDecision, RateLimiter } from "../domain/rate-limiter.ts";
import { gatewayErrors } from "../errors.ts";

/** Client options for request-path Redis connections (not for BullMQ workers, which block). */
export function redisOptions(timeoutMs: number): RedisOptions {
  return {
    // Fail while disconnected instead of queueing until the reconnect: the caller gets its 503 now.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: timeoutMs,
    connectTimeout: timeoutMs,
    // Keep reconnecting (capped backoff), so the routes serve again once Redis is back.
    retryStrategy: (times) => Math.min(times * 100, 1_000),
  };
}

const NETWORK_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT", "EHOSTUNREACH", "ENOTFOUND", "EAI_AGAIN"]);
const UNAVAILABLE_MESSAGE =
  /^(Command timed out|Connection is closed|Stream isn't writeable|Reached the max retries per request|LOADING|BUSY|MASTERDOWN|TRYAGAIN|CLUSTERDOWN)/;

/** Whether an error means "Redis cannot answer now" (as opposed to a bug or bad data). */
export function isRedisUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as NodeJS.ErrnoException).code;
  return (
    err.name === "MaxRetriesPerRequestError" || (code !== undefined && NETWORK_CODES.has(code)) || UNAVAILABLE_MESSAGE.test(err.message)
  );
}

export function storeUnavailable(what: string, retryAfterMs: number): AppError {
  return gatewayErrors.create("store_unavailable", { what }, { retryAfterMs });
}

export interface GuardOptions {
  /** Named in the 503's message ("the response store"). */
  what: string;
  /** A call that has not settled by then is answered with 503 (it may still complete later). */
  timeoutMs: number;
  /** Sent as retry-after. */
  retryAfterMs?: number;
  /** Methods that stream a request body (uploads): their errors are mapped, their time is not bounded. */
  unbounded?: readonly string[];
}

async function bounded<T>(work: Promise<T>, o: GuardOptions, timed: boolean): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    if (timed) timer = setTimeout(() => reject(storeUnavailable(o.what, o.retryAfterMs ?? 1_000)), o.timeoutMs);
  });
  try {
    return await Promise.race([work, expired]);
  } catch (err) {
    if (isRedisUnavailable(err)) throw storeUnavailable(o.what, o.retryAfterMs ?? 1_000);
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The same object, each async method bounded and its Redis failures mapped. Methods run on the target
 * itself (private fields work); synchronous results pass through untouched.
 */
export function guardRedis<T extends object>(target: T, o: GuardOptions): T {
  return new Proxy(target, {
    get(t, prop) {
      const value = Reflect.get(t, prop, t);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        const out = value.apply(t, args);
        if (!(out instanceof Promise)) return out;
        // A rejection of the raw promise after the timeout won the race is expected: keep it handled.
        out.catch(() => {});
        return bounded(out, o, !o.unbounded?.includes(String(prop)));
      };
    },
  });
}

/**
 * Rate limits fail open: a Redis outage must not take down serving that needs no Redis, and admission
 * control still bounds the load. After a failure Redis is not asked again for `pauseMs`, so a hung
 * Redis does not add its timeout to every request.
 */
export class FailOpenRateLimiter implements RateLimiter {
  readonly #inner: RateLimiter;
  readonly #pauseMs: number;
  readonly #onFailure: (err: unknown) => void;
  #pausedUntil = 0;

  constructor(inner: RateLimiter, pauseMs: number, onFailure: (err: unknown) => void = () => {}) {
    this.#inner = inner;
    this.#pauseMs = pauseMs;
    this.#onFailure = onFailure;
  }

  hit(key: string, limit: number, windowMs: number): Promise<RateDecision> {
    return this.#open(() => this.#inner.hit(key, limit, windowMs), limit, windowMs);
  }

  reserve(key: string, amount: number, limit: number, windowMs: number): Promise<RateDecision> {
    return this.#open(() => this.#inner.reserve(key, amount, limit, windowMs), limit, windowMs);
  }

  async charge(key: string, amount: number, windowMs: number): Promise<void> {
    await this.#open(() => this.#inner.charge(key, amount, windowMs), 0, windowMs);
  }

  async #open<T>(call: () => Promise<T>, limit: number, windowMs: number): Promise<T | RateDecision> {
    const allowed: RateDecision = { allowed: true, limit, remaining: limit, resetMs: windowMs };
    if (Date.now() < this.#pausedUntil) return allowed;
    try {
      return await call();
    } catch (err) {
      if (!(err instanceof AppError && err.code === "store_unavailable") && !isRedisUnavailable(err)) throw err;
      this.#pausedUntil = Date.now() + this.#pauseMs;
      this.#onFailure(err);
      return allowed;
    }
  }
}
