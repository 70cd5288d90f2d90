#!/usr/bin/env node
/**
 * bench/cpu-exhaustion — R23: adversarial prompts while 8 streams run and /health is probed every 50 ms.
 * One process holds a scripted worker (a token every --interval ms), a gateway preparing prompts on its
 * worker thread(s) as main.ts does, the 8 streaming clients, the probe and the attacker. Phase 1: the 8
 * streams alone (their inter-token p99 unloaded). Phase 2: the same streams while each adversarial request
 * is sent in turn. Prints each request's status and time, /health p50/p99/max, and the streams'
 * inter-token p99 loaded / unloaded (R23: every request 200 or 4xx within 5 s, /health p99 < 100 ms,
 * ratio ≤ 2). Everything shares this process's event loop, so the figures include the clients' own work.
 *
 *   node bench/cpu-exhaustion.ts [--interval 20] [--threads 1] [--baseline-seconds 4]
 */
import { parseArgs } from "node:util";
import { ThreadPromptPreparer } from "../gateway/src/adapters/prompt-threads.ts";
import { startScriptedWorker } from "../gateway/src/testing/scripted-worker.ts";
import { startTestGateway } from "../gateway/src/testing/test-gateway.ts";

const { values } = parseArgs({
  options: {
    interval: { type: "string", default: "20" },
    threads: { type: "string", default: "1" },
    "baseline-seconds": { type: "string", default: "4" },
  },
});
const MODEL = "gpt-oss-20b";
const worker = await startScriptedWorker([], { tokenIntervalMs: Number(values.interval), fallback: Array(100_000).fill(1234) });
const prompts = new ThreadPromptPreparer({ threads: Number(values.threads), maxQueued: 64, retryAfterMs: 1000 });
const gateway = await startTestGateway({ address: worker.address, model: MODEL, deps: { prompts } });
const url = (path: string) => `${gateway.base}${path}`;
const pct = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * q))] ?? Number.NaN;

/** 8 streams, each restarted when it ends, recording the gap between token chunks until `stop`. */
function streams(stop: AbortSignal): { gaps: number[]; done: Promise<unknown> } {
  const gaps: number[] = [];
  const one = async () => {
    while (!stop.aborted) {
      const body = JSON.stringify({ model: MODEL, stream: true, max_tokens: 200, messages: [{ role: "user", content: "Hi" }] });
      try {
        const r = await fetch(url("/v1/chat/completions"), {
          method: "POST",
          headers: { "content-type": "application/json" },
          body,
          signal: stop,
        });
        let last = 0;
        for await (const _ of r.body ?? []) {
          const now = performance.now();
          if (last) gaps.push(now - last);
          last = now;
        }
      } catch {
        // stopped
      }
    }
  };
  return { gaps, done: Promise.all(Array.from({ length: 8 }, one)) };
}

function probe(stop: AbortSignal): number[] {
  const times: number[] = [];
  const timer = setInterval(async () => {
    const t0 = performance.now();
    await fetch(url("/health")).then((r) => r.arrayBuffer());
    times.push(performance.now() - t0);
  }, 50);
  stop.addEventListener("abort", () => clearInterval(timer));
  return times;
}

const nested = (depth: number): object => (depth === 0 ? { type: "string" } : { type: "object", properties: { child: nested(depth - 1) } });
const tool = (name: string, description: string, parameters: object = { type: "object", properties: {} }) => ({
  type: "function",
  function: { name, description, parameters },
});
const random = Array.from({ length: 4_000_000 }, (_, i) => String.fromCodePoint(0x21 + ((i * 2654435761) % 0xd000))).join("");
const chat = (content: string, extra: object = {}) => ({ model: MODEL, max_tokens: 4, messages: [{ role: "user", content }], ...extra });
const attacks: Array<[string, object]> = [
  ["1 MB of one character", chat("a".repeat(1_000_000))],
  ["8 MB of one character", chat("a".repeat(8_000_000))],
  ["8 MB of random characters", chat(random.slice(0, 2_700_000))],
  ["tool schema nested 300 deep", chat("hi", { tools: [tool("deep", "deep", nested(300))] })],
  ["a 4.8 MB tool description", chat("hi", { tools: [tool("big", "d".repeat(4_800_000))] })],
  ["2,000 tools", chat("hi", { tools: Array.from({ length: 2000 }, (_, i) => tool(`t${i}`, `tool ${i}`)) })],
  ["a prompt of 2× a 131k context", chat(Array.from({ length: 262_144 }, (_, i) => ["alpha", "beta", "gamma"][i % 3]).join(" "))],
];

const baseline = new AbortController();
const unloaded = streams(baseline.signal);
await new Promise((r) => setTimeout(r, Number(values["baseline-seconds"]) * 1000));
baseline.abort();
await unloaded.done;

const run = new AbortController();
const loaded = streams(run.signal);
const health = probe(run.signal);
await new Promise((r) => setTimeout(r, 500));
console.log("\n| adversarial request | status | seconds |\n|---|---|---|");
for (const [name, body] of attacks) {
  const t0 = performance.now();
  const r = await fetch(url("/v1/chat/completions"), {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const text = await r.text();
  const code = r.ok ? "" : ` ${/"code":"([^"]+)"/.exec(text)?.[1] ?? ""}`;
  console.log(`| ${name} | ${r.status}${code} | ${((performance.now() - t0) / 1000).toFixed(2)} |`);
}
run.abort();
await loaded.done;

const u99 = pct(unloaded.gaps, 0.99);
const l99 = pct(loaded.gaps, 0.99);
console.log(
  `\n/health while attacked: p50 ${pct(health, 0.5).toFixed(1)} ms, p99 ${pct(health, 0.99).toFixed(1)} ms, max ${health.reduce((a, b) => Math.max(a, b), 0).toFixed(1)} ms (${health.length} probes)`,
);
console.log(
  `streams' inter-token p99: unloaded ${u99.toFixed(1)} ms, loaded ${l99.toFixed(1)} ms, ratio ${(l99 / u99).toFixed(2)} (R23: ≤ 2)`,
);
await gateway.close();
await prompts.close();
worker.kill();
