/**
 * The rate-limit port: fixed windows per key, counting requests or tokens. Adapters: Redis (shared by
 * every gateway replica) and in-memory (one replica, tests). Both pass the conformance tests in
 * http/auth.test.ts (requests) and http/token-limits.test.ts (tokens).
 *
 * Contract, for a counter `key` whose window of `windowMs` starts at its first use:
 * - hit(key, limit, windowMs) counts one request and says whether it is within `limit`, how many remain,
 *   and when the window resets.
 * - reserve(key, amount, limit, windowMs) takes `amount` only if it fits (used + amount ≤ limit): all or
 *   nothing, atomically. The decision's `remaining` is what is left afterwards.
 * - charge(key, amount, windowMs) adds `amount` unconditionally (tokens already spent): the counter may
 *   pass the limit, and the next reserve in that window is refused. A negative amount gives back what a
 *   reserve took.
 */
export interface RateDecision {
  allowed: boolean;
  limit: number;
  remaining: number;
  resetMs: number;
}

export interface RateLimiter {
  hit(key: string, limit: number, windowMs: number): Promise<RateDecision>;
  reserve(key: string, amount: number, limit: number, windowMs: number): Promise<RateDecision>;
  charge(key: string, amount: number, windowMs: number): Promise<void>;
}

export class MemoryRateLimiter implements RateLimiter {
  readonly #windows = new Map<string, { count: number; resetAt: number }>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  async hit(key: string, limit: number, windowMs: number): Promise<RateDecision> {
    const w = this.#window(key, windowMs);
    w.count++;
    return this.#decision(w, w.count <= limit, limit);
  }

  async reserve(key: string, amount: number, limit: number, windowMs: number): Promise<RateDecision> {
    const w = this.#window(key, windowMs);
    const allowed = w.count + amount <= limit;
    if (allowed) w.count += amount;
    return this.#decision(w, allowed, limit);
  }

  async charge(key: string, amount: number, windowMs: number): Promise<void> {
    this.#window(key, windowMs).count += amount;
  }

  #window(key: string, windowMs: number): { count: number; resetAt: number } {
    const now = this.#now();
    let w = this.#windows.get(key);
    if (!w || now >= w.resetAt) {
      w = { count: 0, resetAt: now + windowMs };
      this.#windows.set(key, w);
    }
    return w;
  }

  #decision(w: { count: number; resetAt: number }, allowed: boolean, limit: number): RateDecision {
    return { allowed, limit, remaining: Math.max(0, limit - w.count), resetMs: w.resetAt - this.#now() };
  }
}
