/**
 * API keys in Redis, hashed at rest (GATEWAY_API_KEYS_STORE=redis): what the key CLI (src/cli/keys.ts)
 * writes and every gateway replica reads. Layout, under a prefix (default `em:apikeys:`):
 *   {prefix}key:<sha256>  HASH  id, name, project, requests_per_minute, tokens_per_minute, created_unix_ms
 *   {prefix}ids           HASH  id → sha256 (unique ids; revoke and list by id)
 * The key itself is never stored. Lookups are cached per digest for `cacheMs` (found and not found
 * alike), so a revoked key stops working, and a new one starts, within that window. A store that
 * cannot be reached rejects the lookup (the auth hook answers 503): the gateway fails closed.
 */
import type { Redis } from "ioredis";
import { type ApiKeyRecord, type ApiKeySource, hashKey } from "../domain/api-keys.ts";

/** What `list` shows: everything but the digest. */
export type StoredApiKey = Omit<ApiKeyRecord, "sha256"> & { created_unix_ms: number };

export interface RedisApiKeysOptions {
  prefix?: string;
  /** How long a lookup is trusted; also the longest a revoked key keeps working. */
  cacheMs?: number;
  /** Cached digests kept at most (oldest dropped first): bounds memory under a flood of bad keys. */
  maxCached?: number;
  now?: () => number;
}

// Adds a key only if its id is new: HSETNX on the id index, then the record, in one step.
// KEYS[1] = the id index, KEYS[2] = the record; ARGV[1] = id, ARGV[2] = sha256, ARGV[3..] = field, value...
const ADD = `
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('HSET', KEYS[2], unpack(ARGV, 3))
return 1`;

export class RedisApiKeys implements ApiKeySource {
  readonly required = true;
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #cacheMs: number;
  readonly #maxCached: number;
  readonly #now: () => number;
  readonly #cache = new Map<string, { at: number; record: Promise<ApiKeyRecord | undefined> }>();

  constructor(redis: Redis, o: RedisApiKeysOptions = {}) {
    this.#redis = redis;
    this.#prefix = o.prefix ?? "em:apikeys:";
    this.#cacheMs = o.cacheMs ?? 5_000;
    this.#maxCached = o.maxCached ?? 10_000;
    this.#now = o.now ?? Date.now;
  }

  find(presented: string): Promise<ApiKeyRecord | undefined> {
    return this.lookup(hashKey(presented));
  }

  /** The record stored under a digest, through the cache (concurrent lookups share one round trip). */
  lookup(sha256: string): Promise<ApiKeyRecord | undefined> {
    const now = this.#now();
    const hit = this.#cache.get(sha256);
    if (hit && now - hit.at < this.#cacheMs) return hit.record;
    this.#cache.delete(sha256);
    const record = this.#read(sha256);
    // A failed read is not cached: the next request asks Redis again.
    record.catch(() => this.#cache.get(sha256)?.record === record && this.#cache.delete(sha256));
    this.#cache.set(sha256, { at: now, record });
    if (this.#cache.size > this.#maxCached) this.#cache.delete(this.#cache.keys().next().value as string);
    return record;
  }

  /** Stores a new key's digest and metadata; false when the id is taken. */
  async add(record: ApiKeyRecord): Promise<boolean> {
    const fields: string[] = ["id", record.id, "created_unix_ms", String(this.#now())];
    if (record.name) fields.push("name", record.name);
    if (record.project) fields.push("project", record.project);
    if (record.requests_per_minute !== undefined) fields.push("requests_per_minute", String(record.requests_per_minute));
    if (record.tokens_per_minute !== undefined) fields.push("tokens_per_minute", String(record.tokens_per_minute));
    const sha = record.sha256.toLowerCase();
    const added = await this.#redis.eval(ADD, 2, this.#ids(), this.#key(sha), record.id, sha, ...fields);
    return added === 1;
  }

  /** Deletes a key by id; false when there is none. Replicas stop accepting it within their cache window. */
  async revoke(id: string): Promise<boolean> {
    const sha = await this.#redis.hget(this.#ids(), id);
    if (!sha) return false;
    await this.#redis.multi().del(this.#key(sha)).hdel(this.#ids(), id).exec();
    return true;
  }

  async list(): Promise<StoredApiKey[]> {
    const ids = await this.#redis.hgetall(this.#ids());
    const entries = Object.entries(ids).sort(([a], [b]) => a.localeCompare(b));
    const out: StoredApiKey[] = [];
    for (const [, sha] of entries) {
      const r = parseRecord(await this.#redis.hgetall(this.#key(sha)), sha);
      if (r) {
        const { sha256: _digest, ...shown } = r.record;
        out.push({ ...shown, created_unix_ms: r.createdUnixMs });
      }
    }
    return out;
  }

  async #read(sha256: string): Promise<ApiKeyRecord | undefined> {
    return parseRecord(await this.#redis.hgetall(this.#key(sha256)), sha256)?.record;
  }

  #key(sha256: string): string {
    return `${this.#prefix}key:${sha256}`;
  }

  #ids(): string {
    return `${this.#prefix}ids`;
  }
}

function parseRecord(h: Record<string, string>, sha256: string): { record: ApiKeyRecord; createdUnixMs: number } | undefined {
  if (!h.id) return undefined;
  const record: ApiKeyRecord = { id: h.id, sha256 };
  if (h.name) record.name = h.name;
  if (h.project) record.project = h.project;
  const rpm = limit(h.requests_per_minute);
  if (rpm !== undefined) record.requests_per_minute = rpm;
  const tpm = limit(h.tokens_per_minute);
  if (tpm !== undefined) record.tokens_per_minute = tpm;
  return { record, createdUnixMs: Number(h.created_unix_ms ?? 0) };
}

function limit(v: string | undefined): number | undefined {
  if (v === undefined || v === "") return undefined;
  const n = Number(v);
  return Number.isInteger(n) && n >= 0 ? n : undefined;
}
