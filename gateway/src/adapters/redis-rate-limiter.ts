/**
 * RateLimiter on Redis: one counter per key and window that expires with the window. hit and charge are
 * INCR/INCRBY in a MULTI; reserve is a Lua script (check and take in one step, so replicas racing for
 * the last tokens cannot both win).
 */
import type { Redis } from "ioredis";
import type { RateDecision, RateLimiter } from "../domain/rate-limiter.ts";

// KEYS[1] = the counter; ARGV[1] = amount, ARGV[2] = limit, ARGV[3] = window ms.
// Returns {taken (0|1), count after, ms until the window resets}.
const RESERVE = `
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local amount = tonumber(ARGV[1])
if used + amount > tonumber(ARGV[2]) then
  local ttl = redis.call('PTTL', KEYS[1])
  return {0, used, ttl}
end
used = redis.call('INCRBY', KEYS[1], amount)
redis.call('PEXPIRE', KEYS[1], ARGV[3], 'NX')
return {1, used, redis.call('PTTL', KEYS[1])}`;

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

  async reserve(key: string, amount: number, limit: number, windowMs: number): Promise<RateDecision> {
    const [taken, count, ttl] = (await this.#redis.eval(RESERVE, 1, `${this.#prefix}${key}`, amount, limit, windowMs)) as [
      number,
      number,
      number,
    ];
    return { allowed: taken === 1, limit, remaining: Math.max(0, limit - count), resetMs: ttl > 0 ? ttl : windowMs };
  }

  async charge(key: string, amount: number, windowMs: number): Promise<void> {
    const k = `${this.#prefix}${key}`;
    await this.#redis.multi().incrby(k, amount).pexpire(k, windowMs, "NX").exec();
  }
}
