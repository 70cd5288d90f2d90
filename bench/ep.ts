#!/usr/bin/env node
/**
 * bench/ep — expert parallelism on CPU ranks: per decode step, how much is communication (the two
 * all-reduces per layer, Gloo over loopback) and how much is compute, for W = 1, 2, 4 local ranks.
 * The leader runs B sequences (prefill, then decode steps); followers are `expertmesh _follow` processes.
 * Timing comes from the engine's own profile (EXPERTMESH_PROFILE): wall time per block, all-reduce
 * included as "comm:all-reduce". On a 2-core box W = 4 oversubscribes the cores: read it as the cost of
 * the protocol, not a speed-up. Each rank gets cores / W OpenMP threads. "comm" is wall time inside the
 * all-reduce calls: the transfer plus waiting for the slowest rank to arrive (skew).
 *
 *   node bench/ep.ts [--worlds 1,2,4] [--batch 4] [--prompt 64] [--decode 16]
 */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { BlockPool, Communicator, Engine, LocalSequence, Model, type ModelShape, SHAPES } from "@expertmesh/kernels";
import { writeSyntheticCheckpoint } from "@expertmesh/kernels/checkpoint";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const cli = join(root, "kernels/src/cli/main.ts");
const { values } = parseArgs({
  options: {
    worlds: { type: "string", default: "1,2,4" },
    batch: { type: "string", default: "4" },
    prompt: { type: "string", default: "64" },
    decode: { type: "string", default: "16" },
    role: { type: "string" },
    world: { type: "string" },
    rendezvous: { type: "string" },
  },
});
const batch = Number(values.batch);
const prompt = Number(values.prompt);
const decode = Number(values.decode);
// Positions per sequence, a multiple of the block size so the followers' KV sizing (the CLI's) matches.
const perSeq = Math.ceil((prompt + decode) / 16) * 16;
const positions = batch * perSeq;

/** A mid-size gpt-oss shape with 8 KV heads (W = 1, 2, 4, 8 divide it): big enough that compute is real. */
const SHAPE: ModelShape = {
  ...SHAPES.tiny,
  numLayers: 8,
  hidden: 1024,
  intermediate: 1024,
  numExperts: 32,
  expertsPerToken: 4,
  numQHeads: 16,
  numKvHeads: 8,
  headDim: 64,
  vocab: 32_000,
};
const dir = join(root, ".cache", "bench", "ep-8l-1024h-32e");

interface LeaderResult {
  prefillMs: number;
  decodeStepMs: number[];
}

async function leader(world: number, rendezvous: string): Promise<void> {
  const model = await Model.load(dir, { rank: 0, world });
  const communicator = world > 1 ? await Communicator.connect({ rank: 0, world, rendezvous, timeoutMs: 60_000 }) : undefined;
  const blocks = Math.ceil(positions / 16) + 1;
  const engine = new Engine(model, {
    blockSize: 16,
    numFullBlocks: blocks,
    numSlidingBlocks: blocks,
    ...(communicator ? { communicator } : {}),
  });
  const full = new BlockPool(blocks);
  const sliding = new BlockPool(blocks);
  const seqs = Array.from({ length: batch }, () => new LocalSequence(engine, full, sliding));
  const promptTokens = Array.from({ length: prompt }, (_, i) => (i * 7919) % SHAPE.vocab);
  let t0 = performance.now();
  for (const s of seqs) s.reserve(prompt);
  await engine.step(seqs.map((s) => s.entry(promptTokens, { returnLogits: false, sampling: { temperature: 0 } })));
  for (const s of seqs) s.advance(prompt);
  const out: LeaderResult = { prefillMs: performance.now() - t0, decodeStepMs: [] };
  for (let d = 0; d < decode; d++) {
    for (const s of seqs) s.reserve(1);
    t0 = performance.now();
    await engine.step(seqs.map((s, i) => s.entry([(d * 31 + i) % SHAPE.vocab], { returnLogits: false, sampling: { temperature: 0 } })));
    out.decodeStepMs.push(performance.now() - t0);
    for (const s of seqs) s.advance(1);
  }
  if (communicator) await engine.stopFollowers();
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

function run(args: string[], env: Record<string, string> = {}): Promise<{ stdout: string; stderr: string; code: number | null }> {
  const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (b: Buffer) => {
    stdout += b;
  });
  child.stderr.on("data", (b: Buffer) => {
    stderr += b;
  });
  return new Promise((resolve) => child.on("exit", (code) => resolve({ stdout, stderr, code })));
}

async function measure(world: number): Promise<{ r: LeaderResult; stepS: number; commShare: number }> {
  // The ranks share this machine's cores: each gets its share of OpenMP threads (else W ranks × all
  // cores spin against each other and the all-reduce waits measure the oversubscription).
  const threads = { OMP_NUM_THREADS: String(Math.max(1, Math.floor(availableParallelism() / world))) };
  const store = mkdtempSync(join(tmpdir(), "bench-ep-"));
  const rendezvous = `file://${store}`;
  const followers = Array.from({ length: world - 1 }, (_, i) =>
    run(
      [
        cli,
        "_follow",
        "--model",
        dir,
        "--positions",
        String(positions),
        "--rank",
        String(i + 1),
        "--world",
        String(world),
        "--rendezvous",
        rendezvous,
      ],
      threads,
    ),
  );
  // One profile line at the end: every step (prefill + decode) of the leader, block by block.
  const lead = await run(
    [fileURLToPath(import.meta.url), "--role", "leader", "--world", String(world), "--rendezvous", rendezvous, ...process.argv.slice(2)],
    {
      EXPERTMESH_PROFILE: String(decode + 1),
      ...threads,
    },
  );
  const ends = await Promise.all(followers);
  rmSync(store, { recursive: true, force: true });
  if (lead.code !== 0 || ends.some((e) => e.code !== 0))
    throw new Error(`W=${world} failed:\n${lead.stderr}${ends.map((e) => e.stderr).join("")}`);
  const profile = /\[profile\] \d+ steps \(\d+–\d+\), ([\d.]+) s\/step:.* comm:all-reduce ([\d.]+)%/.exec(lead.stderr);
  if (!profile) throw new Error(`no profile line from the leader:\n${lead.stderr}`);
  return { r: JSON.parse(lead.stdout) as LeaderResult, stepS: Number(profile[1]), commShare: Number(profile[2]) / 100 };
}

const p50 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;

if (values.role === "leader") {
  await leader(Number(values.world), values.rendezvous ?? "");
} else {
  if (!existsSync(join(dir, "config.json"))) {
    mkdirSync(dir, { recursive: true });
    process.stderr.write(`[bench] writing the synthetic checkpoint to ${dir}…\n`);
    writeSyntheticCheckpoint({ shape: SHAPE, out: dir, seed: 1 });
  }
  const worlds = (values.worlds ?? "1,2,4").split(",").map(Number);
  const rows: string[] = [];
  for (const w of worlds) {
    process.stderr.write(`[bench] W = ${w}…\n`);
    const m = await measure(w);
    const step = p50(m.r.decodeStepMs);
    rows.push(
      `| ${w} | ${batch} | ${m.r.prefillMs.toFixed(1)} | ${step.toFixed(2)} | ${(m.commShare * 100).toFixed(1)} % | ${(step * m.commShare).toFixed(2)} | ${(step * (1 - m.commShare)).toFixed(2)} |`,
    );
  }
  console.log(
    `bench/ep — ${SHAPE.numLayers} layers, hidden ${SHAPE.hidden}, ${SHAPE.numExperts} experts top-${SHAPE.expertsPerToken}, ${SHAPE.numQHeads}/${SHAPE.numKvHeads} heads; ` +
      `batch ${batch}, prompt ${prompt}, ${decode} decode steps; Gloo over loopback; ${new Date().toISOString()}`,
  );
  console.log(
    "| W | batch | prefill ms | decode step ms (p50) | comm share (all steps) | comm ms/step | compute ms/step |\n|---|---|---|---|---|---|---|",
  );
  for (const r of rows) console.log(r);
}
