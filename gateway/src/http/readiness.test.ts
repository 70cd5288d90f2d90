/**
 * Readiness means "can serve now" (#20 item 6): with the orchestrator gone the gateway routes on its last
 * known roster, so /ready stays 200 (discovery "failing" in the body, expertmesh_gateway_discovery_healthy 0
 * and a growing roster age in /metrics) while chat completions keep answering; it turns 503 only when no
 * worker of that roster can take a request (here: the worker reports NOT_SERVING). Real gRPC discovery
 * (OrchestratorDirectory against a Membership server), a real worker pool and real HTTP.
 */
import { createLogger, createMetricsRegistry } from "@expertmesh/common";
import { HarmonyTokenizer } from "@expertmesh/grammar/tokenizer";
import type { Server } from "@grpc/grpc-js";
import type { FastifyInstance } from "fastify";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OrchestratorDirectory } from "../adapters/orchestrator-directory.ts";
import { WorkerPool } from "../adapters/worker-pool.ts";
import { GatewayConfigSchema } from "../config.ts";
import { createServer } from "../server.ts";
import { type ScriptedWorker, startScriptedWorker } from "../testing/scripted-worker.ts";
import { startStubMembership } from "../testing/stub-membership.ts";

const MODEL = "gpt-oss-20b";
const tok = new HarmonyTokenizer();
const ANSWER = tok.encodeWithSpecials("<|channel|>final<|message|>Hello.<|return|>");

let worker: ScriptedWorker;
let membership: Server;
let directory: OrchestratorDirectory;
let pool: WorkerPool;
let app: FastifyInstance;
let base: string;

beforeAll(async () => {
  worker = await startScriptedWorker([], { fallback: ANSWER });
  const m = await startStubMembership(worker.address, MODEL);
  membership = m.server;
  const log = createLogger("readiness-test", "silent");
  directory = new OrchestratorDirectory(m.address, 100, log);
  pool = new WorkerPool(directory, log, { syncIntervalMs: 50 });
  app = createServer({
    config: GatewayConfigSchema.parse({}),
    log,
    directory,
    registry: createMetricsRegistry("readiness-test"),
    backend: pool,
    tokenizer: tok,
  });
  base = await app.listen({ host: "127.0.0.1", port: 0 });
}, 30_000);

afterAll(async () => {
  await app?.close();
  pool?.close();
  directory?.close();
  membership?.forceShutdown();
  await worker?.close();
});

type Ready = { status: number; body: { status: string; discovery: string; roster_age_ms: number | null; models: string[] } };

async function ready(): Promise<Ready> {
  const res = await fetch(`${base}/ready`);
  return { status: res.status, body: (await res.json()) as Ready["body"] };
}

async function metric(name: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  // Default labels ({service=…}) follow the name.
  const line = text.split("\n").find((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
  return Number(line?.split(" ")[1]);
}

describe("/ready", () => {
  it("is ready with discovery ok and a routable worker", async () => {
    await expect.poll(async () => (await ready()).status, { timeout: 10_000 }).toBe(200);
    const r = await ready();
    expect(r.body).toMatchObject({ status: "ready", discovery: "ok", models: [MODEL] });
    expect(await metric("expertmesh_gateway_discovery_healthy")).toBe(1);
  });

  it("stays ready on the last known roster while the orchestrator is down, and serves", async () => {
    membership.forceShutdown();
    await expect.poll(async () => (await ready()).body.discovery, { timeout: 10_000 }).toBe("failing");
    const r = await ready();
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ status: "ready", models: [MODEL] });
    expect(await metric("expertmesh_gateway_discovery_healthy")).toBe(0);
    await expect.poll(() => metric("expertmesh_gateway_roster_age_seconds"), { timeout: 10_000 }).toBeGreaterThan(0.2);
    const client = new OpenAI({ apiKey: "none", baseURL: `${base}/v1`, maxRetries: 0 });
    const chat = await client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: "Hi" }], max_tokens: 8 });
    expect(chat.choices[0]?.message.content).toBe("Hello.");
  });

  it("is not ready once no worker of that roster can take a request", async () => {
    worker.setHealth("NOT_SERVING");
    await expect.poll(async () => (await ready()).status, { timeout: 10_000 }).toBe(503);
    expect((await ready()).body).toMatchObject({ status: "not_ready", models: [] });
    worker.setHealth("SERVING");
    await expect.poll(async () => (await ready()).status, { timeout: 10_000 }).toBe(200);
  });
});
