/**
 * Batches in Redis: the batch object, its status transitions, and each line's result, written exactly
 * once. Every write that must be atomic is one Lua script, so that after a Redis crash (AOF everysec
 * replays a prefix of the commands) a result and the count it bumped survive or vanish together.
 *
 * Keys (prefix P):
 *   P batch:{id}          hash: doc (immutable JSON), owner, status, <status>_at, total, completed, failed,
 *                         output_file_id, error_file_id, errors (JSON), token (the runner's credential)
 *   P batch:{id}:results  hash: custom_id → "c" | "f" + ResultLine JSON (c: completed, f: failed)
 *   P batches:{owner}     zset: id by created_at (ms)
 *   P batches:active      set: ids not yet in a terminal status (the sweeper's and metrics' view)
 *   P batch-tokens        hash: sha256(token) → batch id
 */
import { createHash, randomBytes } from "node:crypto";
import type { Redis } from "ioredis";
import type { ListOptions } from "./file-store.ts";
import type { BatchEndpoint, BatchError, BatchObject, BatchStatus, RequestCounts, ResultKind, ResultLine } from "./types.ts";

export const TERMINAL: ReadonlySet<BatchStatus> = new Set(["failed", "completed", "expired", "cancelled"]);

/** OpenAI's transitions: which statuses may move to which. */
export const TRANSITIONS: Record<BatchStatus, readonly BatchStatus[]> = {
  validating: ["in_progress", "failed", "cancelling"],
  in_progress: ["finalizing", "cancelling", "expired"],
  finalizing: ["completed", "expired"],
  cancelling: ["cancelled"],
  failed: [],
  completed: [],
  expired: [],
  cancelled: [],
};

/** The immutable part of a batch, written once at creation. */
interface BatchDoc {
  id: string;
  endpoint: BatchEndpoint;
  input_file_id: string;
  completion_window: "24h";
  created_at: number;
  expires_at: number;
  metadata: Record<string, string> | null;
}

export interface StoredBatch extends BatchObject {
  owner: string;
  /** The bearer credential the runner presents to the gateway for this batch's lines. */
  token: string;
}

export interface RecordOutcome {
  /** false when this custom_id already had a result (a retry or a duplicate job): nothing was written. */
  written: boolean;
  counts: RequestCounts;
}

// KEYS: batch hash, active set. ARGV: to, now, extra fields JSON, batch id, allowed from-statuses...
const TRANSITION = `
local cur = redis.call('HGET', KEYS[1], 'status')
if not cur then return {0, ''} end
for i = 5, #ARGV do
  if ARGV[i] == cur then
    redis.call('HSET', KEYS[1], 'status', ARGV[1], ARGV[1] .. '_at', ARGV[2])
    for k, v in pairs(cjson.decode(ARGV[3])) do redis.call('HSET', KEYS[1], k, v) end
    if ARGV[1] == 'failed' or ARGV[1] == 'completed' or ARGV[1] == 'expired' or ARGV[1] == 'cancelled' then
      redis.call('SREM', KEYS[2], ARGV[4])
    end
    return {1, cur}
  end
end
return {0, cur}`;

// KEYS: batch hash, results hash. ARGV: custom_id, kind (completed|failed), line JSON.
const RECORD = `
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1, 0, 0, 0} end
local written = redis.call('HSETNX', KEYS[2], ARGV[1], string.sub(ARGV[2], 1, 1) .. ARGV[3])
if written == 1 then redis.call('HINCRBY', KEYS[1], ARGV[2], 1) end
local v = redis.call('HMGET', KEYS[1], 'total', 'completed', 'failed')
return {written, tonumber(v[1]) or 0, tonumber(v[2]) or 0, tonumber(v[3]) or 0}`;

export class RedisBatchStore {
  readonly #redis: Redis;
  readonly #p: string;

  constructor(redis: Redis, prefix = "em:") {
    this.#redis = redis;
    this.#p = prefix;
  }

  #key(id: string): string {
    return `${this.#p}batch:${id}`;
  }

  async create(doc: BatchDoc, owner: string): Promise<StoredBatch> {
    const token = `sk-em-batch-${randomBytes(24).toString("base64url")}`;
    await this.#redis
      .multi()
      .hset(this.#key(doc.id), {
        doc: JSON.stringify(doc),
        owner,
        status: "validating",
        total: 0,
        completed: 0,
        failed: 0,
        token,
      })
      .zadd(`${this.#p}batches:${owner}`, doc.created_at * 1000, doc.id)
      .sadd(`${this.#p}batches:active`, doc.id)
      .hset(`${this.#p}batch-tokens`, sha256(token), doc.id)
      .exec();
    return (await this.get(doc.id)) as StoredBatch;
  }

  /** The batch if `owner` owns it (undefined owner: any, for the runner). */
  async get(id: string, owner?: string): Promise<StoredBatch | null> {
    const h = await this.#redis.hgetall(this.#key(id));
    if (!h.doc) return null;
    if (owner !== undefined && h.owner !== owner) return null;
    const doc = JSON.parse(h.doc) as BatchDoc;
    const at = (s: BatchStatus) => (h[`${s}_at`] ? Number(h[`${s}_at`]) : null);
    return {
      ...doc,
      object: "batch",
      errors: h.errors ? { object: "list", data: JSON.parse(h.errors) as BatchError[] } : null,
      status: h.status as BatchStatus,
      output_file_id: h.output_file_id || null,
      error_file_id: h.error_file_id || null,
      in_progress_at: at("in_progress"),
      finalizing_at: at("finalizing"),
      completed_at: at("completed"),
      failed_at: at("failed"),
      expired_at: at("expired"),
      cancelling_at: at("cancelling"),
      cancelled_at: at("cancelled"),
      request_counts: { total: Number(h.total), completed: Number(h.completed), failed: Number(h.failed) },
      owner: h.owner as string,
      token: h.token as string,
    };
  }

  async list(owner: string, o: Pick<ListOptions, "limit" | "after">): Promise<{ data: StoredBatch[]; has_more: boolean }> {
    const ids = await this.#redis.zrevrange(`${this.#p}batches:${owner}`, 0, -1);
    const start = o.after ? ids.indexOf(o.after) + 1 : 0;
    const out: StoredBatch[] = [];
    for (const id of ids.slice(start, start + o.limit)) {
      const b = await this.get(id, owner);
      if (b) out.push(b);
    }
    return { data: out, has_more: start + o.limit < ids.length };
  }

  /** Batches not yet in a terminal status. */
  async active(): Promise<string[]> {
    return this.#redis.smembers(`${this.#p}batches:active`);
  }

  /** The batch a runner credential belongs to, if that batch is still active. */
  async byToken(token: string): Promise<string | null> {
    const id = await this.#redis.hget(`${this.#p}batch-tokens`, sha256(token));
    if (!id) return null;
    return (await this.#redis.sismember(`${this.#p}batches:active`, id)) ? id : null;
  }

  async setTotal(id: string, total: number): Promise<void> {
    await this.#redis.hset(this.#key(id), "total", total);
  }

  /**
   * Moves `id` to `to` if its status is one of `from` (default: every status allowed to move to `to`),
   * stamping `<to>_at` and writing `fields`. Returns the status it found and whether it moved.
   */
  async transition(
    id: string,
    to: BatchStatus,
    fields: Record<string, string> = {},
    from?: readonly BatchStatus[],
  ): Promise<{ moved: boolean; was: BatchStatus | null }> {
    const allowed = from ?? (Object.keys(TRANSITIONS) as BatchStatus[]).filter((s) => TRANSITIONS[s].includes(to));
    const [moved, was] = (await this.#redis.eval(
      TRANSITION,
      2,
      this.#key(id),
      `${this.#p}batches:active`,
      to,
      String(Math.floor(Date.now() / 1000)),
      JSON.stringify(fields),
      id,
      ...allowed,
    )) as [number, string];
    return { moved: moved === 1, was: (was || null) as BatchStatus | null };
  }

  /** Writes a line's result unless it has one; the matching count moves in the same atomic step. */
  async record(id: string, kind: ResultKind, line: ResultLine): Promise<RecordOutcome> {
    const [written, total, completed, failed] = (await this.#redis.eval(
      RECORD,
      2,
      this.#key(id),
      `${this.#key(id)}:results`,
      line.custom_id,
      kind,
      JSON.stringify(line),
    )) as [number, number, number, number];
    return { written: written === 1, counts: { total, completed, failed } };
  }

  /** custom_ids that have a result. */
  async resultIds(id: string): Promise<Set<string>> {
    return new Set(await this.#redis.hkeys(`${this.#key(id)}:results`));
  }

  /** Every result, by custom_id. */
  async results(id: string): Promise<Map<string, { kind: ResultKind; line: ResultLine }>> {
    const h = await this.#redis.hgetall(`${this.#key(id)}:results`);
    const out = new Map<string, { kind: ResultKind; line: ResultLine }>();
    for (const [cid, v] of Object.entries(h))
      out.set(cid, { kind: v[0] === "c" ? "completed" : "failed", line: JSON.parse(v.slice(1)) as ResultLine });
    return out;
  }

  async status(id: string): Promise<BatchStatus | null> {
    return (await this.#redis.hget(this.#key(id), "status")) as BatchStatus | null;
  }
}

export function sha256(s: string): string {
  return createHash("sha256").update(s).digest("hex");
}
