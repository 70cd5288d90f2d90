/**
 * R21 for batches: one traceId from the HTTP request that creates a batch, through its BullMQ jobs
 * (bullmq-otel), the runner's request back to the gateway, and gRPC to the worker.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger, startTelemetry } from "@expertmesh/common";
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
import { InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace";
import { Redis } from "ioredis";
import OpenAI, { toFile } from "openai";
import { afterAll, beforeAll, expect, it } from "vitest";
import { type ScriptedWorker, startScriptedWorker } from "../testing/scripted-worker.ts";
import { startTestGateway, type TestGateway } from "../testing/test-gateway.ts";

const exporter = new InMemorySpanExporter();
const telemetry = startTelemetry({ serviceName: "batch-trace-test", spanProcessors: [new SimpleSpanProcessor({ exporter })], env: {} });
const tok = new HarmonyTokenizer();
const TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736";
let redis: RedisServer;
let client: Redis;
let worker: ScriptedWorker;
let gateway: TestGateway;
let api: BatchApi;
let runner: BatchRunner;

beforeAll(async () => {
  redis = await startRedisServer();
  client = new Redis(redis.url);
  const storage = new LocalFileStorage(mkdtempSync(join(tmpdir(), "batch-trace-")));
  worker = await startScriptedWorker([], { fallback: tok.encodeWithSpecials("<|channel|>final<|message|>traced<|return|>") });
  api = createBatchService({ redis: client, redisUrl: redis.url, keyPrefix: "tr:", storage });
  gateway = await startTestGateway({ address: worker.address, model: "gpt-oss-20b", tokenizer: tok, deps: { batches: api } });
  runner = await startBatchRunner({
    redisUrl: redis.url,
    keyPrefix: "tr:",
    storage,
    executor: new HttpLineExecutor(gateway.base),
    log: createLogger("batch-trace-test", "silent"),
    concurrency: 2,
    lineAttempts: 2,
    lineTimeoutMs: 10_000,
    lockDurationMs: 5_000,
    maxStalledCount: 2,
    sweepIntervalMs: 500,
    repairAfterMs: 5_000,
  });
});

afterAll(async () => {
  await runner?.close();
  await gateway?.close();
  await api?.close();
  await worker?.close();
  client?.disconnect();
  await redis?.stop();
  await telemetry.shutdown();
});

it("carries the creating request's traceId through BullMQ to every line's worker call", async () => {
  const sdk = new OpenAI({ apiKey: "unused", baseURL: `${gateway.base}/v1`, maxRetries: 0 });
  const lines = ["t-1", "t-2"].map((id) =>
    JSON.stringify({
      custom_id: id,
      method: "POST",
      url: "/v1/chat/completions",
      body: { model: "gpt-oss-20b", messages: [{ role: "user", content: id }] },
    }),
  );
  const file = await sdk.files.create({ file: await toFile(Buffer.from(lines.join("\n")), "t.jsonl"), purpose: "batch" });
  const batch = await sdk.batches.create(
    { input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" },
    { headers: { traceparent: `00-${TRACE_ID}-00f067aa0ba902b7-01` } },
  );
  await expect.poll(async () => (await sdk.batches.retrieve(batch.id)).status, { timeout: 15_000, interval: 100 }).toBe("completed");
  expect(worker.traceparents).toHaveLength(2);
  for (const tp of worker.traceparents) expect(tp.split("-")[1]).toBe(TRACE_ID);
  const jobSpans = exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === TRACE_ID);
  expect(jobSpans.length).toBeGreaterThan(2); // queue adds, job processing, the gateway's generation spans
});
