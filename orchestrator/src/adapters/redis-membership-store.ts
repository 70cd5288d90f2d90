/**
 * Redis MembershipStore. Layout (prefix configurable, default "em:"):
 *   <p>members:lease  ZSET  workerId -> lease expiry (unix ms)
 *   <p>members:data   HASH  workerId -> protobuf-encoded Member (typed bytes, never JSON-in-a-string)
 * Expired entries are invisible to list() and pruned by prune(), which the orchestrator runs on a timer.
 */
import { type Lease, Member, type MemberLoad, type MemberState } from "@expertmesh/proto/cluster";
import type { Redis } from "ioredis";
import type { MembershipStore } from "../membership/membership-store.ts";

export class RedisMembershipStore implements MembershipStore {
  readonly #redis: Redis;
  readonly #leaseKey: string;
  readonly #dataKey: string;
  readonly #now: () => number;

  constructor(redis: Redis, prefix = "em:", now: () => number = Date.now) {
    this.#redis = redis;
    this.#leaseKey = `${prefix}members:lease`;
    this.#dataKey = `${prefix}members:data`;
    this.#now = now;
  }

  async register(member: Member, ttlMs: number): Promise<Lease> {
    const expires = this.#now() + ttlMs;
    await this.#redis
      .multi()
      .hset(this.#dataKey, member.workerId, Buffer.from(Member.encode(member).finish()))
      .zadd(this.#leaseKey, expires, member.workerId)
      .exec();
    return { workerId: member.workerId, ttlMs, expiresUnixMs: expires };
  }

  async heartbeat(workerId: string, state: MemberState, ttlMs: number, load?: MemberLoad): Promise<Lease | null> {
    const [score, raw] = await Promise.all([this.#redis.zscore(this.#leaseKey, workerId), this.#redis.hgetBuffer(this.#dataKey, workerId)]);
    if (score === null || Number(score) <= this.#now() || raw === null) return null;
    const member = Member.decode(raw);
    member.state = state;
    if (load) member.load = load;
    const expires = this.#now() + ttlMs;
    // Only the member itself heartbeats its entry, so read-modify-write has a single writer.
    await this.#redis
      .multi()
      .hset(this.#dataKey, workerId, Buffer.from(Member.encode(member).finish()))
      .zadd(this.#leaseKey, "XX", expires, workerId)
      .exec();
    return { workerId, ttlMs, expiresUnixMs: expires };
  }

  async leave(workerId: string): Promise<void> {
    await this.#redis.multi().zrem(this.#leaseKey, workerId).hdel(this.#dataKey, workerId).exec();
  }

  async list(model?: string): Promise<Member[]> {
    const ids = await this.#redis.zrangebyscore(this.#leaseKey, `(${this.#now()}`, "+inf");
    if (ids.length === 0) return [];
    const raws = await this.#redis.hmgetBuffer(this.#dataKey, ...ids);
    return raws
      .filter((r): r is Buffer => r !== null)
      .map((r) => Member.decode(r))
      .filter((m) => !model || m.model === model)
      .sort((a, b) => a.workerId.localeCompare(b.workerId));
  }

  /** Deletes members whose lease expired; returns their ids. */
  async prune(): Promise<string[]> {
    const expired = await this.#redis.zrangebyscore(this.#leaseKey, "-inf", this.#now());
    if (expired.length > 0) {
      await this.#redis
        .multi()
        .zrem(this.#leaseKey, ...expired)
        .hdel(this.#dataKey, ...expired)
        .exec();
    }
    return expired;
  }
}
