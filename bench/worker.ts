#!/usr/bin/env node
/**
 * bench/worker — a worker (in this process, real gRPC on loopback) under 1…64 concurrent greedy streams:
 * generated tok/s, mean time to first token, and the scheduler's own time per step outside the engine
 * call (from the worker's expertmesh_scheduler_overhead_seconds histogram). One untimed warm-up request
 * runs first.
 *
 *   node bench/worker.ts [--shape tiny|20b] [--tokens N] [--concurrency 1,4,16,64]
 */
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { createLogger } from "@expertmesh/common";
import { SHAPES, type ShapeName } from "@expertmesh/kernels";
import { writeSyntheticCheckpoint } from "@expertmesh/kernels/checkpoint";
import { type GenerateResponse, WorkerClient } from "@expertmesh/proto/worker";
import { startWorker } from "@expertmesh/worker/app";
import { loadWorkerConfig } from "@expertmesh/worker/config";
import { credentials, Metadata } from "@grpc/grpc-js";

const { values } = parseArgs({
  options: {
    shape: { type: "string", default: "tiny" },
    tokens: { type: "string", default: "64" },
    concurrency: { type: "string", default: "1,4,16,64" },
  },
});
const shapeName = values.shape as ShapeName;
if (!(shapeName in SHAPES)) throw new Error(`--shape must be one of ${Object.keys(SHAPES).join(", ")}`);
const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const dir = join(root, ".cache", "bench", `gpt-oss-${shapeName}-synthetic`);
if (!existsSync(join(dir, ".complete"))) {
  mkdirSync(dirname(dir), { recursive: true });
  process.stderr.write(`[bench] writing the ${shapeName} checkpoint once…\n`);
  writeSyntheticCheckpoint({ shape: SHAPES[shapeName], out: dir, seed: 2026 });
  writeFileSync(join(dir, ".complete"), new Date().toISOString());
}
const tokens = Number(values.tokens);
const levels = (values.concurrency ?? "").split(",").map(Number);

const config = loadWorkerConfig({
  WORKER_PORT: "0",
  WORKER_METRICS_PORT: "0",
  WORKER_MODEL_PATH: dir,
  WORKER_MAX_NUM_SEQS: String(Math.max(...levels)),
  WORKER_KV_NUM_BLOCKS: "2048",
  LOG_LEVEL: "silent",
});
const worker = await startWorker(config, createLogger("bench", "silent"));
const client = new WorkerClient(worker.address, credentials.createInsecure());

function run(id: string, prompt: number[]): Promise<{ n: number; ttft: number }> {
  const started = performance.now();
  let ttft = 0;
  let n = 0;
  return new Promise((resolve, reject) => {
    const s = client.generate(
      {
        requestId: id,
        promptTokenIds: prompt,
        stopTokenIds: [],
        maxTokens: tokens,
        priority: 1,
        deadlineUnixMs: 0,
        clampMaxTokens: false,
        maxReasoningTokens: 0,
      },
      new Metadata(),
    );
    s.on("data", (e: GenerateResponse) => {
      const k = e.tokens?.tokens.length ?? 0;
      if (k > 0 && n === 0) ttft = performance.now() - started;
      n += k;
    });
    s.on("end", () => resolve({ n, ttft }));
    s.on("error", reject);
  });
}

async function schedulerMean(): Promise<{ sum: number; count: number }> {
  const text = await (await fetch(`http://${worker.metricsAddress}/metrics`)).text();
  const sum = Number(/expertmesh_scheduler_overhead_seconds_sum\{[^}]*\} ([\d.e-]+)/.exec(text)?.[1] ?? 0);
  const count = Number(/expertmesh_scheduler_overhead_seconds_count\{[^}]*\} (\d+)/.exec(text)?.[1] ?? 0);
  return { sum, count };
}

// Warm-up: one request touches the code paths and most experts before anything is timed.
await run(
  "warmup",
  Array.from({ length: 64 }, (_, i) => (i * 7919) % 199998),
);

const rows: string[] = [];
let k = 0;
for (const c of levels) {
  const before = await schedulerMean();
  const t0 = performance.now();
  const results = await Promise.all(
    Array.from({ length: c }, (_, i) => run(`b${k++}`, [200006, 1428 + i, 200008, 100 + i, 200 + i, 300 + i, 200007, 200006, 173781])),
  );
  const seconds = (performance.now() - t0) / 1000;
  const after = await schedulerMean();
  const generated = results.reduce((s, r) => s + r.n, 0);
  const ttft = results.reduce((s, r) => s + r.ttft, 0) / results.length;
  const overhead = after.count > before.count ? ((after.sum - before.sum) / (after.count - before.count)) * 1e3 : 0;
  rows.push(`| ${c} | ${generated} | ${(generated / seconds).toFixed(2)} | ${ttft.toFixed(0)} ms | ${overhead.toFixed(3)} ms |`);
  process.stderr.write(`[bench] concurrency ${c}: ${(generated / seconds).toFixed(2)} tok/s\n`);
}
console.log(`bench/worker — synthetic gpt-oss-${shapeName}, ${tokens} tokens per stream, ${new Date().toISOString()}`);
console.log("| concurrency | tokens | tok/s | mean TTFT | scheduler time per step (outside the engine) |\n|---|---|---|---|---|");
for (const r of rows) console.log(r);
client.close();
await worker.close();
