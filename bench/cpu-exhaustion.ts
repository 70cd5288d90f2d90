#!/usr/bin/env node
/**
 * bench/cpu-exhaustion — R23: adversarial prompts while 8 streams run and /health is probed every 50 ms.
 * Four processes, as in production: a scripted worker (a token every --interval ms), the gateway (large
 * bodies parsed and prompts prepared on threads at GATEWAY_RENDER_NICE, as main.ts does), the attacker
 * (its bodies serialized before it is cued) and this one, which holds the 8 streaming clients and the probe.
 * Phase 1: the 8 streams alone (their inter-token p99 unloaded). Phase 2: the same streams while each
 * adversarial request is sent in turn. Prints each request's status and time, /health p50/p99/max, and
 * the streams' inter-token p99 loaded / unloaded (R23: every request 200 or 4xx within 5 s, /health p99
 * < 100 ms, ratio ≤ 2).
 *
 *   node bench/cpu-exhaustion.ts [--interval 20] [--threads 1] [--nice 10] [--baseline-seconds 4] [--verbose]
 */
import { type ChildProcess, fork } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { ThreadJsonParser } from "../gateway/src/adapters/json-threads.ts";
import { ThreadPromptPreparer } from "../gateway/src/adapters/prompt-threads.ts";
import { startScriptedWorker } from "../gateway/src/testing/scripted-worker.ts";
import { startTestGateway } from "../gateway/src/testing/test-gateway.ts";

const { values } = parseArgs({
  options: {
    role: { type: "string", default: "bench" },
    worker: { type: "string", default: "" },
    gateway: { type: "string", default: "" },
    interval: { type: "string", default: "20" },
    threads: { type: "string", default: "1" },
    nice: { type: "string", default: "10" },
    "baseline-seconds": { type: "string", default: "4" },
    verbose: { type: "boolean", default: false },
  },
});
const MODEL = "gpt-oss-20b";

/** A child process of this script in another role; resolves with the address it reports. */
async function child(role: string, ...args: string[]): Promise<{ proc: ChildProcess; address: string }> {
  const proc = fork(fileURLToPath(import.meta.url), ["--role", role, ...args], {
    stdio: ["ignore", "inherit", "inherit", "ipc"],
    execArgv: role === "gateway" && process.env.PROF ? ["--cpu-prof", "--cpu-prof-dir=/tmp/prof"] : [],
  });
  const [address] = (await once(proc, "message")) as [string];
  return { proc, address };
}

async function serveWorker(): Promise<void> {
  const worker = await startScriptedWorker([], { tokenIntervalMs: Number(values.interval), fallback: Array(100_000).fill(1234) });
  process.send?.(worker.address);
}

async function serveGateway(): Promise<void> {
  const bodyParser = new ThreadJsonParser({ nice: Number(values.nice) });
  const prompts = new ThreadPromptPreparer({
    threads: Number(values.threads),
    maxQueued: 64,
    retryAfterMs: 1000,
    nice: Number(values.nice),
  });
  const gateway = await startTestGateway({ address: values.worker ?? "", model: MODEL, deps: { prompts, bodyParser } });
  process.send?.(gateway.base);
  process.on("SIGINT", () => process.exit(0));
}

const pct = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * q))] ?? Number.NaN;

/** 8 streams, each restarted when it ends, recording the gap between token chunks until `stop`. */
function streams(base: string, stop: AbortSignal): { gaps: number[]; at: number[]; done: Promise<unknown> } {
  const gaps: number[] = [];
  const at: number[] = [];
  const body = JSON.stringify({ model: MODEL, stream: true, max_tokens: 200, messages: [{ role: "user", content: "Hi" }] });
  const one = async () => {
    while (!stop.aborted) {
      try {
        const r = await fetch(`${base}/v1/chat/completions`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body,
          signal: stop,
        });
        let last = 0;
        for await (const _ of r.body ?? []) {
          const now = performance.now();
          if (last) {
            gaps.push(now - last);
            at.push(now);
          }
          last = now;
        }
      } catch {
        // stopped
      }
    }
  };
  return { gaps, at, done: Promise.all(Array.from({ length: 8 }, one)) };
}

function probe(base: string, stop: AbortSignal): number[] {
  const times: number[] = [];
  const timer = setInterval(async () => {
    const t0 = performance.now();
    await fetch(`${base}/health`).then((r) => r.arrayBuffer());
    times.push(performance.now() - t0);
  }, 50);
  stop.addEventListener("abort", () => clearInterval(timer));
  return times;
}

/** The R23 inputs, serialized and encoded. */
function attacks(): Array<[string, Buffer]> {
  const nested = (depth: number): object =>
    depth === 0 ? { type: "string" } : { type: "object", properties: { child: nested(depth - 1) } };
  const tool = (name: string, description: string, parameters: object = { type: "object", properties: {} }) => ({
    type: "function",
    function: { name, description, parameters },
  });
  const random = Array.from({ length: 2_700_000 }, (_, i) => String.fromCodePoint(0x21 + ((i * 2654435761) % 0xd000))).join("");
  const chat = (content: string, extra: object = {}) =>
    Buffer.from(JSON.stringify({ model: MODEL, max_tokens: 4, messages: [{ role: "user", content }], ...extra }));
  return [
    ["1 MB of one character", chat("a".repeat(1_000_000))],
    ["8 MB of one character", chat("a".repeat(8_000_000))],
    ["8 MB of random characters", chat(random)],
    ["tool schema nested 300 deep", chat("hi", { tools: [tool("deep", "deep", nested(300))] })],
    ["a 4.8 MB tool description", chat("hi", { tools: [tool("big", "d".repeat(4_800_000))] })],
    ["2,000 tools", chat("hi", { tools: Array.from({ length: 2000 }, (_, i) => tool(`t${i}`, `tool ${i}`)) })],
    ["a prompt of 2× a 131k context", chat(Array.from({ length: 262_144 }, (_, i) => ["alpha", "beta", "gamma"][i % 3]).join(" "))],
  ];
}

const spans: Array<[string, number, number]> = [];

/** The attacker's process: builds the inputs, then on cue sends each in turn and reports it. */
async function serveAttacker(): Promise<void> {
  const inputs = attacks();
  process.send?.("ready");
  await once(process, "message");
  for (const [name, body] of inputs) {
    const t0 = performance.now();
    const r = await fetch(`${values.gateway}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
    });
    const text = await r.text();
    const code = r.ok ? "" : ` ${/"code":"([^"]+)"/.exec(text)?.[1] ?? ""}`;
    process.send?.({ name, status: `${r.status}${code}`, ms: performance.now() - t0 });
  }
  process.send?.("done");
}

/** Cues the attacker and prints each of its requests as it is answered. */
async function attack(attacker: ChildProcess): Promise<void> {
  let t0 = performance.now();
  attacker.send("go");
  for (;;) {
    const [m] = (await once(attacker, "message")) as [string | { name: string; status: string; ms: number }];
    if (typeof m === "string") return;
    spans.push([m.name, t0, performance.now()]);
    t0 = performance.now();
    console.log(`| ${m.name} | ${m.status} | ${(m.ms / 1000).toFixed(2)} |`);
  }
}

/** --verbose: the loaded phase's 24 longest gaps, each with the adversarial request in flight when it ended. */
function worstGaps(loaded: { gaps: number[]; at: number[] }): void {
  const order = loaded.gaps.map((_, i) => i).sort((a, b) => (loaded.gaps[b] ?? 0) - (loaded.gaps[a] ?? 0));
  for (const i of order.slice(0, 24)) {
    const at = loaded.at[i] ?? 0;
    const during = spans.find(([, from, to]) => at >= from && at <= to)?.[0] ?? "(between requests)";
    console.log(`gap ${(loaded.gaps[i] ?? 0).toFixed(1)} ms ending at ${(at - (spans[0]?.[1] ?? 0)).toFixed(0)} ms: ${during}`);
  }
}

async function bench(): Promise<void> {
  const worker = await child("worker", "--interval", values.interval ?? "20");
  const gateway = await child("gateway", "--worker", worker.address, "--threads", values.threads ?? "1", "--nice", values.nice ?? "10");
  const base = gateway.address;
  const attacker = await child("attacker", "--gateway", base);

  const baseline = new AbortController();
  const unloaded = streams(base, baseline.signal);
  await new Promise((r) => setTimeout(r, Number(values["baseline-seconds"]) * 1000));
  baseline.abort();
  await unloaded.done;

  const run = new AbortController();
  const loaded = streams(base, run.signal);
  const health = probe(base, run.signal);
  await new Promise((r) => setTimeout(r, 500));
  console.log("\n| adversarial request | status | seconds |\n|---|---|---|");
  await attack(attacker.proc);
  run.abort();
  await loaded.done;

  const u99 = pct(unloaded.gaps, 0.99);
  const l99 = pct(loaded.gaps, 0.99);
  const max = health.reduce((a, b) => Math.max(a, b), 0);
  console.log(
    `\n/health while attacked: p50 ${pct(health, 0.5).toFixed(1)} ms, p99 ${pct(health, 0.99).toFixed(1)} ms, max ${max.toFixed(1)} ms (${health.length} probes)`,
  );
  console.log(
    `streams' inter-token p99: unloaded ${u99.toFixed(1)} ms, loaded ${l99.toFixed(1)} ms, ratio ${(l99 / u99).toFixed(2)} (R23: ≤ 2)`,
  );
  if (values.verbose) worstGaps(loaded);
  gateway.proc.kill("SIGINT");
  attacker.proc.kill();
  worker.proc.kill();
}

if (values.role === "worker") await serveWorker();
else if (values.role === "gateway") await serveGateway();
else if (values.role === "attacker") await serveAttacker();
else await bench();
