/**
 * The batch runner against a stub LineExecutor on a real Redis: retryable answers are retried with
 * backoff and the line is recorded once, HTTP errors land in the error file, and the autoscaling
 * signals (queue depth by priority, waiting requests, results) read right while lines wait.
 */
import { createLogger, createMetricsRegistry, type Registry } from "@expertmesh/common";
import { type RedisServer, startRedisServer } from "@expertmesh/common/testing";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BatchService } from "./batch-service.ts";
import { RedisBatchStore } from "./batch-store.ts";
import { MemoryFileStorage } from "./file-storage.ts";
import { RedisFileStore } from "./file-store.ts";
import { bullPrefix, CONTROL_QUEUE } from "./jobs.ts";
import type { LineAnswer, LineExecutor, LineRequest } from "./line-executor.ts";
import { type BatchRunner, startBatchRunner } from "./runner.ts";

class StubExecutor implements LineExecutor {
  readonly calls: string[] = [];
  gate: Promise<void> = Promise.resolve();
  async execute(line: LineRequest, signal: AbortSignal): Promise<LineAnswer> {
    await this.gate;
    signal.throwIfAborted();
    const id = String((line.body.messages as { content: string }[])[0]?.content);
    this.calls.push(id);
    if (id === "flaky" && this.calls.filter((c) => c === "flaky").length < 3)
      return { status: 503, requestId: line.requestId, body: { error: { message: "busy", code: "overloaded" } } };
    // Refused for want of capacity, with retry-after, more times than the runner's tries per line.
    if (id === "unplaced" && this.calls.filter((c) => c === "unplaced").length <= 5)
      return {
        status: 503,
        requestId: line.requestId,
        body: { error: { message: "no ready worker", code: "service_unavailable" } },
        retryAfterMs: 50,
      };
    if (id === "bad") return { status: 400, requestId: line.requestId, body: { error: { message: "no", code: "invalid_request_error" } } };
    return { status: 200, requestId: line.requestId, body: { object: "chat.completion", echo: id } };
  }
}

let redis: RedisServer;
let client: Redis;
let control: Queue;
let service: BatchService;
let store: RedisBatchStore;
let runner: BatchRunner;
let registry: Registry;
const storage = new MemoryFileStorage();
const executor = new StubExecutor();

beforeAll(async () => {
  redis = await startRedisServer();
  client = new Redis(redis.url);
  store = new RedisBatchStore(client, "u:");
  control = new Queue(CONTROL_QUEUE, { connection: { url: redis.url }, prefix: bullPrefix("u:") });
  service = new BatchService({ files: new RedisFileStore(client, "u:"), batches: store, storage, control, redis: client, keyPrefix: "u:" });
  registry = createMetricsRegistry("runner-test");
  runner = await startBatchRunner({
    redisUrl: redis.url,
    keyPrefix: "u:",
    storage,
    executor,
    log: createLogger("runner-test", "silent"),
    concurrency: 2,
    lineAttempts: 4,
    lineTimeoutMs: 10_000,
    lockDurationMs: 5_000,
    maxStalledCount: 3,
    sweepIntervalMs: 300,
    repairAfterMs: 5_000,
    registry,
  });
});

afterAll(async () => {
  await runner?.close();
  await control?.close();
  client?.disconnect();
  await redis?.stop();
});

const line = (id: string) =>
  JSON.stringify({
    custom_id: id,
    method: "POST",
    url: "/v1/chat/completions",
    body: { model: "m", messages: [{ role: "user", content: id }] },
  });

/** A stored file's content as text (the service streams it). */
async function fileText(owner: string, id: string): Promise<string> {
  return Buffer.concat(await (await service.fileContent(owner, id)).toArray()).toString();
}

async function waitFor<T>(f: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 100));
  }
}

const metric = async (name: string) =>
  (await registry.metrics())
    .split("\n")
    .filter((l) => l.startsWith(name))
    .join("\n");

describe("batch runner", () => {
  it("retries retryable answers, records every line once, and reports queue depth while lines wait", async () => {
    let open = () => {};
    executor.gate = new Promise((r) => {
      open = r;
    });
    const ids = ["a", "flaky", "bad", "b", "c", "d"];
    const file = await service.createFile("owner-1", "in.jsonl", "batch", Buffer.from(ids.map(line).join("\n")));
    const batch = await service.createBatch("owner-1", {
      input_file_id: file.id,
      endpoint: "/v1/chat/completions",
      completion_window: "24h",
    });
    await waitFor(async () => ((await store.status(batch.id)) === "in_progress" ? true : undefined));
    // Two lines are held at the executor (concurrency 2); the other four wait in the queue.
    await waitFor(async () => ((await metric("expertmesh_batch_requests_waiting")).endsWith(" 4") ? true : undefined));
    expect(await metric("expertmesh_queue_depth")).toContain(
      'expertmesh_queue_depth{priority="batch",state="active",service="runner-test"} 2',
    );
    expect(await metric("expertmesh_batches")).toContain('expertmesh_batches{status="in_progress",service="runner-test"} 1');
    open();
    const done = await waitFor(async () => {
      const b = await service.getBatch("owner-1", batch.id);
      return b.status === "completed" ? b : undefined;
    });
    expect(done.request_counts).toEqual({ total: 6, completed: 5, failed: 1 });
    expect(executor.calls.filter((c) => c === "flaky")).toHaveLength(3); // 503, 503, then 200
    const out = (await fileText("owner-1", done.output_file_id as string))
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(out.map((l) => l.custom_id)).toEqual(["a", "flaky", "b", "c", "d"]);
    expect(out[1].response).toMatchObject({ status_code: 200, body: { echo: "flaky" } });
    const errors = (await fileText("owner-1", done.error_file_id as string))
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(errors).toEqual([
      {
        id: expect.stringMatching(/^batch_req_/),
        custom_id: "bad",
        response: { status_code: 400, request_id: expect.any(String), body: { error: { message: "no", code: "invalid_request_error" } } },
        error: null,
      },
    ]);
    expect(await metric("expertmesh_batch_requests_total")).toContain('result="completed",service="runner-test"} 5');
    expect(await service.fileContent("other-owner", done.output_file_id as string).catch((e) => e.http)).toBe(404);
  }, 30_000);

  it("puts a line the gateway had no capacity for back to wait, without spending its tries", async () => {
    const file = await service.createFile("owner-1", "wait.jsonl", "batch", Buffer.from(["unplaced", "e"].map(line).join("\n")));
    const batch = await service.createBatch("owner-1", {
      input_file_id: file.id,
      endpoint: "/v1/chat/completions",
      completion_window: "24h",
    });
    const done = await waitFor(async () => {
      const b = await service.getBatch("owner-1", batch.id);
      return b.status === "completed" ? b : undefined;
    });
    // Five refusals (the runner allows 4 tries per line), then an answer: completed, recorded once.
    expect(done.request_counts).toEqual({ total: 2, completed: 2, failed: 0 });
    expect(executor.calls.filter((c) => c === "unplaced")).toHaveLength(6);
    const out = (await fileText("owner-1", done.output_file_id as string))
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(out.map((l) => [l.custom_id, l.response.status_code])).toEqual([
      ["unplaced", 200],
      ["e", 200],
    ]);
    expect(await metric("expertmesh_batch_line_deferrals_total")).toMatch(/ 5$/);
  }, 30_000);

  it("expires a batch past its window: lines not yet run get batch_expired, the counts reconcile", async () => {
    let open = () => {};
    executor.gate = new Promise((r) => {
      open = r;
    });
    const ids = Array.from({ length: 8 }, (_, i) => `e-${i}`);
    const file = await service.createFile("owner-2", "in.jsonl", "batch", Buffer.from(ids.map(line).join("\n")));
    const batch = await service.createBatch("owner-2", {
      input_file_id: file.id,
      endpoint: "/v1/chat/completions",
      completion_window: "24h",
    });
    await waitFor(async () => ((await store.status(batch.id)) === "in_progress" ? true : undefined));
    // Move the window into the past (two lines are already held at the executor).
    const doc = JSON.parse((await client.hget(`u:batch:${batch.id}`, "doc")) as string);
    await client.hset(`u:batch:${batch.id}`, "doc", JSON.stringify({ ...doc, expires_at: 1 }));
    const done = await waitFor(async () => {
      const b = await service.getBatch("owner-2", batch.id);
      return b.status === "expired" ? b : undefined;
    });
    open();
    expect(done.expired_at).toBeGreaterThan(0);
    const c = done.request_counts;
    expect(c.total).toBe(8);
    expect(c.completed + c.failed).toBe(8);
    const errors = (await fileText("owner-2", done.error_file_id as string))
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(errors).toHaveLength(c.failed);
    expect(errors.every((l) => l.error?.code === "batch_expired" && l.response === null)).toBe(true);
  }, 30_000);
});
