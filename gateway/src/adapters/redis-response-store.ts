/** ResponseStore on Redis: one JSON value per response, expiring after the configured retention. */
import type { Redis } from "ioredis";
import type { ResponseStore, StoredResponse } from "../domain/responses/store.ts";

export class RedisResponseStore implements ResponseStore {
  readonly #redis: Redis;
  readonly #ttlMs: number;
  readonly #prefix: string;

  constructor(redis: Redis, ttlMs: number, prefix = "em:response:") {
    this.#redis = redis;
    this.#ttlMs = ttlMs;
    this.#prefix = prefix;
  }

  async put(r: StoredResponse): Promise<void> {
    await this.#redis.set(`${this.#prefix}${r.response.id}`, JSON.stringify(r), "PX", this.#ttlMs);
  }

  async get(id: string): Promise<StoredResponse | null> {
    const raw = await this.#redis.get(`${this.#prefix}${id}`);
    return raw === null ? null : (JSON.parse(raw) as StoredResponse);
  }

  async delete(id: string): Promise<boolean> {
    return (await this.#redis.del(`${this.#prefix}${id}`)) > 0;
  }
}
