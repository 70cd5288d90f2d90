/**
 * ResponseStore on Redis: one JSON value per response (its owner inside), expiring after the configured
 * retention. Tenancy is checked here, after the read: another tenant's record is "not found". putIf is
 * one Lua script (read, compare the status, write), so a transition is atomic across gateway replicas.
 */
import type { Redis } from "ioredis";
import { type ResponseStore, type StoredResponse, visibleTo } from "../domain/responses/store.ts";

/**
 * KEYS[1]: the record; ARGV[1]: the new record (JSON); ARGV[2]: its expiry (ms); ARGV[3..]: the statuses
 * it may replace. Sets KEYS[1] only while the stored response's status is one of them; 1 if set, else 0.
 */
const PUT_IF = `
local raw = redis.call("GET", KEYS[1])
if not raw then return 0 end
local status = cjson.decode(raw).response.status
for i = 3, #ARGV do
  if ARGV[i] == status then
    redis.call("SET", KEYS[1], ARGV[1], "PX", ARGV[2])
    return 1
  end
end
return 0`;

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

  async putIf(r: StoredResponse & { owner: string }, from: readonly string[]): Promise<boolean> {
    const set = await this.#redis.eval(PUT_IF, 1, `${this.#prefix}${r.response.id}`, JSON.stringify(r), this.#ttlMs, ...from);
    return set === 1;
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
