/**
 * The batched step API: batch invariance, native sampling semantics, and argument validation.
 */
import { describe, expect, it } from "vitest";
import {
  BlockPool,
  DENSE_WEIGHTS,
  type DenseWeights,
  Engine,
  KV_DTYPES,
  LocalSequence,
  Model,
  NativeError,
  type Precision,
  type StepResult,
} from "./index.ts";
import { argmax, compareLogits, goldenCases } from "./testing/golden.ts";

const g2 = goldenCases().find((c) => c.name === "g2-small-window128") as ReturnType<typeof goldenCases>[number];

async function setup(blocks = 512, precision: Precision = "exact", residentWeights = false, denseWeights: DenseWeights = "bf16") {
  const model = await Model.load(g2.dir);
  const engine = new Engine(model, {
    blockSize: 16,
    numFullBlocks: blocks,
    numSlidingBlocks: blocks,
    precision,
    residentWeights,
    denseWeights,
  });
  return { model, engine, full: new BlockPool(blocks), sliding: new BlockPool(blocks) };
}

/** 16 distinct prompts of different lengths (some beyond the 128-token window). */
function prompts(vocab: number): number[][] {
  return Array.from({ length: 16 }, (_, i) =>
    Array.from({ length: 5 + i * 11 }, (_, j) => ((g2.tokens[(i * 7 + j) % g2.tokens.length] as number) * (i + 1)) % vocab),
  );
}

async function greedyAlone(engine: Engine, full: BlockPool, sliding: BlockPool, prompt: number[], n: number): Promise<number[]> {
  const seq = new LocalSequence(engine, full, sliding);
  seq.reserve(prompt.length + n);
  const out: number[] = [];
  let next = prompt;
  for (let i = 0; i < n; i++) {
    const [r] = await engine.step([seq.entry(next, { sampling: { temperature: 0, counter: i } })]);
    seq.advance(next.length);
    out.push(r?.token as number);
    next = [r?.token as number];
  }
  seq.release();
  return out;
}

describe("batched steps", () => {
  // Resident weights are rewritten as Rows16 (kernels/core/tensor.h) on hosts with the CPU's serving
  // kernels for it, whose dense product takes 16 tokens per tile and the rest row by row, and whose q8
  // product takes tiles of 1–4 tokens: a token's result must not depend on which it went through.
  it.each([
    ["exact", "mapped bf16", false, "bf16"],
    ["default", "mapped bf16", false, "bf16"],
    ["default", "resident bf16", true, "bf16"],
    ["default", "resident q8-attention", true, "q8-attention"],
  ] as const)(
    "batch invariance (%s precision, %s weights): 16 sequences stepped together produce the greedy tokens each produces alone",
    async (precision, _weights, residentWeights, denseWeights) => {
      const { model, engine, full, sliding } = await setup(512, precision, residentWeights, denseWeights);
      const ps = prompts(model.config.vocab);
      const N = 8;
      const alone = [];
      for (const p of ps) alone.push(await greedyAlone(engine, full, sliding, p, N));

      const seqs = ps.map((p) => {
        const s = new LocalSequence(engine, full, sliding);
        s.reserve(p.length + N);
        return s;
      });
      const together: number[][] = ps.map(() => []);
      let inputs = ps;
      for (let i = 0; i < N; i++) {
        // Step 0 mixes 16 prefills; later steps are 16 decodes.
        const results = await engine.step(seqs.map((s, k) => s.entry(inputs[k] as number[], { sampling: { temperature: 0, counter: i } })));
        for (const [k, s] of seqs.entries()) s.advance((inputs[k] as number[]).length);
        inputs = results.map((r) => [r.token as number]);
        for (const [k, r] of results.entries()) together[k]?.push(r.token as number);
      }
      expect(together).toEqual(alone);
      for (const s of seqs) s.release();
      expect(full.free).toBe(full.capacity);
      expect(sliding.free).toBe(sliding.capacity);
    },
  );

  it.each(["exact", "default"] as const)(
    "%s precision: a sequence's logits are bit-identical alone and next to short and long (≥ 128-token) prefills",
    async (precision) => {
      const { model, engine, full, sliding } = await setup(512, precision);
      const ps = prompts(model.config.vocab);
      const logitsOf = async (which: number[]): Promise<Float32Array[]> => {
        const seqs = which.map(() => new LocalSequence(engine, full, sliding));
        for (const s of seqs) s.reserve(200);
        let inputs = which.map((k) => ps[k] as number[]);
        const rows: Float32Array[] = [];
        for (let i = 0; i < 4; i++) {
          const results = await engine.step(seqs.map((s, k) => s.entry(inputs[k] as number[], { returnLogits: true })));
          for (const [k, s] of seqs.entries()) s.advance((inputs[k] as number[]).length);
          rows.push(((results[0] as StepResult).logits as Float32Array).slice());
          inputs = results.map((r) => [argmax(r.logits as Float32Array)]);
        }
        for (const s of seqs) s.release();
        return rows;
      };
      expect((ps[15] as number[]).length).toBeGreaterThanOrEqual(128);
      const alone = await logitsOf([1]);
      for (const batch of [
        [1, 2, 3],
        [1, 15, 4],
      ]) {
        const together = await logitsOf(batch);
        for (let i = 0; i < alone.length; i++)
          expect(
            Buffer.from((together[i] as Float32Array).buffer).equals(Buffer.from((alone[i] as Float32Array).buffer)),
            `step ${i} of [${batch}]`,
          ).toBe(true);
      }
    },
  );

  it("mixes a prefill chunk and decode tokens of other sequences in one step", async () => {
    const { engine, full, sliding } = await setup();
    const a = new LocalSequence(engine, full, sliding);
    const b = new LocalSequence(engine, full, sliding);
    a.reserve(200);
    b.reserve(200);
    const [ra] = await engine.step([a.entry(g2.tokens.slice(0, 50))]);
    a.advance(50);
    const [rMixedA, rMixedB] = await engine.step([a.entry([7]), b.entry(g2.tokens.slice(0, 51))]);
    a.advance(1);
    b.advance(51);
    // b's last row and a's decode row both see tokens[0..50] → identical logits for the same context.
    const aRef = new LocalSequence(engine, full, sliding);
    const [ref] = await aRef.feed([...g2.tokens.slice(0, 50), 7], { allLogits: false });
    expect(argmax(rMixedA?.logits as Float32Array)).toBe(argmax(ref as Float32Array));
    expect(ra?.logits?.length).toBe(g2.shape[1]);
    expect(rMixedB?.logits?.length).toBe(g2.shape[1]);
  });
});

describe("native sampling", () => {
  it("greedy picks the argmax and reports its logprob and top alternatives", async () => {
    const { engine, full, sliding } = await setup();
    const s = new LocalSequence(engine, full, sliding);
    s.reserve(g2.tokens.length);
    const [r] = await engine.step([s.entry(g2.tokens, { sampling: { temperature: 0, topLogprobs: 5 }, returnLogits: true })]);
    const logits = r?.logits as Float32Array;
    expect(r?.token).toBe(argmax(logits));
    const lse =
      Math.log(logits.reduce((z, x) => z + Math.exp(x - (logits[argmax(logits)] as number)), 0)) + (logits[argmax(logits)] as number);
    expect(r?.logprob).toBeCloseTo((logits[r?.token as number] as number) - lse, 4);
    expect(r?.topLogprobs?.map((t) => t.token)[0]).toBe(r?.token);
    expect(r?.topLogprobs).toHaveLength(5);
    const lps = (r?.topLogprobs ?? []).map((t) => t.logprob);
    expect([...lps].sort((x, y) => y - x)).toEqual(lps);
  });

  it("is reproducible per (seed, counter) and varies with the seed", async () => {
    const { engine, full, sliding } = await setup();
    const s = new LocalSequence(engine, full, sliding);
    s.reserve(g2.tokens.length);
    const draw = async (seed: number, counter: number) => {
      const [r] = await engine.step([s.entry(g2.tokens, { sampling: { temperature: 1.5, seed, counter } })]);
      return r?.token as number;
    };
    const a = [];
    const b = [];
    for (let c = 0; c < 12; c++) {
      a.push(await draw(42, c));
      b.push(await draw(42, c));
    }
    expect(a).toEqual(b);
    const others = [];
    for (let seed = 1; seed <= 12; seed++) others.push(await draw(seed, 0));
    expect(new Set(others).size).toBeGreaterThan(1);
  });

  it("top-k 1 equals greedy; a +100 logit bias forces a token; a -100 bias bans the argmax", async () => {
    const { engine, full, sliding } = await setup();
    const s = new LocalSequence(engine, full, sliding);
    s.reserve(g2.tokens.length);
    const one = async (sampling: object) => (await engine.step([s.entry(g2.tokens, { sampling })]))[0]?.token as number;
    const greedy = await one({ temperature: 0 });
    expect(await one({ temperature: 2, topK: 1, seed: 9 })).toBe(greedy);
    expect(await one({ temperature: 0, logitBias: { 123: 100 } })).toBe(123);
    expect(await one({ temperature: 0, logitBias: { [greedy]: -100 } })).not.toBe(greedy);
    expect(await one({ temperature: 1, topP: 1e-9, seed: 3 })).toBe(greedy);
    expect(await one({ temperature: 1, minP: 1, seed: 5 })).toBe(greedy);
  });

  it("presence and repetition penalties move mass away from tokens already seen", async () => {
    const { engine, full, sliding } = await setup();
    const s = new LocalSequence(engine, full, sliding);
    s.reserve(g2.tokens.length);
    const one = async (sampling: object) => (await engine.step([s.entry(g2.tokens, { sampling })]))[0]?.token as number;
    const greedy = await one({ temperature: 0 });
    expect(await one({ temperature: 0, presencePenalty: 2, frequencyPenalty: 2, outputTokens: Array(60).fill(greedy) })).not.toBe(greedy);
    expect(await one({ temperature: 0, repetitionPenalty: 10, outputTokens: [greedy] })).not.toBe(greedy);
  });
});

describe("validation", () => {
  it("rejects bad arguments in TypeScript with exact messages", async () => {
    const { engine, full, sliding } = await setup();
    const s = new LocalSequence(engine, full, sliding);
    s.reserve(4);
    await expect(engine.step([s.entry([g2.shape[1]])])).rejects.toThrow(
      `seqs[0].tokens[0] = ${g2.shape[1]} is not a token id in [0, ${g2.shape[1]})`,
    );
    await expect(engine.step([{ ...s.entry([1, 2]), fullBlocks: [] }])).rejects.toThrow(
      "seqs[0].fullBlocks has 0 blocks; positions [0, 2) need 1",
    );
    await expect(engine.step([s.entry([1], { sampling: { temperature: -1 } })])).rejects.toThrow(
      "seqs[0].sampling.temperature must be a number in [0, 100], got -1",
    );
    await expect(engine.step([s.entry([1], { sampling: { topLogprobs: 21 } })])).rejects.toThrow(
      "seqs[0].sampling.topLogprobs must be an integer in [0, 20], got 21",
    );
    await expect(engine.step([])).rejects.toThrow("Engine.step: seqs must be a non-empty array");
    await expect(Model.load("/nonexistent")).rejects.toThrow("model directory /nonexistent does not exist or is not a directory");
  });

  it("never blocks the event loop: timers keep firing while a long step runs", async () => {
    const { engine, full, sliding } = await setup();
    const s = new LocalSequence(engine, full, sliding);
    const tokens = Array.from({ length: 2000 }, (_, i) => (g2.tokens[i % g2.tokens.length] as number) % g2.shape[1]);
    s.reserve(tokens.length);
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const started = performance.now();
    await engine.step([s.entry(tokens, { sampling: { temperature: 0 } })]);
    const elapsed = performance.now() - started;
    clearInterval(timer);
    expect(elapsed).toBeGreaterThan(20);
    // A blocked loop would run the timer at most once; an idle one ticks about once per millisecond.
    expect(ticks).toBeGreaterThan(elapsed / 10);
  });

  it("refuses overlapping steps on one engine", async () => {
    const { engine, full, sliding } = await setup();
    const s = new LocalSequence(engine, full, sliding);
    s.reserve(g2.tokens.length);
    const first = engine.step([s.entry(g2.tokens)]);
    await expect(engine.step([s.entry(g2.tokens)])).rejects.toThrow("a step is already running");
    await first;
  });

  it("runs on the backend it was created with, and answers unbuilt backends with a typed error", async () => {
    const { model, engine } = await setup(8);
    expect(engine.backend).toBe("cpu");
    expect(new Engine(model, { numFullBlocks: 8, numSlidingBlocks: 8, backend: "cuda-emu" }).backend).toBe("cuda-emu");
    for (const backend of ["cuda:0"] as const) {
      const err = (() => {
        try {
          return new Engine(model, { numFullBlocks: 8, numSlidingBlocks: 8, backend });
        } catch (e) {
          return e;
        }
      })();
      expect(err).toBeInstanceOf(NativeError);
      expect((err as NativeError).statusName).toBe("invalid_argument");
      // This machine has nvcc but no GPU: the build has the CUDA op set, the device is missing.
      expect((err as NativeError).message).toMatch(/backend not built: 'cuda:0'|backend 'cuda:0' is not available/);
    }
    expect(() => new Engine(model, { numFullBlocks: 8, numSlidingBlocks: 8, backend: "tpu" as "cpu" })).toThrow(
      'backend must be "cpu", "cuda-emu" or "cuda:N", got tpu',
    );
  });

  it("surfaces C++ failures as NativeError with a status name", async () => {
    const err = await Model.load("/tmp").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NativeError);
    expect((err as NativeError).statusName).toBe("io_error");
    expect((err as NativeError).message).toContain("config.json");
  });
});

describe("KV capacity on the CPU", () => {
  it("exact stores fp32 K/V, default bf16 unless kvDtype says otherwise: bytes per token = layers × 2 × kv heads × head dim × element bytes", async () => {
    const model = await Model.load(g2.dir);
    const c = model.config;
    for (const [precision, kvDtype, dtype, elem] of [
      ["exact", undefined, "f32", 4],
      ["default", undefined, "bf16", 2],
      ["default", "f32", "f32", 4],
      ["exact", "bf16", "bf16", 2],
    ] as const) {
      const engine = new Engine(model, {
        blockSize: 16,
        numFullBlocks: 8,
        numSlidingBlocks: 8,
        precision,
        ...(kvDtype ? { kvDtype } : {}),
      });
      const kv = engine.kvCapacity();
      expect(engine.kvDtype).toBe(dtype);
      expect(kv.dtype).toBe(dtype);
      expect(kv.bytesPerToken).toBe(c.numLayers * 2 * c.numKvHeads * c.headDim * elem);
      expect(kv.fullTokens).toBe(8 * 16);
      expect(kv.slidingTokens).toBe(8 * 16);
      expect(kv.bytes).toBe(kv.bytesPerToken * 8 * 16);
    }
  });

  // Resident placement also rewrites the experts and the dense matrices into the layouts the CPU's
  // serving kernels read (Rows16, kernels/core/tensor.h), which add the same products in another order
  // than the checkpoint layout's kernels (and split the dense products' activations into two bf16): exact
  // precision reads every weight the same way in either layout, so it proves the copy bit for bit;
  // default precision is held to the serving tolerances, as golden's is.
  it("resident weights (huge pages, experts and dense matrices as Rows16): exact logits bit-identical to the mapped checkpoint's, default within the serving tolerances, every dense weight type", async () => {
    const model = await Model.load(g2.dir);
    const tokens = g2.tokens.slice(0, 40);
    for (const denseWeights of DENSE_WEIGHTS)
      for (const precision of ["exact", "default"] as const) {
        const logits: Float32Array[] = [];
        for (const residentWeights of [false, true]) {
          const engine = new Engine(model, { numFullBlocks: 16, numSlidingBlocks: 16, denseWeights, residentWeights, precision });
          const seq = new LocalSequence(engine, new BlockPool(16), new BlockPool(16));
          logits.push(Float32Array.from((await seq.feed(tokens)).flatMap((row) => Array.from(row))));
        }
        if (precision === "exact") {
          expect(logits[1], denseWeights).toEqual(logits[0]);
          continue;
        }
        // The bounds golden.test.ts holds each mode to (q8 attention projections: its measured bound).
        const [relL2, margin] = denseWeights === "q8-attention" ? [0.2, 0.5] : [3e-2, 0.1];
        for (const got of logits) {
          const cmp = compareLogits(got, g2, margin, tokens.length);
          expect(cmp.relL2, denseWeights).toBeLessThanOrEqual(relL2);
          expect(cmp.top1Mismatches, denseWeights).toEqual([]);
        }
      }
  });

  it("refuses an unknown denseWeights before it converts anything", async () => {
    const model = await Model.load(g2.dir);
    expect(() => new Engine(model, { numFullBlocks: 8, numSlidingBlocks: 8, denseWeights: "int4" as "q8" })).toThrow(
      `denseWeights must be one of ${DENSE_WEIGHTS.join(", ")}, got int4`,
    );
  });

  it("refuses an unknown kvDtype before it allocates anything", async () => {
    const model = await Model.load(g2.dir);
    expect(() => new Engine(model, { numFullBlocks: 8, numSlidingBlocks: 8, kvDtype: "fp16" as "f32" })).toThrow(
      `kvDtype must be one of ${KV_DTYPES.join(", ")}, got fp16`,
    );
  });
});
