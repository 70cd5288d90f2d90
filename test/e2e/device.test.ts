/**
 * WORKER_DEVICE through the whole stack (#22), as processes: Redis, the orchestrator, one worker whose
 * engine runs the CUDA kernels under the CPU emulator (WORKER_DEVICE=cuda-emu) and the gateway. A chat
 * completion through the official openai SDK succeeds with text, and the device shows in the worker's
 * Info (`backend`) and in the gateway's /v1/models (`devices`). Few tokens: the emulator is slow
 * (an 80-token prompt and 4 tokens of the tiny model take ~7 s on the 2-core machine against 0.3 s on cpu).
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, type RedisServer, startRedisServer } from "@expertmesh/common/testing";
import { SHAPES } from "@expertmesh/kernels";
import { writeSyntheticCheckpoint } from "@expertmesh/kernels/checkpoint";
import { type Member, MembershipClient } from "@expertmesh/proto/cluster";
import { spawnWorker } from "@expertmesh/worker/testing";
import { credentials } from "@grpc/grpc-js";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Cleanup, until } from "./support.ts";

const MODEL = "gpt-oss-tiny-emu";
const KEY = "sk-device-test-0123456789";
let redis: RedisServer;
let checkpoint: string;
const cleanup = new Cleanup();

beforeAll(async () => {
  redis = await startRedisServer();
  checkpoint = join(mkdtempSync(join(tmpdir(), "device-model-")), "tiny");
  writeSyntheticCheckpoint({ shape: SHAPES.tiny, out: checkpoint, seed: 3 });
});
afterAll(async () => {
  await cleanup.run();
  await redis?.stop();
});

describe("a worker on WORKER_DEVICE=cuda-emu behind the gateway", () => {
  it("answers a chat completion with text, and reports cuda-emu in its Info and in /v1/models", async () => {
    const orchestratorPort = await freePort();
    const orchestrator = `127.0.0.1:${orchestratorPort}`;
    cleanup.service("orchestrator/src/main.ts", {
      REDIS_URL: redis.url,
      ORCHESTRATOR_PORT: String(orchestratorPort),
      ORCHESTRATOR_METRICS_PORT: "0",
      ORCHESTRATOR_REDIS_KEY_PREFIX: `device-${Date.now()}:`,
      ORCHESTRATOR_LEASE_TTL_MS: "1500",
      ORCHESTRATOR_PRUNE_INTERVAL_MS: "200",
    });
    const membership = new MembershipClient(orchestrator, credentials.createInsecure());
    cleanup.add(() => membership.close());
    const members = () =>
      new Promise<Member[]>((resolve, reject) => membership.listMembers({ model: "" }, (e, r) => (e ? reject(e) : resolve(r.members))));
    await until(members, (m) => Array.isArray(m)); // the orchestrator listens: the worker registers at once
    const worker = await spawnWorker({
      WORKER_MODEL_PATH: checkpoint,
      WORKER_MODEL_NAME: MODEL,
      WORKER_DEVICE: "cuda-emu",
      WORKER_ORCHESTRATOR_ADDRESS: orchestrator,
      WORKER_HEARTBEAT_MS: "200",
      WORKER_KV_NUM_BLOCKS: "64",
      WORKER_MAX_NUM_SEQS: "4",
    });
    cleanup.add(() => worker.stop());
    expect((await worker.info()).backend).toBe("cuda-emu");
    const [member] = await until(members, (m) => m?.length === 1);
    expect(member).toMatchObject({ model: MODEL, device: "cuda-emu" });

    const gatewayPort = await freePort();
    cleanup.service("gateway/src/main.ts", {
      GATEWAY_PORT: String(gatewayPort),
      GATEWAY_ORCHESTRATOR_ADDRESS: orchestrator,
      GATEWAY_DISCOVERY_REFRESH_MS: "200",
      GATEWAY_API_KEYS: KEY,
    });
    const base = `http://127.0.0.1:${gatewayPort}`;
    await until(
      () => fetch(`${base}/ready`).then((r) => r.status),
      (s) => s === 200,
    );
    const client = new OpenAI({ apiKey: KEY, baseURL: `${base}/v1`, maxRetries: 0 });

    const models: Array<{ id: string; devices?: string[] }> = [];
    for await (const m of client.models.list()) models.push(m as { id: string; devices?: string[] });
    expect(models).toEqual([expect.objectContaining({ id: MODEL, devices: ["cuda-emu"] })]);

    const { data: completion, response } = await client.chat.completions
      .create({ model: MODEL, messages: [{ role: "user", content: "Hi" }], max_tokens: 4, temperature: 0 })
      .withResponse();
    expect(response.status).toBe(200);
    expect(completion.object).toBe("chat.completion");
    expect(completion.usage?.completion_tokens).toBeGreaterThan(0);
    const message = completion.choices[0]?.message as { content: string | null; reasoning_content?: string };
    // A random synthetic model may write its few tokens to either channel; some text comes back.
    expect(`${message.content ?? ""}${message.reasoning_content ?? ""}`.length).toBeGreaterThan(0);
  });
});
