/**
 * A background response outlives its gateway (issue #27): Redis, a scripted worker behind a stub
 * membership service, and the gateway as a real process. The response is created through the openai
 * SDK and starts generating; the gateway is SIGKILLed mid-run and started again on the same port; the
 * BullMQ job its dead run left locked is taken up again once the lock expires, and the response — polled
 * through the SDK all along — completes with the whole answer.
 */
import { freePort, type RedisServer, startRedisServer } from "@expertmesh/common/testing";
import { HarmonyTokenizer, type ScriptedWorker, startScriptedWorker, startStubMembership } from "@expertmesh/gateway/testing";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Cleanup, until } from "./support.ts";

const KEY = "sk-background-e2e-0123456789";
const MODEL = "gpt-oss-20b";
const tok = new HarmonyTokenizer();
const ANSWER = "step ".repeat(150);
const SCRIPT = tok.encodeWithSpecials(`<|channel|>final<|message|>${ANSWER}<|return|>`);
const cleanup = new Cleanup();
let redis: RedisServer;
let worker: ScriptedWorker;
let membership: string;

beforeAll(async () => {
  redis = await startRedisServer();
  // Every generation plays the whole answer, one token every 25 ms (about 4 s): long enough to kill mid-run.
  worker = await startScriptedWorker([], {
    fallback: SCRIPT,
    tokenIntervalMs: 25,
  });
  const stub = await startStubMembership(worker.address, MODEL);
  membership = stub.address;
  cleanup.add(() => stub.server.forceShutdown());
  cleanup.add(() => worker.close());
});
afterAll(async () => {
  await cleanup.run();
  await redis?.stop();
});

describe("background responses across a gateway restart", () => {
  it("a response whose gateway is SIGKILLed mid-run completes after the gateway restarts", async () => {
    const port = await freePort();
    const env = {
      GATEWAY_PORT: String(port),
      GATEWAY_API_KEYS: KEY,
      GATEWAY_ORCHESTRATOR_ADDRESS: membership,
      GATEWAY_DISCOVERY_REFRESH_MS: "200",
      REDIS_URL: redis.url,
      ORCHESTRATOR_REDIS_KEY_PREFIX: `bg-e2e-${Date.now()}:`,
      GATEWAY_BACKGROUND_LOCK_DURATION_MS: "2000",
    };
    const base = `http://127.0.0.1:${port}`;
    const ready = () =>
      until(
        () => fetch(`${base}/ready`).then((r) => r.status),
        (s) => s === 200,
        60_000,
      );
    const first = cleanup.service("gateway/src/main.ts", env);
    await ready();
    const client = new OpenAI({ apiKey: KEY, baseURL: `${base}/v1`, maxRetries: 0 });

    const created = await client.responses.create({ model: MODEL, input: "Count the steps.", background: true });
    expect(created.status).toBe("queued");
    await until(
      () => client.responses.retrieve(created.id),
      (r) => r?.status === "in_progress",
      60_000,
    );
    await until(
      async () => worker.requests.length,
      (n) => n === 1,
      60_000,
    );
    const exited = new Promise((resolve) => first.once("exit", resolve));
    first.kill("SIGKILL");
    await exited;
    // Dead mid-run: the worker's generation was dropped with the gateway's stream, nothing finished it.
    await until(
      async () => worker.cancelled.length,
      (n) => n === 1,
      30_000,
    );

    const second = cleanup.service("gateway/src/main.ts", env);
    await ready();
    const done = await until(
      () => client.responses.retrieve(created.id),
      (r) => r?.status === "completed",
      120_000,
    );
    expect(done.output_text).toBe(ANSWER);
    expect(done.usage?.output_tokens).toBe(SCRIPT.length);
    // Run again from the start, with the same prompt.
    expect(worker.requests).toHaveLength(2);
    expect(worker.requests[1]?.promptTokenIds).toEqual(worker.requests[0]?.promptTokenIds);

    // With its background worker idle, the gateway drains and exits on SIGTERM well within its grace period.
    const started = Date.now();
    const code = new Promise<number | null>((resolve) => second.once("exit", resolve));
    second.kill("SIGTERM");
    expect(await code).toBe(0);
    expect(Date.now() - started).toBeLessThan(25_000);
  }, 180_000);
});
