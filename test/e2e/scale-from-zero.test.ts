/**
 * Scale from zero (issue #8), as processes: Redis, the orchestrator, a gateway with parking on and NO
 * worker. Requests for the model park at the gateway (bounded, timed) and the demand gauge KEDA scales
 * on (expertmesh_gateway_requests_parked) counts them; then an engine group comes up (an orchestrated
 * worker, what a ScaledObject scaling the StatefulSet from 0 starts) and every parked request completes.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, type RedisServer, startRedisServer } from "@expertmesh/common/testing";
import { SHAPES } from "@expertmesh/kernels";
import { writeSyntheticCheckpoint } from "@expertmesh/kernels/checkpoint";
import { spawnWorker } from "@expertmesh/worker/testing";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Cleanup, orchestratedWorkerEnv, until } from "./support.ts";

const MODEL = "gpt-oss-scale-zero";
const KEY = "sk-scale-zero-0123456789";
let redis: RedisServer;
let checkpoint: string;
const cleanup = new Cleanup();

beforeAll(async () => {
  redis = await startRedisServer();
  checkpoint = join(mkdtempSync(join(tmpdir(), "zero-model-")), "tiny");
  writeSyntheticCheckpoint({ shape: SHAPES.tiny, out: checkpoint, seed: 3 });
});
afterAll(async () => {
  await cleanup.run();
  await redis?.stop();
});

/** The value of one sample in a Prometheus text exposition (0 when absent). */
function sample(text: string, name: string, labels: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${name}{`) && l.includes(labels));
  return line ? Number(line.slice(line.lastIndexOf(" ") + 1)) : 0;
}

describe("scale from zero through the gateway", () => {
  it("parks requests while no group is ready, exports the demand, and completes them once a group is up", async () => {
    const orchestratorPort = await freePort();
    const orchestrator = `127.0.0.1:${orchestratorPort}`;
    cleanup.service("orchestrator/src/main.ts", {
      REDIS_URL: redis.url,
      ORCHESTRATOR_PORT: String(orchestratorPort),
      ORCHESTRATOR_METRICS_PORT: "0",
      ORCHESTRATOR_REDIS_KEY_PREFIX: `zero-${Date.now()}:`,
      ORCHESTRATOR_GROUP_WORLD_SIZE: "1",
      ORCHESTRATOR_LEASE_TTL_MS: "1500",
      ORCHESTRATOR_PRUNE_INTERVAL_MS: "200",
    });
    const gatewayPort = await freePort();
    cleanup.service("gateway/src/main.ts", {
      GATEWAY_PORT: String(gatewayPort),
      GATEWAY_ORCHESTRATOR_ADDRESS: orchestrator,
      GATEWAY_DISCOVERY_REFRESH_MS: "200",
      GATEWAY_API_KEYS: KEY,
      GATEWAY_PARKING_MAX: "8",
      GATEWAY_PARKING_TIMEOUT_MS: "60000",
      GATEWAY_PARKING_POLL_MS: "100",
      GATEWAY_PARKING_MODELS: MODEL,
    });
    const base = `http://127.0.0.1:${gatewayPort}`;
    // Ready (the Service would route to it) although no worker exists: it parks instead of refusing.
    const ready = await until(
      () => fetch(`${base}/ready`).then(async (r) => ({ status: r.status, body: (await r.json()) as { ready_workers: number } })),
      (r) => r?.status === 200,
    );
    expect(ready.body.ready_workers).toBe(0);
    const metrics = () => fetch(`${base}/metrics`).then((r) => r.text());
    const client = new OpenAI({ apiKey: KEY, baseURL: `${base}/v1`, maxRetries: 0 });

    // A model nobody serves is still a 404 at once, not parked.
    await expect(client.completions.create({ model: "no-such-model", prompt: "x", max_tokens: 1 })).rejects.toMatchObject({ status: 404 });

    const parked = Array.from({ length: 4 }, (_, i) =>
      client.completions.create({ model: MODEL, prompt: `scale from zero ${i}`, max_tokens: 4, temperature: 0 }),
    );
    await until(metrics, (t) => sample(t ?? "", "expertmesh_gateway_requests_parked", `model_name="${MODEL}"`) === 4);

    // The group comes up (KEDA scaled the StatefulSet 0 → W): every parked request completes.
    const t0 = Date.now();
    const worker = await spawnWorker(orchestratedWorkerEnv(checkpoint, MODEL, orchestrator));
    cleanup.add(() => worker.stop());
    const done = await Promise.all(parked);
    for (const r of done) {
      expect(r.choices[0]?.finish_reason).toBe("length");
      expect(r.usage?.completion_tokens).toBe(4);
    }
    expect(Date.now() - t0).toBeLessThan(30_000);
    const after = await metrics();
    expect(sample(after, "expertmesh_gateway_requests_parked", `model_name="${MODEL}"`)).toBe(0);
    expect(sample(after, "expertmesh_gateway_parked_requests_total", `outcome="served"`)).toBe(4);
    // With a group up, requests go straight through.
    const direct = await client.completions.create({ model: MODEL, prompt: "warm", max_tokens: 2 });
    expect(direct.usage?.completion_tokens).toBe(2);
  }, 120_000);
});
