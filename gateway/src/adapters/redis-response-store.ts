/**
 * ResponseStore on Redis: one JSON value per response (its owner inside), expiring after the configured
 * retention. Tenancy is checked here, after the read: another tenant's record is "not found".
 */
import type { Redis } from "ioredis";
import { type ResponseStore, type StoredResponse, visibleTo } from "../domain/responses/store.ts";

export class RedisResponseStore implements ResponseStore {
  readonly #redis: Redis;
  readonly #ttlMs: number;
  readonly #prefix: string;

  constructor(redis: Redis, ttlMs: number, prefix = "em:response:") {
    this.#redis = redis;
    this.#ttlMs = ttlMs;
    this.#prefix = prefix;
  }

  async put(r: StoredResponse & { owner: string }): Promise<void> {
    await this.#redis.set(`${this.#prefix}${r.response.id}`, JSON.stringify(r), "PX", this.#ttlMs);
  }

  async get(id: string, tenant: string): Promise<StoredResponse | null> {
    const raw = await this.#redis.get(`${this.#prefix}${id}`);
    if (raw === null) return null;
    const r = JSON.parse(raw) as StoredResponse;
    return visibleTo(r, tenant) ? r : null;
  }

  async delete(id: string, tenant: string): Promise<boolean> {
    // Check, then delete: not atomic, and need not be — ids are random and written once, so the record
    // read is the one deleted (or it expired in between, and DEL finds nothing).
    if (!(await this.get(id, tenant))) return false;
    return (await this.#redis.del(`${this.#prefix}${id}`)) > 0;
  }
}
