/**
 * R3 and R16 at the gateway: hashed API keys (file and env), every route authenticated except the
 * allow-list, and per-key request limits — the (limit+1)-th request in a window gets an OpenAI-shaped 429
 * with x-ratelimit-* headers — on the in-memory limiter and on a real Redis shared by two gateways.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger, createMetricsRegistry } from "@expertmesh/common";
import { type RedisServer, startRedisServer } from "@expertmesh/common/testing";
import type { FastifyInstance } from "fastify";
import { Redis } from "ioredis";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PrimaryRateLimiter } from "../adapters/primary-rate-limiter.ts";
import { RedisRateLimiter } from "../adapters/redis-rate-limiter.ts";
import { sharedStateHandlers } from "../cluster/shared-state.ts";
import { GatewayConfigSchema } from "../config.ts";
import { hashKey } from "../domain/api-keys.ts";
import { MemoryRateLimiter, type RateLimiter } from "../domain/rate-limiter.ts";
import { MemoryResponseStore } from "../domain/responses/store.ts";
import { StaticWorkerDirectory } from "../domain/worker-directory.ts";
import { createServer } from "../server.ts";
import { linkedPrimaryChannel } from "../testing/linked-channel.ts";

let redis: RedisServer;
const clients: Redis[] = [];
const apps: FastifyInstance[] = [];

beforeAll(async () => {
  redis = await startRedisServer();
});
afterAll(async () => {
  for (const a of apps) await a.close();
  for (const c of clients) await c.quit();
  await redis.stop();
});

async function gateway(env: Record<string, unknown>, limiter?: RateLimiter): Promise<string> {
  const app = createServer({
    config: GatewayConfigSchema.parse(env),
    log: createLogger("auth-test", "silent"),
    directory: new StaticWorkerDirectory([]),
    registry: createMetricsRegistry("gateway-auth-test"),
    ...(limiter ? { limiter } : {}),
  });
  apps.push(app);
  return `${await app.listen({ host: "127.0.0.1", port: 0 })}/v1`;
}

describe("rate limiter conformance", () => {
  it.each(["memory", "primary", "redis"])("%s: counts a fixed window, then resets", async (kind) => {
    let now = 1_000_000;
    const limiter =
      kind === "memory"
        ? new MemoryRateLimiter(() => now)
        : kind === "primary"
          ? // A gateway child's limiter: the windows live in the primary's MemoryRateLimiter, over the IPC channel.
            new PrimaryRateLimiter(linkedPrimaryChannel(sharedStateHandlers(new MemoryRateLimiter(() => now), new MemoryResponseStore())))
          : new RedisRateLimiter(
              (() => {
                const c = new Redis(redis.url);
                clients.push(c);
                return c;
              })(),
              `t${Date.now()}:`,
            );
    const window = kind === "redis" ? 300 : 60_000;
    const decisions = [];
    for (let i = 0; i < 4; i++) decisions.push(await limiter.hit("k", 3, window));
    expect(decisions.map((d) => [d.allowed, d.remaining])).toEqual([
      [true, 2],
      [true, 1],
      [true, 0],
      [false, 0],
    ]);
    expect(decisions[3]?.resetMs).toBeGreaterThan(0);
    expect(decisions[3]?.resetMs).toBeLessThanOrEqual(window);
    if (kind !== "redis") now += 60_000;
    else await new Promise((r) => setTimeout(r, 350));
    expect((await limiter.hit("k", 3, window)).allowed).toBe(true);
  });
});

describe("keys and limits over HTTP", () => {
  it("accepts hashed keys from a file; the key itself is never stored", async () => {
    const dir = mkdtempSync(join(tmpdir(), "keys-"));
    const file = join(dir, "keys.yaml");
    writeFileSync(file, `keys:\n  - id: team-a\n    sha256: ${hashKey("sk-team-a-secret-1")}\n`);
    const base = await gateway({ api_keys_file: file });
    const ok = new OpenAI({ apiKey: "sk-team-a-secret-1", baseURL: base, maxRetries: 0 });
    expect((await ok.models.list()).data).toEqual([]);
    const bad = new OpenAI({ apiKey: "sk-team-a-secret-2", baseURL: base, maxRetries: 0 });
    await expect(bad.models.list()).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
  });

  it("R16: every route needs a key except the allow-list", async () => {
    const base = await gateway({ api_keys: ["sk-r16-key-000000"] });
    const root = base.replace(/\/v1$/, "");
    for (const [method, path] of [
      ["GET", "/v1/models"],
      ["GET", "/v1/models/x"],
      ["POST", "/v1/chat/completions"],
      ["POST", "/v1/completions"],
      ["GET", "/v1/unknown"],
    ] as const) {
      const r = await fetch(`${root}${path}`, {
        method,
        headers: { "content-type": "application/json" },
        body: method === "POST" ? "{}" : null,
      });
      expect(r.status, `${method} ${path}`).toBe(401);
      expect(((await r.json()) as { error: { code: string } }).error.code).toBe("invalid_api_key");
    }
    for (const path of ["/health", "/metrics"]) expect((await fetch(`${root}${path}`)).status).toBe(200);
  });

  it("R3: the (limit+1)-th request in a window is a 429 with x-ratelimit-* headers, shared by two gateways on Redis", async () => {
    const env = { api_keys: ["sk-r3-key-0000000"], limits: { requests_per_minute: 3 } };
    const shared = () => {
      const c = new Redis(redis.url);
      clients.push(c);
      return new RedisRateLimiter(c, `r3-${Date.now()}:`);
    };
    const prefixLimiter = shared();
    const a = await gateway(env, prefixLimiter);
    const b = await gateway(env, prefixLimiter);
    const headers = async (base: string) => {
      const r = await fetch(`${base}/models`, { headers: { authorization: "Bearer sk-r3-key-0000000" } });
      return {
        status: r.status,
        remaining: r.headers.get("x-ratelimit-remaining-requests"),
        limit: r.headers.get("x-ratelimit-limit-requests"),
        retry: r.headers.get("retry-after"),
        body: await r.json(),
      };
    };
    expect(await headers(a)).toMatchObject({ status: 200, remaining: "2", limit: "3" });
    expect(await headers(b)).toMatchObject({ status: 200, remaining: "1" });
    expect(await headers(a)).toMatchObject({ status: 200, remaining: "0" });
    const over = await headers(b);
    expect(over).toMatchObject({ status: 429, remaining: "0" });
    expect(Number(over.retry)).toBeGreaterThan(0);
    expect(over.body).toMatchObject({ error: { type: "rate_limit_error", code: "rate_limit_exceeded" } });
    const sdk = new OpenAI({ apiKey: "sk-r3-key-0000000", baseURL: a, maxRetries: 0 });
    await expect(sdk.models.list()).rejects.toBeInstanceOf(OpenAI.RateLimitError);
  });
});
