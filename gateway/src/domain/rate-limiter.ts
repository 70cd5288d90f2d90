/**
 * The rate-limit port: fixed windows per key. Adapters: Redis (shared by every gateway replica) and
 * in-memory (one replica, tests). Both pass rate-limiter.conformance.ts.
 *
 * Contract: hit(key, limit, windowMs) counts one request in the current window of `windowMs` and says
 * whether it is within `limit`, how many remain, and when the window resets.
 */
export interface RateDecision {
  allowed: boolean;
  limit: number;
  remaining: number;
  resetMs: number;
}

export interface RateLimiter {
  hit(key: string, limit: number, windowMs: number): Promise<RateDecision>;
}

export class MemoryRateLimiter implements RateLimiter {
  readonly #windows = new Map<string, { count: number; resetAt: number }>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  async hit(key: string, limit: number, windowMs: number): Promise<RateDecision> {
    const now = this.#now();
    let w = this.#windows.get(key);
    if (!w || now >= w.resetAt) {
      w = { count: 0, resetAt: now + windowMs };
      this.#windows.set(key, w);
    }
    w.count++;
    return { allowed: w.count <= limit, limit, remaining: Math.max(0, limit - w.count), resetMs: w.resetAt - now };
  }
}
