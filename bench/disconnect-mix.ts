#!/usr/bin/env node
/**
 * bench/disconnect-mix — streams that should complete, among streams whose clients leave at random
 * times: do they hang or are they slow? A real worker process (tiny synthetic gpt-oss with the real
 * vocabulary, as UP serves it) behind a gateway; N streaming chat completions, a fraction aborted by the
 * client within the first seconds, the rest read to [DONE] or until the give-up time. The worker's
 * gauges are sampled while it runs: a hung stream holds a running slot while generation_tokens_total
 * stands still; a slow one keeps both moving. Prints one row per outcome and the worker's progress.
 *
 *   node bench/disconnect-mix.ts [--streams 60] [--disconnect 0.5] [--abort-within 10] [--max-tokens N]
 *                                [--give-up 600]
 * Without --max-tokens a request generates up to the gateway's default (GATEWAY_DEFAULT_MAX_TOKENS).
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { startTestGateway } from "@expertmesh/gateway/testing";
import { SHAPES } from "@expertmesh/kernels";
import { writeSyntheticCheckpoint } from "@expertmesh/kernels/checkpoint";
import { spawnWorker } from "@expertmesh/worker/testing";

const { values } = parseArgs({
  options: {
    streams: { type: "string", default: "60" },
    disconnect: { type: "string", default: "0.5" },
    "abort-within": { type: "string", default: "10" },
    "max-tokens": { type: "string" },
    "give-up": { type: "string", default: "600" },
  },
});
const MODEL = "gpt-oss-synthetic";

interface Stream {
  abortAt: number | null;
  chunks: number;
  maxGap: number;
  last: number | null;
  done: boolean;
  end: number;
}

const dir = join(mkdtempSync(join(tmpdir(), "bench-mix-")), "tiny");
writeSyntheticCheckpoint({ shape: SHAPES.tiny, out: dir, seed: 1 });
const worker = await spawnWorker({ WORKER_MODEL_PATH: dir, WORKER_MODEL_NAME: MODEL });
const gateway = await startTestGateway({ address: worker.address, model: MODEL });
const t0 = performance.now();
const now = () => (performance.now() - t0) / 1000;

async function gauges(): Promise<{ running: number; generated: number }> {
  return { running: await worker.metric("vllm:num_requests_running"), generated: await worker.metric("vllm:generation_tokens_total") };
}

async function stream(i: number, abortAt: number | null): Promise<Stream> {
  const s: Stream = { abortAt, chunks: 0, maxGap: 0, last: null, done: false, end: 0 };
  const signal = AbortSignal.any([
    AbortSignal.timeout(Number(values["give-up"]) * 1000),
    ...(abortAt === null ? [] : [AbortSignal.timeout(Math.round(abortAt * 1000))]),
  ]);
  const body: Record<string, unknown> = { model: MODEL, stream: true, messages: [{ role: "user", content: `Story ${i}, please.` }] };
  if (values["max-tokens"]) body.max_tokens = Number(values["max-tokens"]);
  try {
    const r = await fetch(`${gateway.base}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
      signal,
    });
    const decoder = new TextDecoder();
    for await (const bytes of r.body ?? []) {
      const text = decoder.decode(bytes, { stream: true });
      if (text.includes("data: [DONE]")) s.done = true;
      const t = now();
      if (s.last !== null) s.maxGap = Math.max(s.maxGap, t - s.last);
      s.last = t;
      s.chunks++;
    }
  } catch {
    // aborted by the client (its plan, or the give-up time)
  }
  s.end = now();
  return s;
}

// The worker is a child process: stop it whatever happens below.
process.on("exit", () => void worker.stop());
const samples: Array<{ t: number; running: number; generated: number }> = [];
const sampler = setInterval(() => void gauges().then((g) => samples.push({ t: now(), ...g })), 2000);
const plans = Array.from({ length: Number(values.streams) }, () =>
  Math.random() < Number(values.disconnect) ? Math.random() * Number(values["abort-within"]) : null,
);
const results = await Promise.all(plans.map((abortAt, i) => stream(i, abortAt)));
const endOfRun = now();
await new Promise((r) => setTimeout(r, 2000));
const after = await gauges();
clearInterval(sampler);

const kept = results.filter((s) => s.abortAt === null);
const pct = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * q))] ?? Number.NaN;
const row = (name: string, xs: Stream[]) =>
  console.log(
    `| ${name} | ${xs.length} | ${pct(
      xs.map((s) => s.end),
      0.5,
    ).toFixed(1)} | ${pct(
      xs.map((s) => s.maxGap),
      0.5,
    ).toFixed(2)} / ${pct(
      xs.map((s) => s.maxGap),
      1,
    ).toFixed(2)} |`,
  );
console.log(
  `\n${results.length} streams, ${kept.length} kept, give-up ${values["give-up"]} s, max_tokens ${values["max-tokens"] ?? "default"}`,
);
console.log("| outcome | streams | end p50 (s) | largest gap between reads p50 / max (s) |\n|---|---|---|---|");
row(
  "kept, [DONE] read",
  kept.filter((s) => s.done),
);
row(
  "kept, no [DONE] at give-up",
  kept.filter((s) => !s.done),
);
row(
  "client disconnected",
  results.filter((s) => s.abortAt !== null),
);
const during = samples.filter((s) => s.t <= endOfRun);
const first = during[0];
const last = during.at(-1);
const rate = first && last && last.t > first.t ? (last.generated - first.generated) / (last.t - first.t) : Number.NaN;
console.log(
  `\nworker while the streams ran: ${rate.toFixed(1)} tokens/s generated, running p50 ${pct(
    during.map((s) => s.running),
    0.5,
  )}`,
);
const stalls = during.filter((s, i) => i > 0 && s.running > 0 && s.generated === (during[i - 1] as typeof s).generated).length;
console.log(`samples with running > 0 and no token generated since the previous one (a hang): ${stalls} of ${during.length}`);
console.log(`2 s after the run: running ${after.running} (0: every slot freed)`);

await gateway.close();
await worker.stop();
