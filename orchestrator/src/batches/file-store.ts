/**
 * File metadata in Redis: one JSON document per file and a per-owner index sorted by creation time.
 * Tenancy is enforced here: every read takes the owner, and another owner's file is "not found".
 *
 * Keys (prefix P): P file:{id} → StoredFile JSON; P files:{owner} → zset id by created_at (ms).
 */
import type { Redis } from "ioredis";
import type { FilePurpose, StoredFile } from "./types.ts";

export interface ListOptions {
  limit: number;
  /** A cursor: the id of the last object of the previous page. */
  after?: string;
  order: "asc" | "desc";
  purpose?: FilePurpose;
}

export class RedisFileStore {
  readonly #redis: Redis;
  readonly #p: string;

  constructor(redis: Redis, prefix = "em:") {
    this.#redis = redis;
    this.#p = prefix;
  }

  async create(f: StoredFile): Promise<void> {
    await this.#redis
      .multi()
      .set(`${this.#p}file:${f.id}`, JSON.stringify(f))
      .zadd(`${this.#p}files:${f.owner}`, f.created_at * 1000, f.id)
      .exec();
  }

  /** The file if `owner` owns it (undefined owner: any, for the batch runner). */
  async get(id: string, owner?: string): Promise<StoredFile | null> {
    const raw = await this.#redis.get(`${this.#p}file:${id}`);
    if (!raw) return null;
    const f = JSON.parse(raw) as StoredFile;
    return owner === undefined || f.owner === owner ? f : null;
  }

  async list(owner: string, o: ListOptions): Promise<{ data: StoredFile[]; has_more: boolean }> {
    const key = `${this.#p}files:${owner}`;
    const ascending = await this.#redis.zrange(key, "0", "-1");
    const ids = o.order === "asc" ? ascending : ascending.reverse();
    const start = o.after ? ids.indexOf(o.after) + 1 : 0;
    const out: StoredFile[] = [];
    let more = false;
    for (let i = start; i < ids.length; i++) {
      const f = await this.get(ids[i] as string, owner);
      if (!f || (o.purpose && f.purpose !== o.purpose)) continue;
      if (out.length === o.limit) {
        more = true;
        break;
      }
      out.push(f);
    }
    return { data: out, has_more: more };
  }

  /** true if it existed and belonged to `owner`. */
  async delete(id: string, owner: string): Promise<boolean> {
    const f = await this.get(id, owner);
    if (!f) return false;
    await this.#redis.multi().del(`${this.#p}file:${id}`).zrem(`${this.#p}files:${owner}`, id).exec();
    return true;
  }
}
