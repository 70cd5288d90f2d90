/**
 * The ResponseStore contract, run against every adapter (in-process and real Redis): a record is found
 * and deleted only by its owner; for any other tenant it does not exist, and that tenant's delete leaves
 * it in place; records without an owner (stored before tenancy) are the anonymous tenant's.
 */
import { type RedisServer, startRedisServer } from "@expertmesh/common/testing";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PrimaryResponseStore } from "../../adapters/primary-response-store.ts";
import { RedisResponseStore } from "../../adapters/redis-response-store.ts";
import { sharedStateHandlers } from "../../cluster/shared-state.ts";
import { linkedPrimaryChannel } from "../../testing/linked-channel.ts";
import { ANONYMOUS_TENANT } from "../api-keys.ts";
import { MemoryRateLimiter } from "../rate-limiter.ts";
import { MemoryResponseStore, type ResponseStore, type StoredResponse } from "./store.ts";

let server: RedisServer;
let redis: Redis;

beforeAll(async () => {
  server = await startRedisServer();
  redis = new Redis(server.url);
});
afterAll(async () => {
  redis.disconnect();
  await server.stop();
});

const record = (id: string, owner?: string): StoredResponse => ({
  ...(owner === undefined ? {} : { owner }),
  response: { id, object: "response" },
  input_items: [{ id: "msg_1", type: "message", role: "user", content: [{ type: "input_text", text: "hi" }] }],
  history: [],
  calls: {},
});

for (const [name, make] of [
  ["memory", () => new MemoryResponseStore()],
  // A gateway child's store: the records live in the primary's MemoryResponseStore, over the IPC channel.
  [
    "primary",
    () => new PrimaryResponseStore(linkedPrimaryChannel(sharedStateHandlers(new MemoryRateLimiter(), new MemoryResponseStore()))),
  ],
  ["redis", () => new RedisResponseStore(redis, 60_000, `store-test:${Date.now()}:`)],
] as const) {
  describe(`ResponseStore contract (${name})`, () => {
    let store: ResponseStore;
    beforeAll(() => {
      store = make();
    });

    it("only the owner finds and deletes a record; another tenant's delete leaves it", async () => {
      await store.put({ ...record("resp_a"), owner: "project:alpha" });
      expect(await store.get("resp_a", "project:alpha")).toEqual(record("resp_a", "project:alpha"));
      expect(await store.get("resp_a", "key-b")).toBeNull();
      expect(await store.get("resp_a", ANONYMOUS_TENANT)).toBeNull();
      expect(await store.delete("resp_a", "key-b")).toBe(false);
      expect(await store.get("resp_a", "project:alpha")).not.toBeNull();
      expect(await store.delete("resp_a", "project:alpha")).toBe(true);
      expect(await store.get("resp_a", "project:alpha")).toBeNull();
      expect(await store.delete("resp_a", "project:alpha")).toBe(false);
    });

    it("putIf replaces a record only from the statuses named: one of two racing transitions wins", async () => {
      const at = (status: string) => ({ ...record("resp_bg", "key-a"), owner: "key-a", response: { id: "resp_bg", status } });
      expect(await store.putIf(at("in_progress"), ["queued"])).toBe(false); // nothing stored yet
      await store.put(at("queued"));
      expect(await store.putIf(at("in_progress"), ["queued"])).toBe(true);
      const [cancel, complete] = await Promise.all([
        store.putIf(at("cancelled"), ["queued", "in_progress"]),
        store.putIf(at("completed"), ["in_progress"]),
      ]);
      expect([cancel, complete].filter(Boolean)).toHaveLength(1);
      expect((await store.get("resp_bg", "key-a"))?.response.status).toBe(cancel ? "cancelled" : "completed");
      expect(await store.putIf(at("queued"), ["in_progress"])).toBe(false);
    });

    it("a record without an owner is the anonymous tenant's", async () => {
      // Written as a record from before tenancy: no owner field at all.
      await store.put(record("resp_old") as StoredResponse & { owner: string });
      expect(await store.get("resp_old", "key-a")).toBeNull();
      expect(await store.delete("resp_old", "key-a")).toBe(false);
      expect(await store.get("resp_old", ANONYMOUS_TENANT)).toEqual(record("resp_old"));
      expect(await store.delete("resp_old", ANONYMOUS_TENANT)).toBe(true);
    });
  });
}
