/** RateLimiter on Redis: INCR of a per-key window counter that expires with the window (atomic via MULTI). */
import type { Redis } from "ioredis";
import type { RateDecision, RateLimiter } from "../domain/rate-limiter.ts";

export class RedisRateLimiter implements RateLimiter {
  readonly #redis: Redis;
  readonly #prefix: string;

  constructor(redis: Redis, prefix = "em:ratelimit:") {
    this.#redis = redis;
    this.#prefix = prefix;
  }

  async hit(key: string, limit: number, windowMs: number): Promise<RateDecision> {
    const k = `${this.#prefix}${key}`;
    const res = await this.#redis.multi().incr(k).pexpire(k, windowMs, "NX").pttl(k).exec();
    const count = Number(res?.[0]?.[1] ?? 0);
    const ttl = Number(res?.[2]?.[1] ?? windowMs);
    return { allowed: count <= limit, limit, remaining: Math.max(0, limit - count), resetMs: ttl > 0 ? ttl : windowMs };
  }
}
