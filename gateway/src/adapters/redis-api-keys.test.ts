/**
 * API keys in Redis: the key CLI (a real child process) adds, lists and revokes keys in a real
 * redis-server; a real gateway accepts a key once added and answers 401 within the cache window after
 * it is revoked; per-key limits come from the stored metadata; the key itself is never stored or listed;
 * an unreachable store is a 503, not a 401; a key's project (--project, the keys file) is kept and validated.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { createLogger, createMetricsRegistry } from "@expertmesh/common";
import { type RedisServer, startRedisServer } from "@expertmesh/common/testing";
import type { FastifyInstance } from "fastify";
import { Redis } from "ioredis";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GatewayConfigSchema } from "../config.ts";
import { AnyApiKeys, type ApiKeySource, ApiKeys, hashKey } from "../domain/api-keys.ts";
import { StaticWorkerDirectory } from "../domain/worker-directory.ts";
import { createServer } from "../server.ts";
import { RedisApiKeys } from "./redis-api-keys.ts";

const CLI = fileURLToPath(new URL("../cli/keys.ts", import.meta.url));
const CACHE_MS = 300;

let redis: RedisServer;
let client: Redis;
const apps: FastifyInstance[] = [];
const stores: Redis[] = [];

beforeAll(async () => {
  redis = await startRedisServer();
  client = new Redis(redis.url);
});
afterAll(async () => {
  for (const a of apps) await a.close();
  for (const c of [client, ...stores]) c.disconnect();
  await redis.stop();
});

async function keysCli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [CLI, ...args, "--redis-url", redis.url]);
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

async function gateway(keys: ApiKeySource, config: Record<string, unknown> = {}): Promise<string> {
  const app = createServer({
    config: GatewayConfigSchema.parse({ api_keys_store: "redis", redis_url: redis.url, ...config }),
    log: createLogger("redis-keys-test", "silent"),
    directory: new StaticWorkerDirectory([]),
    registry: createMetricsRegistry("redis-keys-test"),
    keys,
  });
  apps.push(app);
  return `${await app.listen({ host: "127.0.0.1", port: 0 })}/v1`;
}

function store(o: ConstructorParameters<typeof RedisApiKeys>[1]): RedisApiKeys {
  const c = new Redis(redis.url);
  stores.push(c);
  return new RedisApiKeys(c, o);
}

const sdk = (apiKey: string, baseURL: string) => new OpenAI({ apiKey, baseURL, maxRetries: 0 });

describe("API keys in Redis", () => {
  it("CLI add → the key works; list never shows it; revoke → 401 within the cache window", { timeout: 30_000 }, async () => {
    const base = await gateway(store({ cacheMs: CACHE_MS }));
    const added = await keysCli("add", "--id", "team-r", "--name", "Team R");
    expect(added.code).toBe(0);
    const { key, ...meta } = JSON.parse(added.stdout) as { key: string; id: string; name: string };
    expect(meta).toEqual({ id: "team-r", name: "Team R" });
    expect(key).toMatch(/^sk-em-[A-Za-z0-9_-]{43}$/);
    expect(added.stderr).toContain("not shown again");
    expect((await sdk(key, base).models.list()).data).toEqual([]);

    // Redis holds the digest only; list shows neither the key nor the digest.
    const dump = JSON.stringify(await client.hgetall(`em:apikeys:key:${hashKey(key)}`));
    expect(dump).toContain("team-r");
    expect(dump).not.toContain(key);
    const listed = await keysCli("list");
    expect(listed.code).toBe(0);
    expect(JSON.parse(listed.stdout)).toEqual([{ id: "team-r", name: "Team R", created_unix_ms: expect.any(Number) }]);
    expect(listed.stdout).not.toContain(key);
    expect(listed.stdout).not.toContain(hashKey(key));

    expect((await keysCli("add", "--id", "team-r")).code).toBe(1); // ids are unique
    const revoked = await keysCli("revoke", "team-r");
    expect(revoked).toMatchObject({ code: 0, stdout: `${JSON.stringify({ id: "team-r", revoked: true })}\n` });
    const revokedAt = Date.now();
    let status = 200;
    while (status === 200 && Date.now() - revokedAt < 5_000) {
      status = await sdk(key, base)
        .models.list()
        .then(
          () => 200,
          (e: InstanceType<typeof OpenAI.APIError>) => e.status ?? 0,
        );
      if (status === 200) await new Promise((r) => setTimeout(r, 20));
    }
    expect(status).toBe(401);
    expect(Date.now() - revokedAt).toBeLessThan(CACHE_MS + 1_000); // the window plus slack for a busy machine
    const after = await fetch(`${base}/models`, { headers: { authorization: `Bearer ${key}` } });
    expect(await after.json()).toMatchObject({ error: { type: "authentication_error", code: "invalid_api_key" } });
    expect((await keysCli("revoke", "team-r")).code).toBe(1);
  });

  it("per-key requests_per_minute from the stored metadata; a file key works beside Redis keys", async () => {
    const keys = store({ prefix: "rpm-test:", cacheMs: CACHE_MS });
    await keys.add({ id: "one-rpm", sha256: hashKey("sk-one-rpm-0123456789"), requests_per_minute: 1, tokens_per_minute: 7 });
    expect(await keys.lookup(hashKey("sk-one-rpm-0123456789"))).toEqual({
      id: "one-rpm",
      sha256: hashKey("sk-one-rpm-0123456789"),
      requests_per_minute: 1,
      tokens_per_minute: 7,
    });
    const base = await gateway(new AnyApiKeys([new ApiKeys([{ id: "boot", sha256: hashKey("sk-bootstrap-01234") }]), keys]));
    const limited = sdk("sk-one-rpm-0123456789", base);
    await limited.models.list();
    await expect(limited.models.list()).rejects.toBeInstanceOf(OpenAI.RateLimitError);
    expect((await sdk("sk-bootstrap-01234", base).models.list()).data).toEqual([]);
    await expect(sdk("sk-unknown-0123456789", base).models.list()).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
  });

  it("a key's project (CLI --project, keys file): stored, listed, found; a malformed one is refused", { timeout: 30_000 }, async () => {
    const added = await keysCli("add", "--id", "proj-k", "--project", "alpha");
    expect(added.code).toBe(0);
    const { key } = JSON.parse(added.stdout) as { key: string };
    expect((await store({}).lookup(hashKey(key)))?.project).toBe("alpha");
    const listed = JSON.parse((await keysCli("list")).stdout) as Array<{ id: string; project?: string }>;
    expect(listed.find((k) => k.id === "proj-k")?.project).toBe("alpha");
    expect((await keysCli("add", "--id", "proj-bad", "--project", "a:b")).code).toBe(2);
    expect(listed.some((k) => k.id === "proj-bad")).toBe(false);

    const dir = mkdtempSync(join(tmpdir(), "keys-file-"));
    const file = (entry: string) => {
      const path = join(dir, `${Math.random()}.yaml`);
      writeFileSync(path, `keys:\n  - { ${entry}, sha256: ${hashKey("sk-file-key-0123456789")} }\n`);
      return path;
    };
    expect((await ApiKeys.load([], file("id: f, project: beta")).find("sk-file-key-0123456789"))?.project).toBe("beta");
    expect(() => ApiKeys.load([], file("id: f, project: 'a:b'"))).toThrow(/project must match/);
    expect(() => ApiKeys.load([], file("id: 'project:beta'"))).toThrow(/may not start with 'project:'/);
  }); // three CLI processes on a shared 2-core machine: 30 s budget

  it("lookups are cached per digest for cacheMs, found and not found alike", async () => {
    let now = 1_000;
    const keys = store({ prefix: "cache-test:", cacheMs: 5_000, now: () => now });
    const sha = hashKey("sk-cached-0123456789");
    expect(await keys.find("sk-cached-0123456789")).toBeUndefined();
    await keys.add({ id: "cached", sha256: sha });
    expect(await keys.find("sk-cached-0123456789")).toBeUndefined(); // the miss is still cached
    now += 5_000;
    expect((await keys.find("sk-cached-0123456789"))?.id).toBe("cached");
    await keys.revoke("cached");
    now += 4_999;
    expect((await keys.find("sk-cached-0123456789"))?.id).toBe("cached"); // within the window
    now += 1;
    expect(await keys.find("sk-cached-0123456789")).toBeUndefined();
  });

  it("an unreachable key store answers 503 OpenAI-shaped, never 401", async () => {
    const dead = new Redis("redis://127.0.0.1:1", { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    dead.on("error", () => {});
    stores.push(dead);
    const base = await gateway(new RedisApiKeys(dead));
    const r = await fetch(`${base}/models`, { headers: { authorization: "Bearer sk-whatever-0123456789" } });
    expect(r.status).toBe(503);
    expect(await r.json()).toMatchObject({ error: { type: "server_error", code: "service_unavailable" } });
  });

  it("config: api_keys_store 'redis' needs redis_url", () => {
    expect(GatewayConfigSchema.safeParse({ api_keys_store: "redis" }).success).toBe(false);
    expect(GatewayConfigSchema.safeParse({ api_keys_store: "redis", redis_url: "redis://x:6379" }).success).toBe(true);
  });
});
