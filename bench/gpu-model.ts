#!/usr/bin/env node
/**
 * bench/gpu-model — the performance model of a GPU decode step, written before any GPU run (issue #23):
 * bytes moved and FLOPs per kernel of one decode step of gpt-oss-20b / -120b at a given batch, the time
 * each would take at the device's HBM bandwidth or bf16 tensor-core peak (whichever binds), and the
 * step's budget for launches and NCCL. Nothing is measured: scripts/gpu-check.sh judges the engine
 * against these figures on the day a GPU is lent, and docs/PERFORMANCE.md records the tables.
 *
 * Assumptions (serving precision): dense weights bf16, experts MXFP4 (4.25 bits), KV cache bf16, fp32
 * activations; every sequence at the same context length; tokens routed uniformly, so a batch of B
 * touches E·(1 − (1 − k/E)^B) distinct experts; only the sampled rows are unembedded.
 *
 *   node bench/gpu-model.ts [--shape 20b,120b] [--batch 1,16,64] [--context 2048] [--device h100,h200] [--summary|--json]
 */
import { parseArgs } from "node:util";
import { type ModelShape, SHAPES, type ShapeName } from "@expertmesh/kernels";

/** What bounds a kernel on a device: HBM bytes/s and dense bf16 FLOP/s. */
export interface DeviceSpec {
  name: string;
  hbmBytesPerS: number;
  bf16FlopsPerS: number;
}

export const DEVICES: Record<string, DeviceSpec> = {
  h100: { name: "H100 SXM", hbmBytesPerS: 3.35e12, bf16FlopsPerS: 989e12 },
  h200: { name: "H200 SXM", hbmBytesPerS: 4.8e12, bf16FlopsPerS: 989e12 },
};

export interface KernelCost {
  kernel: string;
  /** launches of this kernel per step */
  launches: number;
  bytes: number;
  flops: number;
}

const BF16 = 2;
const F32 = 4;
const MXFP4 = 17 / 32; // bytes per weight: 4 bits + one e8m0 scale per 32

/** Distinct experts a batch of `batch` tokens touches under uniform routing (expected value). */
export function activeExperts(s: ModelShape, batch: number): number {
  return s.numExperts * (1 - (1 - s.expertsPerToken / s.numExperts) ** batch);
}

/** Every kernel of one decode step (batch sequences, one new token each, all at `context` positions). */
export function decodeStepCosts(s: ModelShape, batch: number, context: number): KernelCost[] {
  const H = s.hidden;
  const q = s.numQHeads * s.headDim;
  const kv = s.numKvHeads * s.headDim;
  const L = s.numLayers;
  const sliding = Math.ceil(L / 2);
  const act = batch * H * F32; // one activation row set
  const experts = activeExperts(s, batch);
  const routed = batch * s.expertsPerToken;
  const keys = (window: number) => batch * Math.min(context, window);
  const attendedKeys = sliding * keys(s.slidingWindow) + (L - sliding) * keys(Number.POSITIVE_INFINITY);
  return [
    { kernel: "embed", launches: 1, bytes: batch * H * (BF16 + F32), flops: 0 },
    { kernel: "rmsnorm (×2 per layer, + final)", launches: 2 * L + 1, bytes: (2 * L + 1) * 2 * act, flops: (2 * L + 1) * 4 * batch * H },
    { kernel: "qkv gemv (bf16)", launches: L, bytes: L * (H * (q + 2 * kv) * BF16 + act), flops: L * 2 * batch * H * (q + 2 * kv) },
    { kernel: "rope (q and k)", launches: 2 * L, bytes: L * 2 * batch * (q + kv) * F32, flops: L * 6 * batch * (q + kv) },
    {
      kernel: "attention (split-K, bf16 KV)",
      launches: 2 * L,
      bytes: attendedKeys * 2 * kv * BF16 + L * 2 * batch * q * F32,
      flops: attendedKeys * 4 * q,
    },
    { kernel: "kv store", launches: L, bytes: L * batch * 2 * kv * (F32 + BF16), flops: 0 },
    { kernel: "o proj gemv (bf16)", launches: L, bytes: L * (q * H * BF16 + batch * q * F32 + act), flops: L * 2 * batch * q * H },
    { kernel: "residual add (×2 per layer)", launches: 2 * L, bytes: 2 * L * 3 * act, flops: 2 * L * batch * H },
    {
      kernel: "router gemv + top-k",
      launches: 2 * L,
      bytes: L * (s.numExperts * H * BF16 + act),
      flops: L * 2 * batch * H * s.numExperts,
    },
    { kernel: "moe route + scatter", launches: 3 * L, bytes: L * 2 * routed * H * F32, flops: 0 },
    {
      kernel: "experts W1 + SwiGLU (MXFP4)",
      launches: L,
      bytes: L * (experts * 2 * s.intermediate * H * MXFP4 + routed * (H + s.intermediate) * F32),
      flops: L * 2 * routed * H * 2 * s.intermediate,
    },
    {
      kernel: "experts W2 (MXFP4)",
      launches: L,
      bytes: L * (experts * H * s.intermediate * MXFP4 + routed * (H + s.intermediate) * F32),
      flops: L * 2 * routed * H * s.intermediate,
    },
    { kernel: "moe combine", launches: L, bytes: L * (routed * H * F32 + act), flops: L * 2 * routed * H },
    { kernel: "unembed (sampled rows)", launches: 1, bytes: s.vocab * H * BF16 + batch * s.vocab * F32, flops: 2 * batch * H * s.vocab },
    { kernel: "sample", launches: batch, bytes: batch * s.vocab * F32 * 3, flops: 0 },
  ];
}

/** Seconds a kernel takes when it runs at the device's roofline (bandwidth or compute, whichever binds). */
export function rooflineSeconds(k: Pick<KernelCost, "bytes" | "flops">, d: DeviceSpec): number {
  return Math.max(k.bytes / d.hbmBytesPerS, k.flops / d.bf16FlopsPerS);
}

/** Budgets outside the kernels: per launch (eager vs a CUDA graph's node) and per NCCL all-reduce. */
export const OVERHEAD = { eagerLaunchS: 4e-6, graphNodeS: 1e-6, ncclAllReduceS: 15e-6 };

export interface StepModel {
  costs: KernelCost[];
  kernelS: number;
  launches: number;
  tokensPerS: number;
  eagerS: number;
  graphS: number;
  ncclS: (world: number) => number;
}

export function modelDecodeStep(s: ModelShape, batch: number, context: number, d: DeviceSpec): StepModel {
  const costs = decodeStepCosts(s, batch, context);
  const kernelS = costs.reduce((t, k) => t + rooflineSeconds(k, d), 0);
  const launches = costs.reduce((n, k) => n + k.launches, 0);
  return {
    costs,
    kernelS,
    launches,
    tokensPerS: batch / kernelS,
    eagerS: launches * OVERHEAD.eagerLaunchS,
    graphS: launches * OVERHEAD.graphNodeS,
    // Two all-reduces per layer (after attention, after the combine) plus the plan broadcast.
    ncclS: (world) => (world > 1 ? (2 * s.numLayers + 1) * OVERHEAD.ncclAllReduceS : 0),
  };
}

/**
 * A prefill chunk of `tokens` from position 0, compute-bound on tensor cores: every active weight is
 * multiplied by every token (all experts are active at this length) plus causal attention.
 */
export function prefillSeconds(s: ModelShape, tokens: number, d: DeviceSpec): number {
  const H = s.hidden;
  const q = s.numQHeads * s.headDim;
  const kv = s.numKvHeads * s.headDim;
  const perToken = s.numLayers * (H * (q + 2 * kv) + q * H + s.numExperts * H + s.expertsPerToken * 3 * s.intermediate * H) + s.vocab * H;
  const sliding = Math.ceil(s.numLayers / 2);
  const pairs = sliding * tokens * Math.min(tokens, s.slidingWindow) + (s.numLayers - sliding) * ((tokens * (tokens + 1)) / 2);
  const flops = 2 * perToken * tokens + 4 * q * pairs;
  const bytes = s.numLayers * (H * (q + 2 * kv) + q * H) * BF16 + s.numLayers * s.numExperts * 3 * s.intermediate * H * MXFP4;
  return rooflineSeconds({ flops, bytes }, d);
}

function summary(rows: string[][]): string {
  return [
    "| model | device | decode batch | step µs at roofline | tok/s at roofline | 70 % of it | eager launches µs | graph µs | NCCL W=2 µs | prefill 2048 ms |",
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ...rows.map((r) => `| ${r.join(" | ")} |`),
  ].join("\n");
}

function table(shapeName: string, batch: number, context: number, d: DeviceSpec, m: StepModel): string {
  const rows = m.costs.map((k) => {
    const t = rooflineSeconds(k, d);
    const bound = k.bytes / d.hbmBytesPerS >= k.flops / d.bf16FlopsPerS ? "HBM" : "compute";
    return `| ${k.kernel} | ${k.launches} | ${(k.bytes / 1e6).toFixed(2)} | ${(k.flops / 1e9).toFixed(2)} | ${(t * 1e6).toFixed(1)} | ${bound} |`;
  });
  const bytes = m.costs.reduce((t, k) => t + k.bytes, 0);
  return [
    `### gpt-oss-${shapeName}, decode batch ${batch}, context ${context}, ${d.name}`,
    "",
    "| kernel | launches | MB | GFLOP | µs at roofline | bound by |",
    "|---|---:|---:|---:|---:|---|",
    ...rows,
    `| **step** | ${m.launches} | ${(bytes / 1e6).toFixed(1)} | ${(m.costs.reduce((t, k) => t + k.flops, 0) / 1e9).toFixed(1)} | ${(m.kernelS * 1e6).toFixed(0)} | |`,
    "",
    `roofline ${m.tokensPerS.toFixed(0)} tok/s (70 %: ${(0.7 * m.tokensPerS).toFixed(0)}); launches eager ${(m.eagerS * 1e6).toFixed(0)} µs, ` +
      `as a graph ${(m.graphS * 1e6).toFixed(0)} µs; NCCL at W = 2: ${(m.ncclS(2) * 1e6).toFixed(0)} µs per step`,
    "",
  ].join("\n");
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      shape: { type: "string", default: "20b,120b" },
      batch: { type: "string", default: "1,16,64" },
      context: { type: "string", default: "2048" },
      device: { type: "string", default: "h100,h200" },
      json: { type: "boolean", default: false },
      summary: { type: "boolean", default: false },
    },
  });
  const list = (v: string) => v.split(",").filter(Boolean);
  const context = Number(values.context);
  const out: unknown[] = [];
  const rows: string[][] = [];
  for (const name of list(values.shape)) {
    if (!(name in SHAPES) || name === "tiny") throw new Error(`--shape takes 20b and/or 120b, got '${name}'`);
    for (const dev of list(values.device)) {
      const d = DEVICES[dev];
      if (!d) throw new Error(`--device takes ${Object.keys(DEVICES).join(", ")}, got '${dev}'`);
      for (const b of list(values.batch).map(Number)) {
        const shape = SHAPES[name as ShapeName];
        const m = modelDecodeStep(shape, b, context, d);
        const prefillMs = prefillSeconds(shape, 2048, d) * 1e3;
        if (values.json)
          out.push({ shape: name, device: dev, batch: b, context, tokensPerS: m.tokensPerS, stepUs: m.kernelS * 1e6, prefillMs });
        else if (values.summary)
          rows.push([
            `gpt-oss-${name}`,
            d.name,
            String(b),
            (m.kernelS * 1e6).toFixed(0),
            m.tokensPerS.toFixed(0),
            (0.7 * m.tokensPerS).toFixed(0),
            (m.eagerS * 1e6).toFixed(0),
            (m.graphS * 1e6).toFixed(0),
            (m.ncclS(2) * 1e6).toFixed(0),
            prefillMs.toFixed(1),
          ]);
        else console.log(table(name, b, context, d, m));
      }
    }
  }
  if (values.json) console.log(JSON.stringify(out, null, 2));
  if (values.summary) console.log(summary(rows));
}
