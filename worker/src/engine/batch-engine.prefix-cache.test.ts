/**
 * Prefix caching over real gRPC: a repeated or shared prefix (longer than the 128-token window) is served
 * from cached blocks — fewer tokens computed, the hit counted in the metrics — and the output is exactly
 * what a cold worker produces. Cached blocks are evicted least-recently-used when the pool fills.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger } from "@expertmesh/common";
import { blockHashes, PrefixSummary, prefixRoot } from "@expertmesh/common/prefix";
import { SHAPES } from "@expertmesh/kernels";
import { writeSyntheticCheckpoint } from "@expertmesh/kernels/checkpoint";
import { type Finished, type GenerateRequest, type GenerateResponse, Priority, WorkerClient } from "@expertmesh/proto/worker";
import { credentials, Metadata, type ServiceError } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningWorker, startWorker } from "../app.ts";
import { loadWorkerConfig } from "../config.ts";
import type { BatchEngine } from "./batch-engine.ts";

const dir = join(mkdtempSync(join(tmpdir(), "prefix-model-")), "tiny");
const workers: Array<{ w: RunningWorker; client: WorkerClient }> = [];

async function worker(env: Record<string, string> = {}) {
  const config = loadWorkerConfig({
    WORKER_PORT: "0",
    WORKER_METRICS_PORT: "0",
    WORKER_MODEL_PATH: dir,
    WORKER_MODEL_NAME: "tiny",
    ...env,
  });
  const w = await startWorker(config, createLogger("prefix-test", "silent"));
  const client = new WorkerClient(w.address, credentials.createInsecure());
  workers.push({ w, client });
  return { w, client, engine: w.engine as BatchEngine };
}

beforeAll(() => {
  writeSyntheticCheckpoint({ shape: { ...SHAPES.tiny, vocab: 4096 }, out: dir, seed: 31 });
});
afterAll(async () => {
  for (const { w, client } of workers) {
    client.close();
    await w.close();
  }
});

function generate(client: WorkerClient, id: string, prompt: number[], maxTokens: number, extra: Partial<GenerateRequest> = {}) {
  return new Promise<{ tokens: number[]; usage?: Finished["usage"]; finished?: Finished; error?: ServiceError }>((resolve) => {
    const tokens: number[] = [];
    let finished: Finished | undefined;
    const s = client.generate(
      {
        requestId: id,
        promptTokenIds: prompt,
        stopTokenIds: [],
        maxTokens,
        priority: Priority.PRIORITY_ONLINE,
        deadlineUnixMs: 0,
        clampMaxTokens: false,
        maxReasoningTokens: 0,
        ...extra,
      },
      new Metadata(),
    );
    s.on("data", (e: GenerateResponse) => {
      for (const t of e.tokens?.tokens ?? []) tokens.push(t.tokenId);
      if (e.finished) finished = e.finished;
    });
    s.on("end", () => resolve({ tokens, usage: finished?.usage, finished }));
    s.on("error", (error: ServiceError) => resolve({ tokens, usage: finished?.usage, finished, error }));
  });
}

const seqOf = (seed: number, n: number) => Array.from({ length: n }, (_, j) => (seed * 7919 + j * 104729) % 4000);

/** A metric's value: its first series, or the one whose labels include `labels` ('reason="expired"'). */
async function metric(w: RunningWorker, name: string, labels = ""): Promise<number> {
  const text = await (await fetch(`http://${w.metricsAddress}/metrics`)).text();
  return Number(new RegExp(`${name}\\{[^}]*${labels}[^}]*\\} ([\\d.e+-]+)`).exec(text)?.[1] ?? 0);
}

describe("prefix caching", () => {
  it("a repeated 300-token prompt is served from the cache with identical output", async () => {
    const { w, client, engine } = await worker();
    const prompt = seqOf(1, 300);
    const first = await generate(client, "p1", prompt, 20);
    const second = await generate(client, "p2", prompt, 20);
    expect(first.usage?.cachedPromptTokens).toBe(0);
    expect(second.usage?.cachedPromptTokens).toBe(Math.floor(299 / 16) * 16);
    expect(second.tokens).toEqual(first.tokens);
    expect(await metric(w, "vllm:prefix_cache_hits_total")).toBe(288);
    expect(await metric(w, "vllm:prefix_cache_queries_total")).toBe(600);
    expect(await metric(w, "expertmesh_prefix_cache_hit_rate")).toBeCloseTo(288 / 600, 6);
    expect(engine.blocksInUse()).toBe(0);
  });

  it("prompts sharing a 200-token prefix reuse it and match a cold worker exactly", async () => {
    const warm = await worker();
    const cold = await worker();
    const shared = seqOf(2, 200);
    const a = [...shared, ...seqOf(3, 40)];
    const b = [...shared, ...seqOf(4, 25)];
    await generate(warm.client, "wa", a, 16);
    const hit = await generate(warm.client, "wb", b, 16);
    const fresh = await generate(cold.client, "cb", b, 16);
    expect(hit.usage?.cachedPromptTokens).toBe(192);
    expect(fresh.usage?.cachedPromptTokens).toBe(0);
    expect(hit.tokens).toEqual(fresh.tokens);
  });

  it("prompts arriving together share their common prefix: one computes it, the others wait for it", async () => {
    const { client } = await worker();
    const shared = seqOf(80, 400); // 25 blocks
    const runs = await Promise.all(Array.from({ length: 6 }, (_, i) => generate(client, `sib${i}`, [...shared, ...seqOf(81 + i, 20)], 2)));
    expect(runs.map((r) => r.error)).toEqual(Array(6).fill(undefined));
    // Whenever each arrived — before the first was admitted, during its prefill or after — one computed it.
    expect(runs.map((r) => r.usage?.cachedPromptTokens).sort((a, b) => (a ?? 0) - (b ?? 0))).toEqual([0, 400, 400, 400, 400, 400]);
  });

  it("evicts least-recently-used cached blocks when the pool fills, without errors or leaks", async () => {
    const { client, engine } = await worker({ WORKER_KV_NUM_BLOCKS: "40" });
    for (let i = 0; i < 12; i++) {
      const r = await generate(client, `e${i}`, seqOf(10 + i, 150), 8);
      expect(r.error).toBeUndefined();
    }
    // The most recent prompt is still cached; the first one was evicted.
    expect((await generate(client, "again-last", seqOf(21, 150), 8)).usage?.cachedPromptTokens).toBe(144);
    expect((await generate(client, "again-first", seqOf(10, 150), 8)).usage?.cachedPromptTokens).toBe(0);
    expect(engine.blocksInUse()).toBe(0);
  });
});

describe("tool-loop pins", () => {
  /** A turn that ends on its first greedy token, made its "tool call" token: the worker pins its prefix. */
  async function toolTurn(client: WorkerClient, id: string, prompt: number[], ttlMs: number) {
    const call = (await generate(client, `${id}-probe`, prompt, 1)).tokens[0] as number;
    const loop = { pinTtlMs: ttlMs, pinOnTokenIds: [call], follows: [] };
    return { call, turn: await generate(client, id, prompt, 8, { stopTokenIds: [call], toolLoop: loop }) };
  }

  it("a turn ending in its pin token keeps its blocks through eviction until the follow-up takes them", async () => {
    const { w, client, engine } = await worker({ WORKER_KV_NUM_BLOCKS: "40" });
    const prompt = seqOf(30, 150);
    const { call, turn } = await toolTurn(client, "loop-1", prompt, 60_000);
    expect(turn.finished?.pinnedBlocks).toBe(Math.floor(150 / 16));
    expect(engine.prefixSummary().pinnedBlocks).toBe(9);
    expect(await metric(w, "expertmesh_prefix_pinned_blocks")).toBe(9);
    // Other prompts fill the pool: without the pin, the loop's blocks would be the first evicted.
    for (let i = 0; i < 12; i++) expect((await generate(client, `fill${i}`, seqOf(40 + i, 150), 8)).error).toBeUndefined();
    const followUp = [...prompt, call, ...seqOf(31, 30)];
    const next = await generate(client, "loop-2", followUp, 4, { toolLoop: { pinTtlMs: 0, pinOnTokenIds: [], follows: ["loop-1"] } });
    expect(next.usage?.cachedPromptTokens).toBe(144);
    expect(engine.prefixSummary().pinnedBlocks).toBe(0);
    expect(await metric(w, "expertmesh_tool_pins_released_total", 'reason="follow_up"')).toBe(1);
    expect(engine.blocksInUse()).toBe(0);
  });

  it("a pin ends at its TTL, and a turn ending otherwise pins nothing", async () => {
    const { w, client, engine } = await worker({ WORKER_KV_NUM_BLOCKS: "40" });
    const { turn } = await toolTurn(client, "short", seqOf(50, 100), 1);
    expect(turn.finished?.pinnedBlocks).toBe(6);
    await expect.poll(() => engine.prefixSummary().pinnedBlocks).toBe(0);
    expect(await metric(w, "expertmesh_tool_pins_released_total", 'reason="expired"')).toBe(1);
    const loop = { pinTtlMs: 60_000, pinOnTokenIds: [4095], follows: [] };
    const free = await generate(client, "no-call", seqOf(51, 100), 3, { toolLoop: loop });
    expect(free.finished?.pinnedBlocks).toBe(0);
  });

  it("a request may take the whole pool: the pins in its way end under pressure instead of refusing it", async () => {
    const { w, client, engine } = await worker({ WORKER_KV_NUM_BLOCKS: "40" });
    const { turn } = await toolTurn(client, "in-the-way", seqOf(70, 150), 60_000);
    expect(turn.finished?.pinnedBlocks).toBe(9);
    const whole = await generate(client, "whole-pool", seqOf(71, 600), 40); // 640 tokens: all 40 blocks
    expect(whole.error).toBeUndefined();
    expect(whole.tokens).toHaveLength(40);
    expect(engine.prefixSummary().pinnedBlocks).toBe(0);
    expect(await metric(w, "expertmesh_tool_pins_released_total", 'reason="pressure"')).toBe(1);
    expect(engine.blocksInUse()).toBe(0);
  });

  it("the published summary names the blocks held, under the engine's salt", async () => {
    const { client, engine } = await worker({ WORKER_KV_NUM_BLOCKS: "40" });
    const prompt = seqOf(60, 100);
    await generate(client, "held", prompt, 2);
    const s = engine.prefixSummary();
    expect(s.salt).toMatch(/^tiny\|default\|/);
    const chain = blockHashes(prefixRoot(s.salt), prompt, s.blockSize);
    expect(new PrefixSummary(new Uint8Array(s.bloom)).matched(chain)).toBe(6);
    expect(s.blocks).toBe(6);
  });
});
