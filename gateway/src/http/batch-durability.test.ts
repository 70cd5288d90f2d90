/**
 * R10 and R11: a batch survives its runners and its Redis. Batch runner processes (the orchestrator's
 * runner-main) are SIGKILLed every 5 s and restarted, and Redis (AOF everysec) is kill -9'ed once mid-run
 * and restarted on the same data directory. The batch must complete with exactly one output-or-error
 * line per custom_id, and request_counts must reconcile with the two files.
 *
 * EXPERTMESH_R10_LINES (default 1000) and EXPERTMESH_R10_TOKEN_MS (default 20 ms per scripted token,
 * 10 tokens per answer) size the run; the defaults take about 30 s on the 2-core dev machine.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type RedisServer, startRedisServer } from "@expertmesh/common/testing";
import { HarmonyTokenizer } from "@expertmesh/grammar/tokenizer";
import { type BatchApi, createBatchService, LocalFileStorage } from "@expertmesh/orchestrator/batches";
import { Redis } from "ioredis";
import OpenAI, { toFile } from "openai";
import type { Batch } from "openai/resources/batches";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ScriptedWorker, startScriptedWorker } from "../testing/scripted-worker.ts";
import { startTestGateway, type TestGateway } from "../testing/test-gateway.ts";

const LINES = Number(process.env.EXPERTMESH_R10_LINES ?? 1000);
const TOKEN_MS = Number(process.env.EXPERTMESH_R10_TOKEN_MS ?? 20);
const RUNNERS = 2;
const KILL_EVERY_MS = 5_000;
const KEY = "sk-durability-test-0123456789";
const MODEL = "gpt-oss-20b";
const RUNNER_MAIN = fileURLToPath(new URL("../../../orchestrator/src/batches/runner-main.ts", import.meta.url));

const tok = new HarmonyTokenizer();
let redis: RedisServer;
let client: Redis;
let worker: ScriptedWorker;
let gateway: TestGateway;
let api: BatchApi;
let filesDir: string;
const runners: (ChildProcess | undefined)[] = [];

function spawnRunner(i: number): void {
  const child = spawn(process.execPath, [RUNNER_MAIN], {
    env: {
      ...process.env,
      LOG_LEVEL: "warn",
      REDIS_URL: redis.url,
      ORCHESTRATOR_REDIS_KEY_PREFIX: "r10:",
      ORCHESTRATOR_INSTANCE_ID: `runner-${i}`,
      ORCHESTRATOR_BATCH_GATEWAY_URL: gateway.base,
      EXPERTMESH_FILES_DIR: filesDir,
      ORCHESTRATOR_BATCH_CONCURRENCY: "4",
      ORCHESTRATOR_BATCH_LINE_ATTEMPTS: "10",
      ORCHESTRATOR_BATCH_LOCK_DURATION_MS: "2000",
      ORCHESTRATOR_BATCH_SWEEP_INTERVAL_MS: "500",
      ORCHESTRATOR_BATCH_REPAIR_AFTER_MS: "3000",
      ORCHESTRATOR_METRICS_PORT: "0",
    },
    stdio: ["ignore", "ignore", "inherit"],
  });
  runners[i] = child;
}

beforeAll(async () => {
  redis = await startRedisServer();
  client = new Redis(redis.url);
  client.on("error", () => {}); // the Redis crash below
  filesDir = mkdtempSync(join(tmpdir(), "r10-files-"));
  const answer = tok.encodeWithSpecials(`<|channel|>final<|message|>${"fine ".repeat(8)}<|return|>`);
  worker = await startScriptedWorker([], { fallback: answer, tokenIntervalMs: TOKEN_MS });
  api = createBatchService({ redis: client, redisUrl: redis.url, keyPrefix: "r10:", storage: new LocalFileStorage(filesDir) });
  gateway = await startTestGateway({
    address: worker.address,
    model: MODEL,
    tokenizer: tok,
    config: { api_keys: [KEY] },
    deps: { batches: api },
  });
  for (let i = 0; i < RUNNERS; i++) spawnRunner(i);
}, 60_000);

afterAll(async () => {
  for (const r of runners) r?.kill("SIGKILL");
  gateway?.app.server.closeAllConnections();
  await gateway?.close();
  await api?.close();
  await worker?.close();
  client?.disconnect();
  await redis?.stop();
}, 30_000);

describe("R10/R11: batch durability", () => {
  it(`${LINES} lines, a runner SIGKILLed every 5 s, Redis kill -9'ed once: one line per custom_id, counts reconcile`, async () => {
    const sdk = new OpenAI({ apiKey: KEY, baseURL: `${gateway.base}/v1`, maxRetries: 5 });
    const ids = Array.from({ length: LINES }, (_, i) => `line-${i}`);
    const input = ids
      .map((id) =>
        JSON.stringify({
          custom_id: id,
          method: "POST",
          url: "/v1/chat/completions",
          body: { model: MODEL, messages: [{ role: "user", content: id }], max_tokens: 12 },
        }),
      )
      .join("\n");
    const file = await sdk.files.create({ file: await toFile(Buffer.from(input), "r10.jsonl"), purpose: "batch" });
    const created = await sdk.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" });

    let kills = 0;
    let victim = 0;
    const killer = setInterval(() => {
      runners[victim]?.kill("SIGKILL");
      spawnRunner(victim);
      kills++;
      victim = (victim + 1) % RUNNERS;
    }, KILL_EVERY_MS);
    let redisRestarted = false;
    let done: Batch | undefined;
    const deadline = Date.now() + 150_000;
    try {
      while (!done && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 250));
        const b = await sdk.batches.retrieve(created.id).catch(() => undefined); // Redis may be down
        if (!b) continue;
        const progress = (b.request_counts?.completed ?? 0) + (b.request_counts?.failed ?? 0);
        if (!redisRestarted && progress >= LINES * 0.3) {
          redisRestarted = true;
          await redis.crash();
          await new Promise((r) => setTimeout(r, 500));
          await redis.restart();
        }
        if (["completed", "failed", "expired", "cancelled"].includes(b.status)) done = b;
      }
    } finally {
      clearInterval(killer);
    }
    expect(done?.status, JSON.stringify(done ?? "timed out")).toBe("completed");
    expect(redisRestarted).toBe(true);
    expect(kills).toBeGreaterThanOrEqual(1);

    const lines = async (id: string | null | undefined) =>
      id
        ? (await (await sdk.files.content(id)).text())
            .split("\n")
            .filter(Boolean)
            .map((l) => JSON.parse(l) as { custom_id: string; response: { status_code: number } | null; error: unknown })
        : [];
    const out = await lines(done?.output_file_id);
    const errors = await lines(done?.error_file_id);
    const all = [...out, ...errors].map((l) => l.custom_id);
    expect(all).toHaveLength(LINES); // no duplicates …
    expect(new Set(all)).toEqual(new Set(ids)); // … and none missing
    expect(done?.request_counts).toEqual({ total: LINES, completed: out.length, failed: errors.length });
    expect(out.every((l) => l.response?.status_code === 200)).toBe(true);
    console.log(
      `R10: ${LINES} lines, ${kills} runner kills, Redis restarted once; ${out.length} completed, ${errors.length} failed`,
      errors.slice(0, 3),
    );
    expect(errors).toEqual([]);
  }, 200_000);
});
