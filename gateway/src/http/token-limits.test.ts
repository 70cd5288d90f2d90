/**
 * Tokens per minute per key: the limiter port's reserve/charge contract on memory and on a real Redis,
 * then through the whole gateway with a scripted worker as the token source: the prompt is reserved at
 * admission, completion tokens are charged as they stream, and the request that no longer fits gets an
 * OpenAI-shaped 429 with x-ratelimit-*-tokens headers (the official openai SDK as the client).
 */
import { type RedisServer, startRedisServer } from "@expertmesh/common/testing";
import { HarmonyTokenizer } from "@expertmesh/grammar/tokenizer";
import { GenerateRequest } from "@expertmesh/proto/worker";
import { ROOT_CONTEXT } from "@opentelemetry/api";
import { Redis } from "ioredis";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PrimaryRateLimiter } from "../adapters/primary-rate-limiter.ts";
import { RedisRateLimiter } from "../adapters/redis-rate-limiter.ts";
import { sharedStateHandlers } from "../cluster/shared-state.ts";
import { ApiKeys, hashKey } from "../domain/api-keys.ts";
import { withCaller } from "../domain/caller.ts";
import type { GenerationBackend } from "../domain/generation-backend.ts";
import { MemoryRateLimiter, type RateLimiter } from "../domain/rate-limiter.ts";
import { MemoryResponseStore } from "../domain/responses/store.ts";
import { TokenLimitedBackend } from "../domain/token-limits.ts";
import { linkedPrimaryChannel } from "../testing/linked-channel.ts";
import { type ScriptedWorker, startScriptedWorker } from "../testing/scripted-worker.ts";
import { startTestGateway, type TestGateway } from "../testing/test-gateway.ts";

const tok = new HarmonyTokenizer();
const ANSWER = tok.encodeWithSpecials("<|channel|>final<|message|>Hello there, how are you today?<|return|>");
const KEY = "sk-tpm-test-0123456789";
const MODEL = "gpt-oss-20b";
const ASK = { model: MODEL, messages: [{ role: "user" as const, content: "Hi" }] };

let redis: RedisServer;
let worker: ScriptedWorker;
const clients: Redis[] = [];
const gateways: TestGateway[] = [];

beforeAll(async () => {
  redis = await startRedisServer();
  worker = await startScriptedWorker([], { fallback: ANSWER });
});
afterAll(async () => {
  for (const g of gateways) await g.close();
  for (const c of clients) await c.quit();
  await worker.close();
  await redis.stop();
});

function limiter(kind: "memory" | "primary" | "redis", now?: () => number): RateLimiter {
  if (kind === "memory") return new MemoryRateLimiter(now);
  // A gateway child's limiter: the windows live in the primary's MemoryRateLimiter, over the IPC channel.
  if (kind === "primary")
    return new PrimaryRateLimiter(linkedPrimaryChannel(sharedStateHandlers(new MemoryRateLimiter(now), new MemoryResponseStore())));
  const c = new Redis(redis.url);
  clients.push(c);
  return new RedisRateLimiter(c, `tpm-${Math.random().toString(36).slice(2)}:`);
}

async function gateway(config: Record<string, unknown>, deps: Parameters<typeof startTestGateway>[0]["deps"] = {}) {
  const g = await startTestGateway({ address: worker.address, model: MODEL, tokenizer: tok, config, deps });
  gateways.push(g);
  return new OpenAI({ apiKey: KEY, baseURL: `${g.base}/v1`, maxRetries: 0 });
}

describe.each(["memory", "primary", "redis"] as const)("token limiter conformance: %s", (kind) => {
  it("reserve is all or nothing; charge always counts and can pass the limit", async () => {
    const l = limiter(kind);
    expect(await l.reserve("k", 60, 100, 60_000)).toMatchObject({ allowed: true, limit: 100, remaining: 40 });
    expect(await l.reserve("k", 50, 100, 60_000)).toMatchObject({ allowed: false, remaining: 40 });
    expect(await l.reserve("k", 40, 100, 60_000)).toMatchObject({ allowed: true, remaining: 0 });
    await l.charge("k", 25, 60_000);
    const refused = await l.reserve("k", 1, 100, 60_000);
    expect(refused).toMatchObject({ allowed: false, remaining: 0 });
    expect(refused.resetMs).toBeGreaterThan(0);
    expect(refused.resetMs).toBeLessThanOrEqual(60_000);
    expect((await l.reserve("other", 101, 100, 60_000)).allowed).toBe(false);
    expect((await l.reserve("other", 100, 100, 60_000)).allowed).toBe(true);
  });

  it("a new window starts from zero", async () => {
    let now = 5_000_000;
    const l = limiter(kind, () => now);
    const window = kind === "redis" ? 300 : 60_000;
    await l.charge("w", 500, window);
    expect((await l.reserve("w", 10, 100, window)).allowed).toBe(false);
    if (kind !== "redis") now += 60_000;
    else await new Promise((r) => setTimeout(r, 350));
    expect(await l.reserve("w", 10, 100, window)).toMatchObject({ allowed: true, remaining: 90 });
  });
});

describe("TokenLimitedBackend", () => {
  const failing: GenerationBackend = {
    // biome-ignore lint/correctness/useYield: fails before its first event, like an overloaded admission
    async *generate() {
      throw new Error("no engine");
    },
    models: () => [MODEL],
  };
  const request = (n: number) => GenerateRequest.fromPartial({ requestId: "r", promptTokenIds: Array(n).fill(1) });

  it("a generation that fails before its first token gives its prompt back", async () => {
    const l = new MemoryRateLimiter();
    const backend = new TokenLimitedBackend(failing, { limiter: l, tokensPerMinute: 100 });
    const parent = withCaller(ROOT_CONTEXT, { key: { id: "k", sha256: "" } });
    const run = backend.generate(MODEL, request(60), new AbortController().signal, parent)[Symbol.asyncIterator]();
    await expect(run.next()).rejects.toThrow("no engine");
    expect(await l.reserve("tpm:k", 100, 100, 60_000)).toMatchObject({ allowed: true, remaining: 0 });
  });

  it("without a caller or with limit 0 the inner backend is used as it is", () => {
    const l = new MemoryRateLimiter();
    const inner = failing.generate(MODEL, request(1), new AbortController().signal);
    const same = { ...failing, generate: () => inner };
    const signal = new AbortController().signal;
    expect(new TokenLimitedBackend(same, { limiter: l, tokensPerMinute: 100 }).generate(MODEL, request(1), signal)).toBe(inner);
    const caller = withCaller(ROOT_CONTEXT, { key: { id: "k", sha256: "" } });
    expect(new TokenLimitedBackend(same, { limiter: l, tokensPerMinute: 0 }).generate(MODEL, request(1), signal, caller)).toBe(inner);
  });
});

describe.each(["memory", "redis"] as const)("tokens per minute over HTTP: %s limiter", (kind) => {
  // One request's prompt and completion, measured on a gateway without limits (same scripted answer).
  let prompt = 0;
  let completion = 0;
  beforeAll(async () => {
    const r = await (await gateway({ api_keys: [KEY] })).chat.completions.create(ASK);
    prompt = r.usage?.prompt_tokens ?? 0;
    completion = r.usage?.completion_tokens ?? 0;
    expect(prompt).toBeGreaterThan(0);
    expect(completion).toBe(ANSWER.length);
  });

  it("the prompt is reserved at admission, completion charged after; the next request no longer fits: 429", async () => {
    // Room for two prompts and one completion, less one token: the first request fits, the second cannot.
    const limit = 2 * prompt + completion - 1;
    const client = await gateway(
      { api_keys: [KEY], limits: { tokens_per_minute: limit, requests_per_minute: 100 } },
      { limiter: limiter(kind) },
    );
    const { data, response } = await client.chat.completions.create(ASK).withResponse();
    expect(data.choices[0]?.message.content).toBe("Hello there, how are you today?");
    expect(response.headers.get("x-ratelimit-limit-tokens")).toBe(String(limit));
    expect(response.headers.get("x-ratelimit-remaining-tokens")).toBe(String(limit - prompt));
    expect(response.headers.get("x-ratelimit-reset-tokens")).toMatch(/^\d+s$/);
    expect(response.headers.get("x-ratelimit-remaining-requests")).toBe("99");

    const err = await client.chat.completions.create(ASK).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    const e = err as InstanceType<typeof OpenAI.RateLimitError>;
    expect(e.status).toBe(429);
    expect(e.code).toBe("rate_limit_exceeded");
    expect(e.type).toBe("rate_limit_error");
    expect(e.message).toContain("tokens per minute");
    expect(e.headers.get("x-ratelimit-limit-tokens")).toBe(String(limit));
    expect(e.headers.get("x-ratelimit-remaining-tokens")).toBe(String(limit - prompt - completion));
    expect(e.headers.get("x-ratelimit-reset-tokens")).toMatch(/^\d+s$/);
    expect(e.headers.get("x-ratelimit-limit-requests")).toBe("100");
    expect(Number(e.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(e.headers.get("x-request-id")).toBeTruthy();
  });

  it("streaming: the headers arrive with the SSE response and the streamed tokens are charged", async () => {
    const limit = 2 * prompt + completion - 1;
    const client = await gateway(
      { api_keys: [KEY], limits: { tokens_per_minute: limit, requests_per_minute: 10 } },
      { limiter: limiter(kind) },
    );
    const { data: stream, response } = await client.chat.completions.create({ ...ASK, stream: true }).withResponse();
    expect(response.headers.get("content-type")).toContain("text/event-stream");
    expect(response.headers.get("x-ratelimit-remaining-tokens")).toBe(String(limit - prompt));
    expect(response.headers.get("x-ratelimit-remaining-requests")).toBe("9");
    let content = "";
    for await (const c of stream) content += c.choices[0]?.delta?.content ?? "";
    expect(content).toBe("Hello there, how are you today?");
    await expect(client.chat.completions.create({ ...ASK, stream: true })).rejects.toBeInstanceOf(OpenAI.RateLimitError);
  });

  it("a key's own tokens_per_minute overrides the default; a prompt over the whole limit is 'too large'", async () => {
    const keys = new ApiKeys([
      { id: "big", sha256: hashKey(KEY), tokens_per_minute: 0 },
      { id: "tiny", sha256: hashKey("sk-tpm-tiny-0123456789"), tokens_per_minute: 1 },
    ]);
    const client = await gateway({ limits: { tokens_per_minute: 1 } }, { limiter: limiter(kind), keys });
    const { response } = await client.chat.completions.create(ASK).withResponse();
    expect(response.headers.get("x-ratelimit-limit-tokens")).toBeNull(); // unlimited: no token headers
    const tiny = client.withOptions({ apiKey: "sk-tpm-tiny-0123456789" });
    const err = await tiny.completions.create({ model: MODEL, prompt: "Hello there, how are you doing?" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    expect((err as Error).message).toMatch(/Request too large for key tiny on tokens per minute: limit 1, requested \d+/);
  });
});
