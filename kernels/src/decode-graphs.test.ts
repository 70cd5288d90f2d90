/**
 * Decode steps replayed from captured launch graphs (#23), through cuda-emu, whose graphs are recorded
 * launch lists (the same kernels a GPU graph holds, replayed in order), and on cuda:0 where a GPU is. Two engines on the same
 * checkpoint, one with decodeGraphs and one without, take the same steps: the logits of every decode
 * step are bit-identical (the padding rows of a bucket never reach a real row), one graph is captured per
 * bucket and replayed by every later decode step of that bucket, and prefill steps stay eager.
 * g1-tiny keeps the emulated steps short.
 */
import { describe, expect, it } from "vitest";
import { type Backend, BlockPool, capabilities, Engine, LocalSequence, Model, type Precision } from "./index.ts";
import { type GoldenCase, goldenCases } from "./testing/golden.ts";

const g1 = goldenCases().find((c) => c.name === "g1-tiny") as GoldenCase;
const BLOCKS = 64;

async function engines(backend: Backend, precision: Precision) {
  const model = await Model.load(g1.dir);
  const make = (decodeGraphs: boolean) => {
    const engine = new Engine(model, {
      blockSize: 16,
      numFullBlocks: BLOCKS,
      numSlidingBlocks: BLOCKS,
      precision,
      backend,
      decodeGraphs,
    });
    return { engine, full: new BlockPool(BLOCKS), sliding: new BlockPool(BLOCKS) };
  };
  return { model, eager: make(false), graphed: make(true) };
}

type Side = { engine: Engine; full: BlockPool; sliding: BlockPool };

/** n sequences prefilled together (prompts of `len(i)` tokens), then `steps` greedy decode steps; every step's logits. */
async function run(e: Side, n: number, steps: number, vocab: number, len = (i: number) => 3 + 2 * i) {
  const seqs = Array.from({ length: n }, () => new LocalSequence(e.engine, e.full, e.sliding));
  let inputs = seqs.map((_, i) => Array.from({ length: len(i) }, (_, j) => (101 + 37 * i + 11 * j) % vocab));
  for (const [i, s] of seqs.entries()) s.reserve((inputs[i] as number[]).length + steps);
  const logits: Float32Array[] = [];
  for (let k = 0; k <= steps; k++) {
    const results = await e.engine.step(
      seqs.map((s, i) => s.entry(inputs[i] as number[], { returnLogits: true, sampling: { temperature: 0, counter: k } })),
    );
    for (const [i, s] of seqs.entries()) s.advance((inputs[i] as number[]).length);
    inputs = results.map((r) => [r.token as number]);
    for (const r of results) logits.push(r.logits as Float32Array);
  }
  for (const s of seqs) s.release();
  return logits;
}

const gpu = capabilities().devices.includes("cuda:0");

async function graphsEqualEager(backend: Backend, precision: Precision = "exact") {
  const { model, eager, graphed } = await engines(backend, precision);
  const V = model.config.vocab;
  const steps = 3;
  // A first step larger than any below grows the step buffers once, so they stay put after it.
  for (const e of [eager, graphed]) await run(e, 8, 0, V, () => 8);
  let captures = 0;
  let replays = 0;
  // 1 → bucket 1; 3 → bucket 4 (one padding row); 4 → bucket 4 again (no new capture); 5 → bucket 8.
  for (const [n, bucketIsNew] of [
    [1, true],
    [3, true],
    [4, false],
    [5, true],
  ] as const) {
    const a = await run(eager, n, steps, V);
    const b = await run(graphed, n, steps, V);
    expect(b.length).toBe(a.length);
    for (let i = 0; i < a.length; i++) expect(b[i], `n=${n}, row ${i}`).toEqual(a[i]);
    replays += steps;
    if (bucketIsNew) captures += 1;
    expect(graphed.engine.graphStats()).toEqual({ captures, replays });
  }
  expect(eager.engine.graphStats()).toEqual({ captures: 0, replays: 0 });

  // A larger step moves the buffers: the graphs are dropped and bucket 1 is captured again.
  const big = (e: Side) => run(e, 10, 0, V, () => 9);
  await big(eager);
  await big(graphed);
  const a = await run(eager, 1, 2, V);
  const b = await run(graphed, 1, 2, V);
  for (let i = 0; i < a.length; i++) expect(b[i], `after growth, row ${i}`).toEqual(a[i]);
  expect(graphed.engine.graphStats()).toEqual({ captures: captures + 1, replays: replays + 2 });
}

const SAME = "every decode step's logits equal the eager engine's, one capture per bucket, replayed after";
// Serving precision on a device backend reads and writes bf16 K/V in the captured kernels.
const SAME_SERVING = `${SAME} (serving precision: bf16 KV)`;

describe("decode graphs (cuda-emu)", () => {
  it(SAME, () => graphsEqualEager("cuda-emu"));
  it(SAME_SERVING, () => graphsEqualEager("cuda-emu", "default"));
});

// GPU-gated (skipped, with the reason, without a device): the same kernels in a real CUDA graph.
describe("decode graphs (cuda:0)", () => {
  it(SAME, async (ctx) => {
    if (!gpu) ctx.skip(`needs a CUDA device (devices here: ${capabilities().devices.join(", ")})`);
    await graphsEqualEager("cuda:0");
  });
  it(SAME_SERVING, async (ctx) => {
    if (!gpu) ctx.skip(`needs a CUDA device (devices here: ${capabilities().devices.join(", ")})`);
    await graphsEqualEager("cuda:0", "default");
  });
});

describe("decode graphs (cpu)", () => {
  it("cpu has no graphs: decodeGraphs is a no-op there", async () => {
    const model = await Model.load(g1.dir);
    const engine = new Engine(model, { blockSize: 16, numFullBlocks: 8, numSlidingBlocks: 8, decodeGraphs: true });
    await run({ engine, full: new BlockPool(8), sliding: new BlockPool(8) }, 2, 2, model.config.vocab);
    expect(engine.graphStats()).toEqual({ captures: 0, replays: 0 });
  });
});
