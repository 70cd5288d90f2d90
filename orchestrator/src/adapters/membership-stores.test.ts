import { type RedisServer, startRedisServer } from "@expertmesh/common/testing";
import { Redis } from "ioredis";
import { afterAll, beforeAll, expect, it } from "vitest";
import { manualClock, member, membershipStoreConformance } from "../membership/membership-store.conformance.ts";
import { InMemoryMembershipStore } from "./in-memory-membership-store.ts";
import { RedisMembershipStore } from "./redis-membership-store.ts";

let server: RedisServer;
const clients: Redis[] = [];
let n = 0;

beforeAll(async () => {
  server = await startRedisServer();
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.quit()));
  await server.stop();
});

function redis(): Redis {
  const c = new Redis(server.url);
  clients.push(c);
  return c;
}

membershipStoreConformance("in-memory", async (clock) => new InMemoryMembershipStore(clock.now));
membershipStoreConformance("redis", async (clock) => new RedisMembershipStore(redis(), `t${n++}:`, clock.now));

it("redis: prune deletes expired members' data", async () => {
  const clock = manualClock();
  const r = redis();
  const store = new RedisMembershipStore(r, "prune:", clock.now);
  await store.register(member("w-1"), 100);
  await store.register(member("w-2"), 1_000);
  clock.advance(500);
  expect(await store.prune()).toEqual(["w-1"]);
  expect(await r.hkeys("prune:members:data")).toEqual(["w-2"]);
});
