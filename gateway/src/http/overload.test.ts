/**
 * Overload behaviour (reliability R1, R2) with a scripted worker streaming at a fixed rate behind a real
 * gateway: admission control answers 200 or 429/503 with retry-after and never queues beyond its cap;
 * the official openai SDK's retries stay within 3× and stop entirely when the gateway says
 * x-should-retry: false.
 */
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { HarmonyTokenizer } from "@expertmesh/grammar/tokenizer";
import OpenAI from "openai";
import { afterEach, describe, expect, it } from "vitest";
import { Admission } from "../domain/admission.ts";
import { startScriptedWorker } from "../testing/scripted-worker.ts";
import { startTestGateway } from "../testing/test-gateway.ts";

const tok = new HarmonyTokenizer();
setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;
const percentile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * q)] ?? 0;
let cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

async function gateway(o: { capacity: number; queue: number; intervalMs: number; tokens: number; clientRetries: boolean }) {
  const answer = tok.encodeWithSpecials(`<|channel|>final<|message|>${"word ".repeat(o.tokens)}<|return|>`);
  const worker = await startScriptedWorker([], { tokenIntervalMs: o.intervalMs, fallback: answer });
  const admission = new Admission({ maxConcurrent: o.capacity, maxQueued: o.queue, queueTimeoutMs: 30_000, retryAfterMs: 20 });
  let received = 0;
  const rejectMs: number[] = [];
  const gw = await startTestGateway({
    address: worker.address,
    model: "gpt-oss-20b",
    tokenizer: tok,
    config: { admission: { client_retries: o.clientRetries } },
    deps: { admission },
    beforeListen: (app) => {
      app.addHook("onRequest", async () => {
        received++;
      });
      app.addHook("onResponse", async (_request, reply) => {
        if (reply.statusCode === 429 || reply.statusCode === 503) rejectMs.push(reply.elapsedTime);
      });
    },
  });
  cleanup.push(
    () => worker.close(),
    () => gw.close(),
  );
  return { base: gw.base, admission, received: () => received, rejectMs };
}

describe("overload", () => {
  it("R1: 100 concurrent streams for 10 s against capacity 4 / queue 8: only 200 or 429/503 with retry-after", async () => {
    const C = 4;
    const Q = 8;
    const { base, admission, rejectMs } = await gateway({ capacity: C, queue: Q, intervalMs: 5, tokens: 40, clientRetries: true });
    const statuses = new Map<number, number>();
    const clientRejectMs: number[] = [];
    let missingRetryAfter = 0;
    let badBodies = 0;
    let peakRunning = 0;
    const sampler = setInterval(() => {
      peakRunning = Math.max(peakRunning, admission.running);
    }, 1);
    gc();
    const heapBefore = process.memoryUsage().heapUsed;
    const end = Date.now() + 10_000;
    const user = async () => {
      while (Date.now() < end) {
        const t0 = performance.now();
        const res = await fetch(`${base}/v1/chat/completions`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ model: "gpt-oss-20b", messages: [{ role: "user", content: "hi" }], stream: true }),
        });
        const text = await res.text();
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        if (res.status === 200) {
          if (!text.endsWith("data: [DONE]\n\n")) badBodies++;
          continue;
        }
        clientRejectMs.push(performance.now() - t0);
        if (!res.headers.get("retry-after")) missingRetryAfter++;
        const body = JSON.parse(text) as { error?: { message?: string; type?: string; code?: string } };
        if (!body.error?.message || !body.error.type || !body.error.code) badBodies++;
        await new Promise((r) => setTimeout(r, Number(res.headers.get("retry-after-ms") ?? 20)));
      }
    };
    await Promise.all(Array.from({ length: 100 }, user));
    clearInterval(sampler);
    await new Promise((r) => setTimeout(r, 200));
    gc();
    const heapGrowthMb = (process.memoryUsage().heapUsed - heapBefore) / 2 ** 20;
    const p99 = percentile(rejectMs, 0.99);
    console.log(
      `R1: statuses ${JSON.stringify(Object.fromEntries(statuses))}, reject p99 ${p99.toFixed(2)} ms in the gateway ` +
        `(${percentile(clientRejectMs, 0.99).toFixed(2)} ms seen by the 100 clients sharing its event loop), ` +
        `peak queued ${admission.peakQueued}, peak running ${peakRunning}, heap growth ${heapGrowthMb.toFixed(1)} MiB`,
    );
    expect([...statuses.keys()].every((s) => s === 200 || s === 429 || s === 503)).toBe(true);
    expect(statuses.get(200) ?? 0).toBeGreaterThan(0);
    expect(statuses.get(429) ?? 0).toBeGreaterThan(0);
    expect(missingRetryAfter).toBe(0);
    expect(badBodies).toBe(0);
    expect(admission.peakQueued).toBeLessThanOrEqual(Q);
    expect(peakRunning).toBeLessThanOrEqual(C);
    expect(p99).toBeLessThan(10);
    expect(heapGrowthMb).toBeLessThan(64);
  }, 30_000);

  for (const clientRetries of [true, false]) {
    it(`R2: openai SDK (maxRetries 2) against a saturated gateway, x-should-retry ${clientRetries}`, async () => {
      const { base, received } = await gateway({ capacity: 1, queue: 0, intervalMs: 20, tokens: 200, clientRetries });
      // One long stream holds the only slot.
      const hog = new AbortController();
      const held = await fetch(`${base}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "gpt-oss-20b", messages: [{ role: "user", content: "hi" }], stream: true }),
        signal: hog.signal,
      });
      expect(held.status).toBe(200);
      const before = received();
      const client = new OpenAI({ apiKey: "unused", baseURL: `${base}/v1`, maxRetries: 2 });
      const calls = 10;
      const results = await Promise.all(
        Array.from({ length: calls }, () =>
          client.chat.completions.create({ model: "gpt-oss-20b", messages: [{ role: "user", content: "x" }] }).catch((e) => e),
        ),
      );
      hog.abort();
      for (const r of results) expect(r).toBeInstanceOf(OpenAI.RateLimitError);
      const inflation = (received() - before) / calls;
      if (clientRetries) expect(inflation).toBeLessThanOrEqual(3);
      else expect(inflation).toBe(1);
    });
  }
});
