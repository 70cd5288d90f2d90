/**
 * Redis GroupStore. Layout (prefix configurable, default "em:"):
 *   <p>groups:data        HASH    groupId -> protobuf-encoded Group
 *   <p>groups:generation  STRING  the last generation handed out
 *   <p>groups:lock        STRING  the orchestrator instance forming groups (PX ttl)
 */
import { Group } from "@expertmesh/proto/cluster";
import type { Redis } from "ioredis";
import type { GroupStore } from "../groups/group-store.ts";

// Take the lock when free, or renew it when we already hold it.
const LOCK = `
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0`;

export class RedisGroupStore implements GroupStore {
  readonly #redis: Redis;
  readonly #data: string;
  readonly #generation: string;
  readonly #lock: string;

  constructor(redis: Redis, prefix = "em:") {
    this.#redis = redis;
    this.#data = `${prefix}groups:data`;
    this.#generation = `${prefix}groups:generation`;
    this.#lock = `${prefix}groups:lock`;
  }

  async list(): Promise<Group[]> {
    const raw = await this.#redis.hgetallBuffer(this.#data);
    return Object.values(raw)
      .map((b) => Group.decode(b))
      .sort((a, b) => a.generation - b.generation);
  }

  async lastGeneration(): Promise<number> {
    return Number((await this.#redis.get(this.#generation)) ?? 0);
  }

  async apply(dissolve: readonly string[], form: readonly Group[], lastGeneration: number): Promise<void> {
    const tx = this.#redis.multi();
    if (dissolve.length > 0) tx.hdel(this.#data, ...dissolve);
    for (const g of form) tx.hset(this.#data, g.groupId, Buffer.from(Group.encode(g).finish()));
    tx.set(this.#generation, String(lastGeneration));
    await tx.exec();
  }

  async lock(owner: string, ttlMs: number): Promise<boolean> {
    return (await this.#redis.eval(LOCK, 1, this.#lock, owner, String(ttlMs))) === 1;
  }
}
