/**
 * The Files and Batches API end to end with the official openai SDK: upload (validated line by line),
 * create, poll until completed, download the output and error files; cancellation reaching in-flight
 * lines; tenancy (another key's files and batches are 404). Real Redis, a real gateway, an in-process
 * batch runner (BullMQ) sending lines back through the gateway to a scripted gRPC worker, at batch
 * priority.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger } from "@expertmesh/common";
import { type RedisServer, startRedisServer } from "@expertmesh/common/testing";
import { HarmonyTokenizer } from "@expertmesh/grammar/tokenizer";
import {
  type BatchApi,
  type BatchRunner,
  createBatchService,
  HttpLineExecutor,
  LocalFileStorage,
  startBatchRunner,
} from "@expertmesh/orchestrator/batches";
import { runBatchCli } from "@expertmesh/orchestrator/cli/batch";
import { Priority } from "@expertmesh/proto/worker";
import { Redis } from "ioredis";
import OpenAI, { toFile } from "openai";
import type { Batch } from "openai/resources/batches";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ScriptedWorker, startScriptedWorker } from "../../testing/scripted-worker.ts";
import { startTestGateway, type TestGateway } from "../../testing/test-gateway.ts";

const KEY_A = "sk-batch-test-a-0123456789";
const KEY_B = "sk-batch-test-b-0123456789";
const MODEL = "gpt-oss-20b";
const tok = new HarmonyTokenizer();
const ANSWER = tok.encodeWithSpecials(`<|channel|>final<|message|>${"ok ".repeat(8)}<|return|>`);

let redis: RedisServer;
let client: Redis;
let worker: ScriptedWorker;
let gateway: TestGateway;
let api: BatchApi;
let runner: BatchRunner;
let a: OpenAI;
let b: OpenAI;

beforeAll(async () => {
  redis = await startRedisServer();
  client = new Redis(redis.url);
  const storage = new LocalFileStorage(mkdtempSync(join(tmpdir(), "batch-files-")));
  worker = await startScriptedWorker([], { fallback: ANSWER, tokenIntervalMs: 15 });
  api = createBatchService({ redis: client, redisUrl: redis.url, keyPrefix: "t:", storage });
  gateway = await startTestGateway({
    address: worker.address,
    model: MODEL,
    tokenizer: tok,
    config: { api_keys: [KEY_A, KEY_B], http: { body_limit_bytes: 1024 * 1024 }, batches: { max_file_bytes: 4 * 1024 * 1024 } },
    deps: { batches: api },
  });
  runner = await startBatchRunner({
    redisUrl: redis.url,
    keyPrefix: "t:",
    storage,
    executor: new HttpLineExecutor(gateway.base),
    log: createLogger("batch-test", "silent"),
    concurrency: 4,
    lineAttempts: 3,
    lineTimeoutMs: 30_000,
    lockDurationMs: 5_000,
    maxStalledCount: 5,
    sweepIntervalMs: 500,
    repairAfterMs: 5_000,
  });
  a = new OpenAI({ apiKey: KEY_A, baseURL: `${gateway.base}/v1`, maxRetries: 0 });
  b = new OpenAI({ apiKey: KEY_B, baseURL: `${gateway.base}/v1`, maxRetries: 0 });
}, 60_000);

afterAll(async () => {
  await runner?.close();
  // The in-process runner's fetch pool keeps sockets open (some never used: requests aborted by the
  // cancellation test before they were written), which a graceful close would wait on.
  gateway?.app.server.closeAllConnections();
  await gateway?.close();
  await api?.close();
  await worker?.close();
  client?.disconnect();
  await redis?.stop();
}, 30_000);

const chatLine = (id: string, model = MODEL) =>
  JSON.stringify({
    custom_id: id,
    method: "POST",
    url: "/v1/chat/completions",
    body: { model, messages: [{ role: "user", content: `question ${id}` }], max_tokens: 16 },
  });

async function upload(c: OpenAI, lines: string[]) {
  return c.files.create({ file: await toFile(Buffer.from(`${lines.join("\n")}\n`), "input.jsonl"), purpose: "batch" });
}

async function until(c: OpenAI, id: string, done: (b: Batch) => boolean, timeoutMs = 30_000): Promise<Batch> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const batch = await c.batches.retrieve(id);
    if (done(batch)) return batch;
    if (Date.now() > deadline) throw new Error(`batch ${id} still ${batch.status}: ${JSON.stringify(batch.request_counts)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const jsonl = async (c: OpenAI, id: string | null | undefined) =>
  id
    ? (await (await c.files.content(id)).text())
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l))
    : [];

describe("Files and Batches with the openai SDK", () => {
  it("runs a batch to completed: one output line per custom_id in OpenAI's format, at batch priority", async () => {
    const ids = Array.from({ length: 12 }, (_, i) => `req-${i}`);
    const file = await upload(
      a,
      ids.map((id) => chatLine(id)),
    );
    expect(file).toMatchObject({ object: "file", purpose: "batch", filename: "input.jsonl" });
    const created = await a.batches.create({
      input_file_id: file.id,
      endpoint: "/v1/chat/completions",
      completion_window: "24h",
      metadata: { job: "nightly" },
    });
    expect(created).toMatchObject({ object: "batch", status: "validating", metadata: { job: "nightly" } });
    const before = worker.requests.length;
    const done = await until(a, created.id, (x) => x.status === "completed");
    expect(done.request_counts).toEqual({ total: 12, completed: 12, failed: 0 });
    expect(done.error_file_id).toBeNull();
    for (const k of ["in_progress_at", "finalizing_at", "completed_at"] as const) expect(done[k]).toBeGreaterThan(0);
    const out = await jsonl(a, done.output_file_id);
    expect(out.map((l) => l.custom_id).sort()).toEqual([...ids].sort());
    expect(out.map((l) => l.custom_id)).toEqual(ids); // input order
    for (const l of out) {
      expect(l.id).toMatch(/^batch_req_/);
      expect(l.error).toBeNull();
      expect(l.response.status_code).toBe(200);
      expect(l.response.request_id).toBe(l.id);
      expect(l.response.body).toMatchObject({ object: "chat.completion", model: MODEL });
      expect(l.response.body.choices[0].message.content).toContain("ok");
    }
    const lineRequests = worker.requests.slice(before);
    expect(lineRequests).toHaveLength(12);
    expect(lineRequests.every((r) => r.priority === Priority.PRIORITY_BATCH)).toBe(true);
    // An online request still runs at online priority.
    await a.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: "hi" }], max_tokens: 4 });
    expect(worker.requests.at(-1)?.priority).toBe(Priority.PRIORITY_ONLINE);
    const output = await a.files.retrieve(done.output_file_id as string);
    expect(output).toMatchObject({ purpose: "batch_output", bytes: expect.any(Number) });
  });

  it("writes failed lines to the error file and counts them", async () => {
    const file = await upload(a, [chatLine("good-1"), chatLine("bad-model", "no-such-model"), chatLine("good-2")]);
    const created = await a.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    const done = await until(a, created.id, (x) => x.status === "completed");
    expect(done.request_counts).toEqual({ total: 3, completed: 2, failed: 1 });
    expect((await jsonl(a, done.output_file_id)).map((l) => l.custom_id)).toEqual(["good-1", "good-2"]);
    const errors = await jsonl(a, done.error_file_id);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ custom_id: "bad-model", error: null, response: { status_code: 404 } });
    expect(errors[0].response.body.error.code).toBe("model_not_found");
  });

  it("rejects an invalid input file naming the line and the field", async () => {
    const bad = [chatLine("x"), JSON.stringify({ method: "POST", url: "/v1/chat/completions", body: { model: MODEL } })];
    const err = await upload(a, bad).catch((e) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect(err.message).toContain("Line 2: custom_id must be a non-empty string");
    expect(err.param).toBe("custom_id");
    const notJson = await upload(a, [chatLine("x"), chatLine("y"), "{oops"]).catch((e) => e);
    expect(notJson.message).toContain("Line 3: not valid JSON");
    const dup = await upload(a, [chatLine("x"), chatLine("x")]).catch((e) => e);
    expect(dup.message).toContain("Line 2: duplicate custom_id 'x'");
  });

  it("fails a batch whose lines do not match its endpoint", async () => {
    const file = await upload(a, [chatLine("x")]);
    const created = await a.batches.create({ input_file_id: file.id, endpoint: "/v1/completions", completion_window: "24h" });
    expect(created.status).toBe("failed");
    expect(created.errors?.data?.[0]).toMatchObject({ code: "mismatched_url", line: 1, param: "url" });
  });

  it("cancels: in-flight lines are aborted, the rest never run, and the counts reconcile", async () => {
    const ids = Array.from({ length: 40 }, (_, i) => `c-${i}`);
    const file = await upload(
      a,
      ids.map((id) => chatLine(id)),
    );
    const created = await a.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    await until(a, created.id, (x) => x.request_counts !== undefined && x.request_counts.completed >= 2);
    const cancelling = await a.batches.cancel(created.id);
    expect(["cancelling", "cancelled"]).toContain(cancelling.status);
    const done = await until(a, created.id, (x) => x.status === "cancelled");
    const counts = done.request_counts as { total: number; completed: number; failed: number };
    expect(counts.total).toBe(40);
    expect(counts.completed + counts.failed).toBe(40);
    expect(counts.completed).toBeLessThan(40);
    const out = await jsonl(a, done.output_file_id);
    const errors = await jsonl(a, done.error_file_id);
    expect(out).toHaveLength(counts.completed);
    expect(errors).toHaveLength(counts.failed);
    expect(new Set([...out, ...errors].map((l) => l.custom_id))).toEqual(new Set(ids));
    expect(errors.every((l) => l.error?.code === "batch_cancelled")).toBe(true);
    await expect(a.batches.cancel(created.id)).resolves.toMatchObject({ status: "cancelled" });
  });

  it("keeps tenants apart: key B gets 404 for key A's files and batches", async () => {
    const file = await upload(a, [chatLine("t-1")]);
    const batch = await a.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    await expect(b.files.retrieve(file.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    await expect(b.files.content(file.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    await expect(b.files.delete(file.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    await expect(b.batches.retrieve(batch.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    await expect(b.batches.cancel(batch.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    await expect(
      b.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" }),
    ).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    const bFiles = [];
    for await (const f of b.files.list()) bFiles.push(f.id);
    expect(bFiles).not.toContain(file.id);
    const bBatches = [];
    for await (const x of b.batches.list()) bBatches.push(x.id);
    expect(bBatches).not.toContain(batch.id);
    const aFiles = [];
    for await (const f of a.files.list()) aFiles.push(f.id);
    expect(aFiles).toContain(file.id);
    const aBatches = [];
    for await (const x of a.batches.list()) aBatches.push(x.id);
    expect(aBatches).toContain(batch.id);
    await until(a, batch.id, (x) => x.status === "completed");
    // A's own delete works; the content is gone afterwards.
    await expect(a.files.delete(file.id)).resolves.toMatchObject({ id: file.id, deleted: true });
    await expect(a.files.retrieve(file.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
  });

  it("needs a key: no key is 401 on every Files and Batches route", async () => {
    for (const [method, path] of [
      ["GET", "/v1/files"],
      ["POST", "/v1/files"],
      ["GET", "/v1/batches"],
      ["POST", "/v1/batches"],
      ["GET", "/v1/batches/batch_x"],
      ["POST", "/v1/batches/batch_x/cancel"],
      ["GET", "/v1/files/file-x/content"],
    ] as const) {
      const res = await fetch(`${gateway.base}${path}`, { method });
      expect(res.status, `${method} ${path}`).toBe(401);
    }
  });

  it("CLI: batch submit FILE, status --wait (progress bar), results", async () => {
    const path = join(mkdtempSync(join(tmpdir(), "batch-cli-")), "lines.jsonl");
    writeFileSync(path, `${["x-1", "x-2", "x-3"].map((id) => chatLine(id)).join("\n")}\n`);
    const run = async (...argv: string[]) => {
      let out = "";
      let err = "";
      const code = await runBatchCli(argv, {
        env: { EXPERTMESH_BASE_URL: `${gateway.base}/v1`, EXPERTMESH_API_KEY: KEY_A },
        out: (s) => {
          out += s;
        },
        err: (s) => {
          err += s;
        },
        tty: false,
      });
      return { code, out, err };
    };
    const submitted = await run("submit", path, "--metadata", "team=cli");
    expect(submitted.code, submitted.err).toBe(0);
    const batch = JSON.parse(submitted.out) as Batch;
    expect(batch).toMatchObject({ object: "batch", metadata: { team: "cli" } });
    const status = await run("status", batch.id, "--wait", "--interval-ms", "100");
    expect(status.code, status.err).toBe(0);
    expect(status.err).toMatch(new RegExp(`${batch.id} completed \\[#{30}\\] 3/3 100%`));
    const results = await run("results", batch.id);
    expect(
      results.out
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l).custom_id),
    ).toEqual(["x-1", "x-2", "x-3"]);
    expect((await run("status")).code).toBe(2);
    expect((await run("status", "batch_nope")).code).toBe(1);
    const other = await runBatchCli(["status", batch.id], {
      env: { EXPERTMESH_BASE_URL: `${gateway.base}/v1`, EXPERTMESH_API_KEY: KEY_B },
      out: () => {},
      err: () => {},
      tty: false,
    });
    expect(other).toBe(1); // another tenant's batch is 404
  });

  it("takes uploads beyond the JSON body limit up to max_file_bytes; beyond it 413", async () => {
    const padded = (id: string) =>
      JSON.stringify({
        custom_id: id,
        method: "POST",
        url: "/v1/chat/completions",
        body: { model: MODEL, messages: [{ role: "user", content: "x".repeat(1000) }] },
      });
    const lines = (n: number) => Array.from({ length: n }, (_, i) => padded(`big-${i}`));
    const two = await upload(a, lines(2_000)); // ~2.2 MB: over the 1 MiB JSON body limit
    expect(two.bytes).toBeGreaterThan(2_000_000);
    const err = await upload(a, lines(5_000)).catch((e) => e); // ~5.5 MB
    expect(err.status).toBe(413);
    expect(err.message).toContain("maximum size of 4194304 bytes");
  });

  it.each([
    ["/v1/completions", { model: MODEL, prompt: "Say ok", max_tokens: 8 }, "text_completion"],
    ["/v1/responses", { model: MODEL, input: "Say ok", max_output_tokens: 16 }, "response"],
  ] as const)("runs %s lines with that endpoint's response body", async (url, body, object) => {
    const file = await upload(a, [JSON.stringify({ custom_id: "only", method: "POST", url, body })]);
    const created = await a.batches.create({ input_file_id: file.id, endpoint: url, completion_window: "24h" });
    const done = await until(a, created.id, (x) => x.status === "completed");
    const [line] = await jsonl(a, done.output_file_id);
    expect(line).toMatchObject({ custom_id: "only", error: null, response: { status_code: 200, body: { object } } });
  });

  it.each([
    [
      "/v1/chat/completions",
      {
        messages: [{ role: "user", content: "batch-constrained chat" }],
        tools: [{ type: "function", function: { name: "get_weather", parameters: { type: "object" }, strict: true } }],
        tool_choice: "required",
        max_reasoning_tokens: 64,
        max_tokens: 128,
      },
    ],
    [
      "/v1/responses",
      {
        input: "batch-constrained responses",
        tools: [{ type: "function", name: "get_weather", parameters: { type: "object" }, strict: true }],
        tool_choice: "required",
        reasoning: { max_tokens: 64 },
        max_output_tokens: 128,
      },
    ],
  ] as const)("%s lines carry tool_choice required and the reasoning budget to the worker", async (url, fields) => {
    const file = await upload(a, [JSON.stringify({ custom_id: "constrained", method: "POST", url, body: { model: MODEL, ...fields } })]);
    const created = await a.batches.create({ input_file_id: file.id, endpoint: url, completion_window: "24h" });
    const done = await until(a, created.id, (x) => x.status === "completed");
    const [line] = await jsonl(a, done.output_file_id);
    expect(line).toMatchObject({ custom_id: "constrained", error: null, response: { status_code: 200 } });
    const marker = "messages" in fields ? "batch-constrained chat" : "batch-constrained responses";
    const sent = worker.requests.find((r) => tok.decode(r.promptTokenIds).includes(marker));
    expect(sent?.priority).toBe(Priority.PRIORITY_BATCH);
    expect(sent?.maxReasoningTokens).toBe(64);
    expect(JSON.parse(sent?.constraint?.specJson ?? "null")).toEqual({
      version: 1,
      guard: true,
      tools: [{ name: "get_weather", strict: true, parameters: { type: "object" } }],
      toolChoice: { kind: "required" },
      finalFormat: { kind: "text" },
    });
  });
});
