#!/usr/bin/env node
/**
 * bench/batch — does a running batch hurt online latency? A real worker process (tiny synthetic gpt-oss,
 * CPU engine, continuous batching with ONLINE admitted before BATCH), a gateway with the Batch API, and a
 * batch runner process (the orchestrator's runner-main) on a real Redis. Online load: C concurrent
 * streaming completions for D seconds, TTFT = time to the first SSE event (the first generated token);
 * the batch's lines are chat completions. Phase 1 idle; phase 2 the same load while a batch of N lines runs. Prints TTFT p50/p99 for
 * both and the ratio (acceptance: p99 with batch ≤ 1.5 × idle), and the batch's throughput. Both
 * phases start with a 3 s warm-up whose samples are not in the ratio; with a batch, the warm-up is the
 * transient after a quiet period (lines admitted while online traffic was idle still hold their rows),
 * printed on its own row.
 *
 *   node bench/batch.ts [--concurrency 4] [--seconds 20] [--lines 2000] [--batch-tokens 32] [--online-tokens 16]
 *                       [--runner-concurrency 8] [--max-inflight-while-online 1]
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { startRedisServer } from "@expertmesh/common/testing";
import { startTestGateway } from "@expertmesh/gateway/testing";
import { SHAPES } from "@expertmesh/kernels";
import { writeSyntheticCheckpoint } from "@expertmesh/kernels/checkpoint";
import { createBatchService, LocalFileStorage } from "@expertmesh/orchestrator/batches";
import { spawnWorker } from "@expertmesh/worker/testing";
import { Redis } from "ioredis";

const { values } = parseArgs({
  options: {
    concurrency: { type: "string", default: "4" },
    seconds: { type: "string", default: "20" },
    lines: { type: "string", default: "2000" },
    "batch-tokens": { type: "string", default: "32" },
    "online-tokens": { type: "string", default: "16" },
    "runner-concurrency": { type: "string", default: "8" },
    "max-inflight-while-online": { type: "string", default: "1" },
  },
});
const C = Number(values.concurrency);
const SECONDS = Number(values.seconds);
const LINES = Number(values.lines);
const MODEL = "gpt-oss-tiny";
const RUNNER_MAIN = fileURLToPath(new URL("../orchestrator/src/batches/runner-main.ts", import.meta.url));

const dir = join(mkdtempSync(join(tmpdir(), "bench-batch-")), "tiny");
writeSyntheticCheckpoint({ shape: SHAPES.tiny, out: dir, seed: 1 });
const redis = await startRedisServer();
const client = new Redis(redis.url);
const filesDir = mkdtempSync(join(tmpdir(), "bench-batch-files-"));
const worker = await spawnWorker({ WORKER_MODEL_PATH: dir, WORKER_MODEL_NAME: MODEL });
const api = createBatchService({ redis: client, redisUrl: redis.url, keyPrefix: "bench:", storage: new LocalFileStorage(filesDir) });
const gateway = await startTestGateway({
  address: worker.address,
  model: MODEL,
  config: { batches: { max_inflight_while_online: values["max-inflight-while-online"] } },
  deps: { batches: api },
});
let runner: ChildProcess | undefined;

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? Number.NaN;
}

async function ttft(i: number): Promise<number> {
  const t0 = performance.now();
  // Legacy completions stream every generated token (no Harmony header to wait for): a true TTFT even
  // with the synthetic model's noise output.
  const res = await fetch(`${gateway.base}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      model: MODEL,
      prompt: `online request ${i}: tell me about the weather`,
      max_tokens: Number(values["online-tokens"]),
      stream: true,
    }),
  });
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  let buf = "";
  let first = Number.NaN;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buf += decoder.decode(value, { stream: true });
    if (Number.isNaN(first) && buf.includes("data: {")) first = performance.now() - t0;
  }
  return first;
}

async function onlineLoad(seconds: number): Promise<number[]> {
  const samples: number[] = [];
  const end = performance.now() + seconds * 1000;
  let n = 0;
  await Promise.all(
    Array.from({ length: C }, async () => {
      while (performance.now() < end) samples.push(await ttft(n++));
    }),
  );
  return samples.filter((x) => !Number.isNaN(x));
}

async function batchCounts(id: string): Promise<{ status: string; done: number }> {
  const res = await fetch(`${gateway.base}/v1/batches/${id}`);
  const b = (await res.json()) as { status: string; request_counts: { completed: number; failed: number } };
  return { status: b.status, done: b.request_counts.completed + b.request_counts.failed };
}

try {
  await onlineLoad(3); // warm-up
  const idle = await onlineLoad(SECONDS);

  const body = Array.from({ length: LINES }, (_, i) =>
    JSON.stringify({
      custom_id: `l-${i}`,
      method: "POST",
      url: "/v1/chat/completions",
      body: { model: MODEL, messages: [{ role: "user", content: `batch line ${i}` }], max_tokens: Number(values["batch-tokens"]) },
    }),
  ).join("\n");
  const form = new FormData();
  form.set("purpose", "batch");
  form.set("file", new Blob([body]), "bench.jsonl");
  const file = (await (await fetch(`${gateway.base}/v1/files`, { method: "POST", body: form })).json()) as { id: string };
  const batch = (await (
    await fetch(`${gateway.base}/v1/batches`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" }),
    })
  ).json()) as { id: string };
  runner = spawn(process.execPath, [RUNNER_MAIN], {
    env: {
      ...process.env,
      LOG_LEVEL: "warn",
      REDIS_URL: redis.url,
      ORCHESTRATOR_REDIS_KEY_PREFIX: "bench:",
      ORCHESTRATOR_BATCH_GATEWAY_URL: gateway.base,
      EXPERTMESH_FILES_DIR: filesDir,
      ORCHESTRATOR_BATCH_CONCURRENCY: values["runner-concurrency"],
      ORCHESTRATOR_METRICS_PORT: "0",
    },
    stdio: ["ignore", "ignore", "inherit"],
  });
  while ((await batchCounts(batch.id)).done < 5) await new Promise((r) => setTimeout(r, 100));
  // The same warm-up as the idle phase: lines that started while online traffic was quiet hold their
  // rows until they end (a transient the first requests after a quiet period see; reported separately).
  const transient = await onlineLoad(3);
  const before = await batchCounts(batch.id);
  const t0 = performance.now();
  const busy = await onlineLoad(SECONDS);
  const after = await batchCounts(batch.id);
  const batchRate = (after.done - before.done) / ((performance.now() - t0) / 1000);
  const still = after.status === "in_progress";

  const row = (name: string, xs: number[]) =>
    `| ${name} | ${xs.length} | ${percentile(xs, 50).toFixed(1)} | ${percentile(xs, 99).toFixed(1)} |`;
  console.log(
    `online: ${C} concurrent streams, ${values["online-tokens"]} tokens; batch: ${LINES} lines × ${values["batch-tokens"]} tokens, ` +
      `runner concurrency ${values["runner-concurrency"]}, batch lines in flight while online ${values["max-inflight-while-online"]}`,
  );
  console.log("| phase | requests | TTFT p50 ms | TTFT p99 ms |\n|---|---|---|---|");
  console.log(row("idle", idle));
  console.log(row("with batch", busy));
  console.log(row("first 3 s after a quiet period (transient)", transient));
  console.log(`p99 ratio (with batch / idle): ${(percentile(busy, 99) / percentile(idle, 99)).toFixed(2)}`);
  console.log(
    `batch lines/s during the window: ${batchRate.toFixed(1)}${still ? "" : " (the batch finished inside the window: raise --lines)"}`,
  );
} finally {
  runner?.kill("SIGKILL");
  await gateway.close();
  await api.close();
  await worker.stop();
  client.disconnect();
  await redis.stop();
}
