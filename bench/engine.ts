#!/usr/bin/env node
/**
 * bench/engine — engine speed on a synthetic checkpoint of the full gpt-oss-20b shape (built once
 * and cached in .cache/bench/), next to the rooflines it is compared with: on the CPU this machine's
 * measured read bandwidth and fp32 FMA rate; on a GPU (--device cuda:N) the device's nominal HBM
 * bandwidth and bf16 peak from bench/gpu-model.ts (--roofline h100|h200; no device probe exists yet).
 * Prints a table: decode tok/s at each batch (default 1/4/16/64), prefill tok/s for each prompt length
 * (default 64 and 1024), weight bytes read per decoded token, and the rooflines.
 *
 *   node bench/engine.ts [--shape 20b|120b|tiny] [--steps N] [--dir DIR] [--precision default|exact] [--kv f32|bf16|fp8]
 *                        [--dense bf16|q8|q8-attention] [--mapped] [--json]
 *                        [--device cpu|cuda-emu|cuda:N] [--batches 1,4,16,64] [--prefill 64,1024]
 *                        [--roofline h100|h200] [--probe-gib G] [--probe-passes N] [--prepare]
 *   --kv: the KV cache's element type (default: the engine's, f32 in exact precision, bf16 in default).
 *   --dense: how the engine reads the dense weights (default bf16; q8: the unembedding as 8-bit codes
 *            converted at load; q8-attention: the attention projections too).
 *   --mapped: the CPU engine reads its weights from the checkpoint's mapping (the page cache) instead of
 *     copying them into huge-page memory at creation (Engine residentWeights, the worker's default).
 *   --prepare: write the checkpoint (when missing) and exit; scripts/gpu-check.sh runs it during the build.
 *   --probe-gib: the CPU read-bandwidth probe's buffer (default 2); --probe-passes: its timed passes (default 9).
 *
 * The CPU bandwidth roofline. The probe (kernels/runtime/probes.cpp) has every OpenMP thread (the
 * engine's threads) sum its own chunk of a 2 GiB buffer, four times the 508 MiB last-level cache this
 * host's CPUID reports, so it measures memory, not cache; page faults and one warm-up pass are not
 * timed. It runs three times (at the start, and right before and right after the batch-1 decode),
 * --probe-passes timed passes each. A pass ends when its slowest thread does, so when another process
 * takes a core from one thread the pass is slower by whole 4 ms scheduler ticks (on a busy 2-core host,
 * 50 MiB passes came out at 13.1, 6.7, 4.5, 3.4 and 2.2 GB/s, i.e. 4, 8, 12, 16 and 24 ms); the probe
 * reports, per pass, the least share of it that any thread spent on a CPU. The roofline is the median of
 * the undisturbed passes (every thread on a CPU ≥ 90 % of the pass), printed with their min–max; with
 * fewer than 3 undisturbed passes it is the median of all passes, marked "host busy". The old rule, the
 * highest of best-of-5 figures, followed whichever pass happened to run alone (33 GB/s in one run,
 * 56–70 GB/s in others on this host). The row "CPU cores this process used during batch-1 decode" says
 * whether the decode itself shared the host.
 */
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { availableParallelism, cpus } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import {
  type Backend,
  BlockPool,
  capabilities,
  DENSE_WEIGHTS,
  type DenseWeights,
  Engine,
  isBackend,
  KV_DTYPES,
  type KvDtype,
  LocalSequence,
  Model,
  PRECISIONS,
  type Precision,
  probes,
  SHAPES,
  type ShapeName,
} from "@expertmesh/kernels";
import { writeSyntheticCheckpoint } from "@expertmesh/kernels/checkpoint";
import { DEVICES } from "./gpu-model.ts";
import { median } from "./stats.ts";

const { values } = parseArgs({
  options: {
    shape: { type: "string", default: "20b" },
    steps: { type: "string", default: "4" },
    dir: { type: "string" },
    precision: { type: "string", default: "default" },
    kv: { type: "string" },
    dense: { type: "string", default: "bf16" },
    mapped: { type: "boolean", default: false },
    json: { type: "boolean", default: false },
    device: { type: "string", default: "cpu" },
    batches: { type: "string", default: "1,4,16,64" },
    prefill: { type: "string", default: "64,1024" },
    roofline: { type: "string" },
    "probe-gib": { type: "string", default: "2" },
    "probe-passes": { type: "string", default: "9" },
    prepare: { type: "boolean", default: false },
  },
});
/** A comma-separated list of positive integers. */
function counts(name: string, s: string): number[] {
  const out = s.split(",").map(Number);
  if (out.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`--${name} must list positive integers, got '${s}'`);
  return out;
}
const shapeName = values.shape as ShapeName;
if (!(shapeName in SHAPES)) throw new Error(`--shape must be one of ${Object.keys(SHAPES).join(", ")}`);
const shape = SHAPES[shapeName];
const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const dir = values.dir ?? join(root, ".cache", "bench", `gpt-oss-${shapeName}-synthetic`);
const steps = Number(values.steps);
const precision = values.precision as Precision;
if (!PRECISIONS.includes(precision)) throw new Error(`--precision must be one of ${PRECISIONS.join(", ")}`);
const kvDtype = values.kv as KvDtype | undefined;
if (kvDtype !== undefined && !KV_DTYPES.includes(kvDtype)) throw new Error(`--kv must be one of ${KV_DTYPES.join(", ")}`);
const denseWeights = values.dense as DenseWeights;
if (!DENSE_WEIGHTS.includes(denseWeights)) throw new Error(`--dense must be one of ${DENSE_WEIGHTS.join(", ")}`);
const device = values.device as Backend;
if (!isBackend(device)) throw new Error(`--device must be cpu, cuda-emu or cuda:N, got '${values.device}'`);
const batches = counts("batches", values.batches);
const prefills = counts("prefill", values.prefill);
const gpu = values.roofline === undefined ? undefined : DEVICES[values.roofline];
if (values.roofline !== undefined && !gpu) throw new Error(`--roofline must be one of ${Object.keys(DEVICES).join(", ")}`);
const probeBytes = Math.round(Number(values["probe-gib"]) * 1024 ** 3);
if (!(probeBytes >= 1024 ** 2)) throw new Error(`--probe-gib must be at least 1/1024, got '${values["probe-gib"]}'`);
const [probePasses] = counts("probe-passes", values["probe-passes"]);

// 1. The checkpoint, built once (a marker file means it completed).
if (!existsSync(join(dir, ".complete"))) {
  mkdirSync(dirname(dir), { recursive: true });
  const t0 = performance.now();
  let last = 0;
  writeSyntheticCheckpoint({
    shape,
    out: dir,
    seed: 2026,
    onProgress: (w, total) => {
      if (performance.now() - last > 2000 || w === total) {
        last = performance.now();
        process.stderr.write(
          `\r[bench] writing ${shapeName} checkpoint: ${((100 * w) / total).toFixed(1)}% of ${(total / 1e9).toFixed(1)} GB`,
        );
      }
    },
  });
  writeFileSync(join(dir, ".complete"), new Date().toISOString());
  process.stderr.write(`\n[bench] checkpoint written in ${((performance.now() - t0) / 1000).toFixed(0)}s\n`);
}
if (values.prepare) process.exit(0);
if (!capabilities().devices.includes(device))
  throw new Error(`--device ${device}: this machine shows ${capabilities().devices.join(", ")}`);

// 2. Machine probes.
const probe = probes(probeBytes, probePasses);
const caps = capabilities();

// 3. Analytic weight traffic per decoded token at batch 1 (what one step must read).
const H = shape.hidden;
const q = shape.numQHeads * shape.headDim;
const kv = shape.numKvHeads * shape.headDim;
// bf16: 2 bytes per weight; q8: 1 byte + a 4-byte scale per 32 (the router stays bf16 either way)
const q8Bytes = 1 + 4 / 32;
const attnBytes = (denseWeights === "q8-attention" ? q8Bytes : 2) * (H * (q + 2 * kv) + q * H) + 2 * shape.numExperts * H; // qkv + o + router
const expertBytes = (2 * shape.intermediate * H + H * shape.intermediate) * (17 / 32); // MXFP4: 0.5 B/weight + 1 B/32 scale
const perToken =
  shape.numLayers * (attnBytes + shape.expertsPerToken * expertBytes) + (denseWeights === "bf16" ? 2 : q8Bytes) * shape.vocab * H + 2 * H;
const activeParams =
  shape.numLayers * (H * (q + 2 * kv) + q * H + shape.numExperts * H + shape.expertsPerToken * 3 * shape.intermediate * H) +
  shape.vocab * H;

// 4. Bandwidth for the roofline (method in the header).
/** A pass counts as undisturbed when every thread was on a CPU for at least this share of it. */
const UNDISTURBED = 0.9;
function summarizeBandwidth(runs: Array<{ readGBps: number[]; readOnCpu: number[] }>) {
  const all = runs.flatMap((r) => r.readGBps.map((gbps, i) => ({ gbps, onCpu: r.readOnCpu[i] as number })));
  const undisturbed = all.filter((p) => p.onCpu >= UNDISTURBED).map((p) => p.gbps);
  const trusted = undisturbed.length >= 3;
  const used = trusted ? undisturbed : all.map((p) => p.gbps);
  const note = trusted
    ? `${undisturbed.length} of ${all.length} passes undisturbed`
    : `host busy: ${undisturbed.length} of ${all.length} passes undisturbed, median of all (not a trustworthy roofline)`;
  return {
    gbps: median(used),
    min: Math.min(...used),
    max: Math.max(...used),
    trusted,
    note,
    runs: runs.map((r) => median(r.readGBps)),
    passes: all,
  };
}
const cpuSeconds = (u: NodeJS.CpuUsage) => (u.user + u.system) / 1e6;

// 5. Engine runs.
const model = await Model.load(dir);
const blocks = 2048;
const engine = new Engine(model, {
  blockSize: 16,
  numFullBlocks: blocks,
  numSlidingBlocks: blocks,
  precision,
  backend: device,
  ...(kvDtype ? { kvDtype } : {}),
  denseWeights,
  residentWeights: !values.mapped,
});
const full = new BlockPool(blocks);
const ring = new BlockPool(blocks);
const prompt = (i: number, n: number) => Array.from({ length: n }, (_, j) => (1000 + i * 7919 + j * 104729) % 199998);

async function decodeRate(batch: number): Promise<number> {
  const seqs = Array.from({ length: batch }, () => new LocalSequence(engine, full, ring));
  for (const s of seqs) s.reserve(16 + steps + 1);
  let inputs = seqs.map((_, i) => prompt(i, 16));
  const sampling = { temperature: 0 };
  let results = await engine.step(seqs.map((s, i) => s.entry(inputs[i] as number[], { sampling })));
  for (const [i, s] of seqs.entries()) s.advance((inputs[i] as number[]).length);
  inputs = results.map((r) => [r.token as number]);
  // one untimed decode step warms the pages this batch touches
  results = await engine.step(seqs.map((s, i) => s.entry(inputs[i] as number[], { sampling })));
  for (const s of seqs) s.advance(1);
  inputs = results.map((r) => [r.token as number]);
  const t0 = performance.now();
  for (let k = 0; k < steps; k++) {
    results = await engine.step(seqs.map((s, i) => s.entry(inputs[i] as number[], { sampling })));
    for (const s of seqs) s.advance(1);
    inputs = results.map((r) => [r.token as number]);
  }
  const seconds = (performance.now() - t0) / 1000;
  for (const s of seqs) s.release();
  return (batch * steps) / seconds;
}

async function prefillRate(n: number): Promise<number> {
  const s = new LocalSequence(engine, full, ring);
  s.reserve(n);
  const t0 = performance.now();
  await engine.step([s.entry(prompt(3, n), { sampling: { temperature: 0 } })]);
  const seconds = (performance.now() - t0) / 1000;
  s.release();
  return n / seconds;
}

process.stderr.write(`[bench] ${device}: warming up (prefill 64 touches most experts)\n`);
await prefillRate(64);
// On the CPU the read probe runs again right before and right after the batch-1 decode (the method is in
// the header). On a GPU the CPU's bandwidth is beside the point: no re-runs.
const onCpu = device === "cpu";
const bandwidthProbes = [probe];
let decodeCores = Number.NaN;
const decode: Record<number, number> = {};
for (const b of batches) {
  if (b === 1 && onCpu) bandwidthProbes.push(probes(probeBytes, probePasses));
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  decode[b] = await decodeRate(b);
  // CPU seconds of all this process's threads per wall second: below the thread count, the host was busy.
  if (b === 1) decodeCores = (cpuSeconds(process.cpuUsage(cpu0)) * 1000) / (performance.now() - t0);
  if (b === 1 && onCpu) bandwidthProbes.push(probes(probeBytes, probePasses));
  process.stderr.write(`[bench] decode batch ${b}: ${(decode[b] as number).toFixed(2)} tok/s\n`);
}
const prefill: Record<number, number> = {};
for (const n of prefills) prefill[n] = await prefillRate(n);

const bandwidth = summarizeBandwidth(bandwidthProbes);
// Rooflines: the GPU's nominal HBM bandwidth and bf16 peak when named, else this machine's CPU probes
// (which mean nothing for a GPU run: then no roofline rows).
const rooflines = gpu
  ? { bandwidthGBps: gpu.hbmBytesPerS / 1e9, flops: gpu.bf16FlopsPerS, what: `${gpu.name} nominal HBM`, compute: "bf16 peak" }
  : onCpu
    ? {
        bandwidthGBps: bandwidth.gbps,
        flops: probe.fmaGflops * 1e9,
        what: "median probed bandwidth",
        compute: "fp32 FMA rate",
      }
    : undefined;
const longest = Math.max(...prefills);
/** On the CPU: the share of the roofline had it been set by the fastest or the slowest probe pass (the probe's own spread). */
const pctSpread = (rate: number, roof: number): string => {
  if (gpu || !onCpu) return "";
  const at = (gbps: number) => ((100 * rate * bandwidth.gbps) / (roof * gbps)).toFixed(1);
  return ` (${at(bandwidth.max)}–${at(bandwidth.min)} at the fastest–slowest pass)${bandwidth.trusted ? "" : " — host busy, see above"}`;
};
const rooflineRows = (r: NonNullable<typeof rooflines>): Array<[string, string]> => {
  const decodeRoof = (r.bandwidthGBps * 1e9) / perToken;
  const prefillRoof = r.flops / (2 * activeParams);
  return [
    ...(decode[1] === undefined
      ? []
      : ([
          [`batch-1 decode roofline (${r.what} / bytes per token)`, `${decodeRoof.toFixed(2)} tok/s`],
          ["batch-1 decode % of bandwidth roofline", `${((100 * decode[1]) / decodeRoof).toFixed(1)} %${pctSpread(decode[1], decodeRoof)}`],
        ] as Array<[string, string]>)),
    [`prefill roofline (${r.compute} / 2·active params)`, `${prefillRoof.toFixed(1)} tok/s`],
    [`prefill (${longest}) % of ${r.compute} roofline`, `${((100 * (prefill[longest] as number)) / prefillRoof).toFixed(1)} %`],
  ];
};
const rows: Array<[string, string]> = [
  ["device", `${device} (engine backend: ${engine.backend})`],
  // The CPU model: this "machine" has been an Intel Xeon on some days and an AMD EPYC on others, whose
  // bandwidths differ twofold; a figure without it cannot be compared with another.
  [
    "machine",
    `${cpus()[0]?.model ?? "?"}, ${availableParallelism()} cores, SIMD ${caps.cpu.simd}, AVX512-BF16 ${caps.cpu.avx512bf16}, AMX ${caps.cpu.amxBf16}`,
  ],
  ["model", `synthetic gpt-oss-${shapeName} (${dir})`],
  ["precision", precision === "default" ? "default (expert products: int8-digit activations)" : "exact (fp32 activations)"],
  ["KV cache", `${engine.kvDtype}, ${engine.kvCapacity().bytesPerToken} bytes per token`],
  [
    "dense weights",
    {
      bf16: "bf16",
      q8: "q8 unembedding (8-bit codes, a scale per 32)",
      "q8-attention": "q8 unembedding and attention projections (8-bit codes, a scale per 32; router bf16)",
    }[engine.denseWeights],
  ],
  ["weights memory", values.mapped ? "the checkpoint's mapping (page cache)" : "resident (copied into 2 MiB huge pages)"],
  [
    `CPU read bandwidth (probe medians${onCpu ? ": start, before and after batch-1 decode" : ""})`,
    `${bandwidth.runs.map((g) => g.toFixed(1)).join(" / ")} GB/s`,
  ],
  [
    `CPU read bandwidth for the roofline (median, min–max of the passes used)`,
    `${bandwidth.gbps.toFixed(1)} GB/s (${bandwidth.min.toFixed(1)}–${bandwidth.max.toFixed(1)}), ${bandwidth.note}`,
  ],
  [
    "CPU cores this process used during batch-1 decode",
    Number.isNaN(decodeCores) ? "—" : `${decodeCores.toFixed(2)} of ${availableParallelism()}`,
  ],
  ["CPU fp32 FMA rate (probe)", `${probe.fmaGflops.toFixed(0)} GFLOP/s`],
  ["weights read per decoded token (batch 1)", `${(perToken / 1e9).toFixed(3)} GB`],
  ["active parameters per token", `${(activeParams / 1e9).toFixed(3)} B`],
  ...batches.map((b): [string, string] => [`decode tok/s, batch ${b}`, (decode[b] as number).toFixed(2)]),
  ...prefills.map((n): [string, string] => [`prefill tok/s, ${n}-token prompt`, (prefill[n] as number).toFixed(1)]),
  ...(rooflines ? rooflineRows(rooflines) : [["rooflines", `none for ${device} without --roofline h100|h200`] as [string, string]]),
  ...(decode[1] && decode[16]
    ? [["batch-16 aggregate / batch-1 decode", `${(decode[16] / decode[1]).toFixed(2)}×`] as [string, string]]
    : []),
];
const width = Math.max(...rows.map(([k]) => k.length));
console.log(`| ${"metric".padEnd(width)} | value |\n|${"-".repeat(width + 2)}|-------|`);
for (const [k, v] of rows) console.log(`| ${k.padEnd(width)} | ${v} |`);
if (values.json)
  console.log(
    JSON.stringify({
      date: new Date().toISOString(),
      device,
      shape: shapeName,
      bandwidth,
      bandwidthRuns: bandwidth.runs,
      decodeCores,
      precision,
      kvDtype: engine.kvDtype,
      denseWeights: engine.denseWeights,
      probe,
      rooflines,
      perToken,
      activeParams,
      decode,
      prefill,
    }),
  );
