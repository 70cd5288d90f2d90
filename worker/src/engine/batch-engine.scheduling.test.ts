/**
 * Scheduler behaviour of real worker processes (real gRPC, tiny synthetic model): batching equals running
 * alone, cancellation frees every block, preemption by recompute keeps outputs exact, bounded queue,
 * deadlines, drain, priority classes.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SHAPES } from "@expertmesh/kernels";
import { writeSyntheticCheckpoint } from "@expertmesh/kernels/checkpoint";
import { ErrorKind, FinishReason, type GenerateResponse, Priority, type WorkerClient } from "@expertmesh/proto/worker";
import { Metadata, type ServiceError, status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnWorker, type WorkerProcess } from "../testing/worker-process.ts";
import { errorDetailOf } from "../transport/grpc-errors.ts";

const dir = join(mkdtempSync(join(tmpdir(), "sched-model-")), "tiny");
const STOP = 4095;

beforeAll(() => {
  writeSyntheticCheckpoint({ shape: { ...SHAPES.tiny, vocab: 4096 }, out: dir, seed: 21 });
});

async function worker(env: Record<string, string>): Promise<WorkerProcess> {
  return spawnWorker({ WORKER_MODEL_PATH: dir, WORKER_MODEL_NAME: "tiny", ...env });
}

const inUse = async (w: WorkerProcess) => (await w.info()).capacity?.kvBlocksInUse;
const load = async (w: WorkerProcess) => (await w.info()).load;

type Outcome = { tokens: number[]; finished?: GenerateResponse["finished"]; error?: ServiceError };

function generate(client: WorkerClient, id: string, prompt: number[], maxTokens: number, extra: object = {}, deadlineMs?: number) {
  const stream = client.generate(
    {
      requestId: id,
      promptTokenIds: prompt,
      stopTokenIds: [STOP],
      maxTokens,
      priority: Priority.PRIORITY_ONLINE,
      deadlineUnixMs: 0,
      clampMaxTokens: false,
      maxReasoningTokens: 0,
      ...extra,
    },
    new Metadata(),
    deadlineMs ? { deadline: Date.now() + deadlineMs } : {},
  );
  const done = new Promise<Outcome>((resolve) => {
    const tokens: number[] = [];
    let finished: GenerateResponse["finished"];
    stream.on("data", (e: GenerateResponse) => {
      for (const t of e.tokens?.tokens ?? []) tokens.push(t.tokenId);
      if (e.finished) finished = e.finished;
    });
    stream.on("end", () => resolve({ tokens, finished }));
    stream.on("error", (error: ServiceError) => resolve({ tokens, finished, error }));
  });
  return { stream, done };
}

const prompt = (i: number, n = 6) => Array.from({ length: n }, (_, j) => (7 * i + 13 * j + 1) % 4000);

describe("scheduler", () => {
  let a: WorkerProcess;
  beforeAll(async () => {
    a = await worker({ WORKER_KV_NUM_BLOCKS: "256", WORKER_MAX_NUM_SEQS: "64" });
  });
  afterAll(async () => {
    await a.stop();
  });

  it("32 concurrent greedy requests return exactly the tokens each returns alone", async () => {
    const alone: number[][] = [];
    for (let i = 0; i < 32; i++) alone.push((await generate(a.client, `alone-${i}`, prompt(i), 16).done).tokens);
    const together = await Promise.all(Array.from({ length: 32 }, (_, i) => generate(a.client, `c-${i}`, prompt(i), 16).done));
    expect(together.map((o) => o.tokens)).toEqual(alone);
    expect(together.every((o) => o.error === undefined)).toBe(true);
  });

  it("online prompts arriving while batch work decodes (batch rows sit out those steps): every output equals running alone", async () => {
    const alone: number[][] = [];
    for (let i = 0; i < 8; i++) alone.push((await generate(a.client, `solo-${i}`, prompt(100 + i, 40), 24).done).tokens);
    const batchRuns = [0, 1, 2, 3].map(
      (i) => generate(a.client, `b-${i}`, prompt(100 + i, 40), 24, { priority: Priority.PRIORITY_BATCH }).done,
    );
    await new Promise((r) => setTimeout(r, 30)); // the batch sequences are decoding when the online prompts arrive
    const onlineRuns = [4, 5, 6, 7].map((i) => generate(a.client, `o-${i}`, prompt(100 + i, 40), 24).done);
    const all = await Promise.all([...batchRuns, ...onlineRuns]);
    expect(all.map((o) => o.tokens)).toEqual(alone);
  });

  it("R4: 200 streams, 30 % cancelled at random times → no KV block left in use, and it keeps serving", async () => {
    let seed = 7;
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const runs = Array.from({ length: 200 }, (_, i) => {
      const g = generate(a.client, `r4-${i}`, prompt(i, 4 + (i % 7)), 24);
      if (rnd() < 0.3) setTimeout(() => g.stream.cancel(), Math.floor(rnd() * 40));
      return g.done;
    });
    const outcomes = await Promise.all(runs);
    const cancelled = outcomes.filter((o) => o.error?.code === status.CANCELLED).length;
    expect(cancelled).toBeGreaterThan(20);
    expect(outcomes.filter((o) => o.error && o.error.code !== status.CANCELLED)).toEqual([]);
    await expect.poll(() => inUse(a), { timeout: 2000 }).toBe(0);
    const after = await generate(a.client, "after-r4", prompt(1), 8).done;
    expect(after.error).toBeUndefined();
    expect(after.tokens.length).toBeGreaterThan(0);
  });

  it("KV capacity in gauges and Info: tokens = blocks × block size, bytes per token of bf16 K/V (the default precision's)", async () => {
    const text = await (await fetch(a.metricsUrl)).text();
    const gauge = (name: string) => Number(new RegExp(`^${name}\\{[^}]*\\} (\\S+)$`, "m").exec(text)?.[1] ?? Number.NaN);
    const t = SHAPES.tiny;
    const capacity = (await a.info()).capacity;
    expect(gauge("expertmesh_kv_cache_tokens")).toBe(256 * (capacity?.kvBlockSize ?? 0));
    expect(gauge("expertmesh_kv_cache_bytes_per_token")).toBe(t.numLayers * 2 * t.numKvHeads * t.headDim * 2);
    expect(capacity?.kvDtype).toBe("bf16");
    expect(capacity?.kvBytesPerToken).toBe(gauge("expertmesh_kv_cache_bytes_per_token"));
  });

  it("a cancel with nothing else to run: the running and KV gauges show the freed slot at once (autoscaling reads them)", {
    timeout: 20_000,
  }, async () => {
    const gauge = async (name: string) => {
      const text = await (await fetch(a.metricsUrl)).text();
      return Number(new RegExp(`^${name}\\{[^}]*\\} (\\S+)$`, "m").exec(text)?.[1] ?? Number.NaN);
    };
    const g = generate(a.client, "gauge-cancel", prompt(3), 1_000_000, { clampMaxTokens: true });
    await new Promise<void>((resolve) => g.stream.once("data", () => resolve()));
    expect(await gauge("vllm:num_requests_running")).toBe(1);
    expect(await gauge("vllm:kv_cache_usage_perc")).toBeGreaterThan(0);
    g.stream.cancel();
    expect((await g.done).error?.code).toBe(status.CANCELLED);
    await expect.poll(() => inUse(a), { timeout: 2000 }).toBe(0);
    expect(await gauge("vllm:num_requests_running")).toBe(0);
    expect(await gauge("vllm:kv_cache_usage_perc")).toBe(0);
  });

  it("deadline passed → DEADLINE_EXCEEDED, from the request's deadline or the gRPC one", async () => {
    const own = await generate(a.client, "dl-own", prompt(3), 2000, { deadlineUnixMs: Date.now() + 30, stopTokenIds: [] }).done;
    expect(own.error?.code).toBe(status.DEADLINE_EXCEEDED);
    const grpc = await generate(a.client, "dl-grpc", prompt(4), 2000, { stopTokenIds: [] }, 40).done;
    expect(grpc.error?.code).toBe(status.DEADLINE_EXCEEDED);
    await expect.poll(() => inUse(a), { timeout: 2000 }).toBe(0);
  });
});

describe("preemption and back-pressure", () => {
  it("more concurrent long requests than KV blocks: preempted, counted, and every output equals running alone", async () => {
    // 12 blocks × 16 = 192 positions; 6 requests × 70 positions need 30 blocks.
    const b = await worker({ WORKER_KV_NUM_BLOCKS: "12", WORKER_MAX_NUM_SEQS: "8", WORKER_MAX_TOKENS_PER_STEP: "64" });
    try {
      const alone: Outcome[] = [];
      for (let i = 0; i < 6; i++) alone.push(await generate(b.client, `pa-${i}`, prompt(i, 10), 60).done);
      const together = await Promise.all(Array.from({ length: 6 }, (_, i) => generate(b.client, `pt-${i}`, prompt(i, 10), 60).done));
      expect(together.map((o) => o.error)).toEqual(alone.map(() => undefined));
      expect(together.map((o) => o.tokens)).toEqual(alone.map((o) => o.tokens));
      expect(await b.metric("vllm:num_preemptions_total")).toBeGreaterThan(0);
      expect(await b.metric("vllm:generation_tokens_total")).toBe(2 * 6 * 60);
      expect(await inUse(b)).toBe(0);
    } finally {
      await b.stop();
    }
  });

  it("queue full → RESOURCE_EXHAUSTED promptly with a retry hint", async () => {
    // Long prompts read 8 tokens per step: the running request streams nothing for a while, so this
    // in-process client is not busy with token messages while it measures the rejection.
    const c = await worker({ WORKER_MAX_NUM_SEQS: "1", WORKER_MAX_WAITING: "2", WORKER_MAX_TOKENS_PER_STEP: "8" });
    try {
      // Long requests with no reachable stop token keep one running and two waiting.
      const long = (i: number) => generate(c.client, `q-${i}`, prompt(i, 6000), 100, { stopTokenIds: [] });
      const running = [long(0)];
      await expect.poll(async () => (await load(c))?.running, { timeout: 2000 }).toBe(1);
      running.push(long(1), long(2));
      await expect.poll(() => load(c), { timeout: 2000 }).toMatchObject({ running: 1, waiting: 2 });
      let finished = 0;
      for (const r of running) void r.done.then(() => finished++);
      const rejected = await generate(c.client, "q-over", prompt(9), 4).done;
      expect(rejected.error?.code).toBe(status.RESOURCE_EXHAUSTED);
      // Promptly: refused before any of the long requests ended, so it did not wait for a place in the
      // queue (a bound in milliseconds would measure the machine's load instead).
      expect(finished).toBe(0);
      expect(errorDetailOf(rejected.error as ServiceError)).toMatchObject({ kind: ErrorKind.ERROR_KIND_QUEUE_FULL, retryAfterMs: 1000 });
      for (const r of running) r.stream.cancel();
      await Promise.all(running.map((r) => r.done));
    } finally {
      await c.stop();
    }
  });

  it("drain: in-flight streams complete, new requests are refused, then the worker exits 0", async () => {
    const d = await worker({});
    const inflight = [0, 1, 2, 3].map((i) => generate(d.client, `dr-${i}`, prompt(i), 40).done);
    await new Promise((r) => setTimeout(r, 30));
    const stopping = d.stop();
    await new Promise((r) => setTimeout(r, 30));
    const refused = await generate(d.client, "dr-new", prompt(7), 4).done;
    expect([status.UNAVAILABLE, status.CANCELLED]).toContain(refused.error?.code);
    const outcomes = await Promise.all(inflight);
    for (const o of outcomes) {
      expect(o.error).toBeUndefined();
      expect([FinishReason.FINISH_REASON_STOP, FinishReason.FINISH_REASON_LENGTH]).toContain(o.finished?.reason);
    }
    expect(await stopping).toBe(0);
  });
});

describe("priority classes", () => {
  // One sequence at a time; a long request holds the slot while others queue. The order in which the
  // queued ones finish is the order they were admitted.
  async function order(starvationMs: string, pauseMs: number): Promise<string[]> {
    const e = await worker({ WORKER_MAX_NUM_SEQS: "1", WORKER_STARVATION_MS: starvationMs, WORKER_MAX_TOKENS_PER_STEP: "8" });
    try {
      const finished: string[] = [];
      const run = (id: string, priority: number, promptLen: number, maxTokens: number) =>
        generate(e.client, id, prompt(id.length, promptLen), maxTokens, { priority, stopTokenIds: [] }).done.then(() => finished.push(id));
      const hold = run("hold", Priority.PRIORITY_ONLINE, 4000, 4);
      await expect.poll(async () => (await load(e))?.running, { timeout: 2000 }).toBe(1);
      const batch = run("batch-1", Priority.PRIORITY_BATCH, 4, 4);
      await new Promise((r) => setTimeout(r, pauseMs));
      // The slot is still taken: both wait for it.
      expect(await load(e)).toMatchObject({ running: 1, waiting: 1 });
      const online = run("online-1", Priority.PRIORITY_ONLINE, 4, 4);
      await Promise.all([hold, batch, online]);
      return finished.filter((id) => id !== "hold");
    } finally {
      await e.stop();
    }
  }

  // Each run prefills a 4000-token prompt 8 tokens a step in a worker process: ~3 s alone on a 2-core
  // box, more when the machine is busy, hence the test timeout above the default 5 s.
  it("admits an online request before an earlier batch one", { timeout: 30_000 }, async () => {
    expect(await order("60000", 30)).toEqual(["online-1", "batch-1"]);
  });

  it("does not starve batch work: after starvation_ms it goes first by age", { timeout: 30_000 }, async () => {
    expect(await order("100", 200)).toEqual(["batch-1", "online-1"]);
  });
});
