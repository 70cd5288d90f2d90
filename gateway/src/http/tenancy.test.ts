/**
 * R22, the tenancy matrix: keys A and C share the project "alpha", key B is a tenant of its own (keys from
 * a real keys file). For every route that reads, continues, lists, cancels or deletes a stored object —
 * responses (GET, DELETE, input_items, previous_response_id) on the memory and the Redis store, files (GET,
 * content, DELETE, list), batches (GET, cancel, list, create from another's file) — the other tenant gets
 * exactly the answer of an id that never existed (404, or previous_response_id's 400: no existence oracle),
 * lists never show the other's objects, the owner's object survives the other's DELETE or cancel, and the
 * project's other key sees what its project owns; a batch line acts for its batch's owner. Real HTTP (fetch and the official openai SDK), a real
 * gateway in front of a scripted gRPC worker, real Redis.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger } from "@expertmesh/common";
import { type RedisServer, startRedisServer } from "@expertmesh/common/testing";
import { HarmonyTokenizer } from "@expertmesh/grammar/tokenizer";
import { type BatchApi, createBatchService, HttpLineExecutor, LocalFileStorage, startBatchRunner } from "@expertmesh/orchestrator/batches";
import { Redis } from "ioredis";
import OpenAI, { toFile } from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RedisResponseStore } from "../adapters/redis-response-store.ts";
import { ANONYMOUS_TENANT, hashKey } from "../domain/api-keys.ts";
import { MemoryResponseStore, type ResponseStore } from "../domain/responses/store.ts";
import { type ScriptedWorker, startScriptedWorker } from "../testing/scripted-worker.ts";
import { startTestGateway, type TestGateway } from "../testing/test-gateway.ts";

const MODEL = "gpt-oss-20b";
const KEYS = { a: "sk-tenancy-a-0123456789", b: "sk-tenancy-b-0123456789", c: "sk-tenancy-c-0123456789" };
const tok = new HarmonyTokenizer();
const ANSWER = tok.encodeWithSpecials("<|channel|>final<|message|>Stored answer.<|return|>");

let redisServer: RedisServer;
let redis: Redis;
let worker: ScriptedWorker;
let batches: BatchApi;
let keysFile: string;
let filesDir: string;
const gateways: TestGateway[] = [];

beforeAll(async () => {
  redisServer = await startRedisServer();
  redis = new Redis(redisServer.url);
  worker = await startScriptedWorker([], { fallback: ANSWER });
  const dir = mkdtempSync(join(tmpdir(), "tenancy-"));
  keysFile = join(dir, "keys.yaml");
  writeFileSync(
    keysFile,
    [
      "keys:",
      `  - { id: key-a, sha256: ${hashKey(KEYS.a)}, project: alpha }`,
      `  - { id: key-b, sha256: ${hashKey(KEYS.b)} }`,
      `  - { id: key-c, sha256: ${hashKey(KEYS.c)}, project: alpha }`,
    ].join("\n"),
  );
  filesDir = join(dir, "files");
  batches = createBatchService({ redis, redisUrl: redisServer.url, keyPrefix: "tenancy:", storage: new LocalFileStorage(filesDir) });
}, 60_000);

afterAll(async () => {
  for (const g of gateways) await g.close();
  await batches?.close();
  await worker?.close();
  redis?.disconnect();
  await redisServer?.stop();
}, 30_000);

async function gateway(store: ResponseStore): Promise<TestGateway> {
  const g = await startTestGateway({
    address: worker.address,
    model: MODEL,
    tokenizer: tok,
    config: { api_keys_file: keysFile },
    deps: { responses: store, batches },
  });
  gateways.push(g);
  return g;
}

type Key = keyof typeof KEYS;
type Answer = { status: number; body: unknown };

function clients(g: TestGateway) {
  const sdk = (k: Key) => new OpenAI({ apiKey: KEYS[k], baseURL: `${g.base}/v1`, maxRetries: 0 });
  const call = async (k: Key, method: string, path: string, body?: object): Promise<Answer> => {
    const res = await fetch(`${g.base}${path}`, {
      method,
      headers: { authorization: `Bearer ${KEYS[k]}`, ...(body ? { "content-type": "application/json" } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    return { status: res.status, body: await res.json() };
  };
  return { sdk, call };
}

/** A request naming another tenant's `id` answers exactly as one naming an id that never existed. */
async function expectUnknown(
  call: ReturnType<typeof clients>["call"],
  k: Key,
  id: string,
  route: (id: string) => [string, string, object?],
) {
  const missing = `${id.slice(0, -6)}000000`;
  const [method, path, body] = route(id);
  const got = await call(k, method, path, body);
  const [m2, p2, b2] = route(missing);
  const never = await call(k, m2, p2, b2);
  expect([404, 400], `${method} ${path}`).toContain(never.status);
  expect(got, `${method} ${path}`).toEqual(JSON.parse(JSON.stringify(never).replaceAll(missing, id)));
}

const RESPONSE_ROUTES: Array<(id: string) => [string, string, object?]> = [
  (id) => ["GET", `/v1/responses/${id}`],
  (id) => ["GET", `/v1/responses/${id}/input_items`],
  (id) => ["POST", "/v1/responses", { model: MODEL, input: "and then?", previous_response_id: id }],
  (id) => ["DELETE", `/v1/responses/${id}`],
];

for (const [storeName, makeStore] of [
  ["memory", () => new MemoryResponseStore()],
  ["redis", () => new RedisResponseStore(redis, 60_000, `tenancy:${Date.now()}:response:`)],
] as const) {
  describe(`stored responses across tenants (${storeName} store)`, () => {
    let c: ReturnType<typeof clients>;
    beforeAll(async () => {
      c = clients(await gateway(makeStore()));
    });

    it("another tenant's GET, input_items, previous_response_id and DELETE answer as for an unknown id; the project shares", async () => {
      const mine = await c.sdk("a").responses.create({ model: MODEL, input: "A's secret question" });
      const theirs = await c.sdk("b").responses.create({ model: MODEL, input: "B's own question" });
      for (const route of RESPONSE_ROUTES) {
        await expectUnknown(c.call, "b", mine.id, route);
        await expectUnknown(c.call, "a", theirs.id, route);
      }
      await expect(c.sdk("b").responses.retrieve(mine.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
      await expect(c.sdk("b").responses.inputItems.list(mine.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
      // B's DELETE deleted nothing: A (and its project's key C) still read and continue it.
      expect((await c.sdk("a").responses.retrieve(mine.id)).output_text).toBe("Stored answer.");
      expect((await c.sdk("b").responses.retrieve(theirs.id)).output_text).toBe("Stored answer.");
      const shared = await c.sdk("c").responses.retrieve(mine.id);
      expect(shared.id).toBe(mine.id);
      const items = (await c.sdk("c").responses.inputItems.list(mine.id)).data;
      expect(items).toMatchObject([{ type: "message", role: "user", content: [{ type: "input_text", text: "A's secret question" }] }]);
      const next = await c.sdk("c").responses.create({ model: MODEL, input: "follow-up", previous_response_id: mine.id });
      expect(next.previous_response_id).toBe(mine.id);
      expect(tok.decode(worker.requests.at(-1)?.promptTokenIds ?? [])).toContain("A's secret question");
      // The project's DELETE is the owner's: then the response is gone for A too.
      await expect(c.sdk("c").responses.delete(mine.id)).resolves.toBeDefined();
      await expect(c.sdk("a").responses.retrieve(mine.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
      await expect(c.sdk("a").responses.retrieve(next.id)).resolves.toMatchObject({ id: next.id });
    });

    it("input_items: OpenAI's list envelope with ids, newest first by default, limit / order / after pagination", async () => {
      const input = [
        { type: "message" as const, role: "developer" as const, content: "Answer briefly." },
        { type: "message" as const, role: "user" as const, content: "first" },
        { type: "message" as const, role: "assistant" as const, content: "noted" },
        { type: "message" as const, role: "user" as const, content: [{ type: "input_text" as const, text: "second" }] },
      ];
      const r = await c.sdk("a").responses.create({ model: MODEL, input });
      const all = await c.call("a", "GET", `/v1/responses/${r.id}/input_items`);
      const list = all.body as {
        object: string;
        data: Array<{ id: string; role: string }>;
        first_id: string;
        last_id: string;
        has_more: boolean;
      };
      expect(list.object).toBe("list");
      expect(list.data.map((i) => i.role)).toEqual(["user", "assistant", "user", "developer"]);
      expect(list.data[1]).toMatchObject({ type: "message", content: [{ type: "output_text", text: "noted" }], status: "completed" });
      expect(new Set(list.data.map((i) => i.id)).size).toBe(4);
      expect([list.first_id, list.last_id, list.has_more]).toEqual([list.data[0]?.id, list.data[3]?.id, false]);
      const page = await c.sdk("a").responses.inputItems.list(r.id, { limit: 2, order: "asc" });
      expect(page.data.map((i) => (i as { role: string }).role)).toEqual(["developer", "user"]);
      expect(page.has_more).toBe(true);
      const walked: string[] = [];
      for await (const item of c.sdk("a").responses.inputItems.list(r.id, { limit: 1, order: "asc" })) walked.push(item.id);
      expect(walked).toEqual(list.data.map((i) => i.id).reverse());
      const bad = await c.call("a", "GET", `/v1/responses/${r.id}/input_items?after=msg_nope`);
      expect(bad).toMatchObject({ status: 400, body: { error: { param: "after", type: "invalid_request_error" } } });
    });
  });
}

describe("records stored before tenancy (Redis)", () => {
  it("a record without an owner is the anonymous tenant's only: with auth on, no key sees it", async () => {
    const prefix = `tenancy:legacy:${Date.now()}:`;
    const store = new RedisResponseStore(redis, 60_000, prefix);
    const legacy = { response: { id: "resp_legacy", object: "response", output: [] }, history: [], calls: {} };
    await redis.set(`${prefix}resp_legacy`, JSON.stringify(legacy));
    const c = clients(await gateway(store));
    expect(await c.call("a", "GET", "/v1/responses/resp_legacy")).toMatchObject({ status: 404 });
    expect(await c.call("b", "DELETE", "/v1/responses/resp_legacy")).toMatchObject({ status: 404 });
    expect(await store.get("resp_legacy", ANONYMOUS_TENANT)).toMatchObject({ response: { id: "resp_legacy" } });
  });
});

describe("files and batches across tenants", () => {
  let c: ReturnType<typeof clients>;
  beforeAll(async () => {
    c = clients(await gateway(new MemoryResponseStore()));
  });

  const line = (id: string) =>
    JSON.stringify({
      custom_id: id,
      method: "POST",
      url: "/v1/chat/completions",
      body: { model: MODEL, messages: [{ role: "user", content: id }] },
    });
  const upload = async (k: Key, id: string) =>
    c.sdk(k).files.create({ file: await toFile(Buffer.from(`${line(id)}\n`), `${id}.jsonl`), purpose: "batch" });
  const ids = async (page: AsyncIterable<{ id: string }>) => {
    const out: string[] = [];
    for await (const x of page) out.push(x.id);
    return out;
  };

  it("another tenant's file GET, content, DELETE and batch GET, cancel, create-from-file answer as for an unknown id", async () => {
    const fileA = await upload("a", "a-1");
    const fileB = await upload("b", "b-1");
    const batchA = await c.sdk("a").batches.create({ input_file_id: fileA.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    const batchB = await c.sdk("b").batches.create({ input_file_id: fileB.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    const fileRoutes: Array<(id: string) => [string, string, object?]> = [
      (id) => ["GET", `/v1/files/${id}`],
      (id) => ["GET", `/v1/files/${id}/content`],
      (id) => ["POST", "/v1/batches", { input_file_id: id, endpoint: "/v1/chat/completions", completion_window: "24h" }],
      (id) => ["DELETE", `/v1/files/${id}`],
    ];
    const batchRoutes: Array<(id: string) => [string, string, object?]> = [
      (id) => ["GET", `/v1/batches/${id}`],
      (id) => ["POST", `/v1/batches/${id}/cancel`],
    ];
    for (const [other, file, batch] of [
      ["b", fileA, batchA],
      ["a", fileB, batchB],
    ] as const) {
      for (const route of fileRoutes) await expectUnknown(c.call, other, file.id, route);
      for (const route of batchRoutes) await expectUnknown(c.call, other, batch.id, route);
    }
    // The owners' objects survived the other's DELETE and cancel; the project's key C sees A's.
    for (const k of ["a", "c"] as const) {
      expect(await (await c.sdk(k).files.content(fileA.id)).text()).toBe(`${line("a-1")}\n`);
      expect((await c.sdk(k).batches.retrieve(batchA.id)).status).not.toMatch(/^cancel/);
    }
    expect((await c.sdk("b").files.retrieve(fileB.id)).id).toBe(fileB.id);
    expect((await c.sdk("b").batches.retrieve(batchB.id)).status).not.toMatch(/^cancel/);
  });

  it("lists show a tenant's own objects only, its project's included", async () => {
    const fileA = await upload("a", "a-2");
    const fileC = await upload("c", "c-2");
    const fileB = await upload("b", "b-2");
    const batchC = await c.sdk("c").batches.create({ input_file_id: fileC.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    const batchB = await c.sdk("b").batches.create({ input_file_id: fileB.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    for (const k of ["a", "c"] as const) {
      const files = await ids(c.sdk(k).files.list());
      expect(files).toEqual(expect.arrayContaining([fileA.id, fileC.id]));
      expect(files).not.toContain(fileB.id);
      const list = await ids(c.sdk(k).batches.list());
      expect(list).toContain(batchC.id);
      expect(list).not.toContain(batchB.id);
    }
    const files = await ids(c.sdk("b").files.list());
    expect(files).toContain(fileB.id);
    expect(files).not.toContain(fileA.id);
    expect(files).not.toContain(fileC.id);
    expect(await ids(c.sdk("b").batches.list())).not.toContain(batchC.id);
  });
});

describe("batch lines act for their batch's owner", () => {
  it("a /v1/responses line continues the owner's response, and what it stores is the owner's", async () => {
    const g = await gateway(new MemoryResponseStore());
    const c = clients(g);
    const runner = await startBatchRunner({
      redisUrl: redisServer.url,
      keyPrefix: "tenancy:",
      storage: new LocalFileStorage(filesDir),
      executor: new HttpLineExecutor(g.base),
      log: createLogger("tenancy-test", "silent"),
      concurrency: 2,
      lineAttempts: 1,
      lineTimeoutMs: 30_000,
      lockDurationMs: 5_000,
      maxStalledCount: 5,
      sweepIntervalMs: 500,
      repairAfterMs: 5_000,
    });
    try {
      const first = await c.sdk("a").responses.create({ model: MODEL, input: "A's first turn" });
      const body = { model: MODEL, input: "the batch's turn", previous_response_id: first.id };
      const line = JSON.stringify({ custom_id: "next", method: "POST", url: "/v1/responses", body });
      const file = await c.sdk("a").files.create({ file: await toFile(Buffer.from(`${line}\n`), "next.jsonl"), purpose: "batch" });
      const created = await c.sdk("a").batches.create({ input_file_id: file.id, endpoint: "/v1/responses", completion_window: "24h" });
      let batch = created;
      for (const deadline = Date.now() + 30_000; !["completed", "failed"].includes(batch.status) && Date.now() < deadline; ) {
        await new Promise((r) => setTimeout(r, 100));
        batch = await c.sdk("a").batches.retrieve(created.id);
      }
      expect(batch.status).toBe("completed");
      expect(batch.request_counts).toMatchObject({ completed: 1, failed: 0 }); // the line found the owner's response
      const out = JSON.parse(await (await c.sdk("a").files.content(batch.output_file_id ?? "")).text());
      expect(out.response).toMatchObject({ status_code: 200, body: { previous_response_id: first.id } });
      const stored = out.response.body.id as string;
      expect((await c.sdk("c").responses.retrieve(stored)).previous_response_id).toBe(first.id);
      await expectUnknown(c.call, "b", stored, (id) => ["GET", `/v1/responses/${id}`]);
    } finally {
      await runner.close();
      g.app.server.closeAllConnections();
    }
  }, 60_000);
});
