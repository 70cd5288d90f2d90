/**
 * The rate-limit port for a gateway child without Redis: every window lives in the primary process's
 * MemoryRateLimiter (cluster/primary.ts), so the N processes enforce one limit per key, exactly, as one
 * process would. Each decision costs an IPC round trip (tens of µs on loopback); with Redis configured
 * the Redis adapter is used instead, shared by every gateway replica as well.
 */
import type { PrimaryChannel } from "../cluster/primary-channel.ts";
import type { RateDecision, RateLimiter } from "../domain/rate-limiter.ts";

export class PrimaryRateLimiter implements RateLimiter {
  readonly #channel: PrimaryChannel;

  constructor(channel: PrimaryChannel) {
    this.#channel = channel;
  }

  hit(key: string, limit: number, windowMs: number): Promise<RateDecision> {
    return this.#channel.call("limiter.hit", key, limit, windowMs);
  }

  reserve(key: string, amount: number, limit: number, windowMs: number): Promise<RateDecision> {
    return this.#channel.call("limiter.reserve", key, amount, limit, windowMs);
  }

  async charge(key: string, amount: number, windowMs: number): Promise<void> {
    await this.#channel.call("limiter.charge", key, amount, windowMs);
  }
}
