/**
 * Golden: every shared case matches OpenAI's fp32 reference within the README's exact-mode tolerances,
 * through the step API — as one prefill step, chunked, and token by token through the paged KV cache —
 * and within the serving tolerances in the default precision (int8 activations for the expert products,
 * keys and values stored in bf16), q8 unembedding included; fp8 K/V and q8 attention projections within
 * their measured bounds.
 */
import { describe, expect, it } from "vitest";
import { BlockPool, type DenseWeights, Engine, type KvDtype, LocalSequence, Model, type Precision } from "./index.ts";
import { argmax, compareLogits, concat, goldenCases } from "./testing/golden.ts";

const cases = goldenCases();

async function open(
  dir: string,
  precision: Precision = "exact",
  kvDtype?: KvDtype,
  denseWeights?: DenseWeights,
  residentWeights?: boolean,
) {
  const model = await Model.load(dir);
  const engine = new Engine(model, {
    blockSize: 16,
    numFullBlocks: 256,
    numSlidingBlocks: 256,
    precision,
    kvDtype,
    denseWeights,
    residentWeights,
  });
  const full = new BlockPool(256);
  const ring = new BlockPool(256);
  return { model, engine, seq: () => new LocalSequence(engine, full, ring) };
}

describe.each(cases)("golden $name", (g) => {
  it("one prefill step: rel L2 ≤ 1e-4, max |Δ| ≤ 1e-3, top-1 where the margin > 1e-3", async () => {
    const { seq } = await open(g.dir);
    const logits = concat(await seq().feed(g.tokens));
    const cmp = compareLogits(logits, g, 1e-3);
    expect(cmp.relL2).toBeLessThanOrEqual(1e-4);
    expect(cmp.maxAbs).toBeLessThanOrEqual(1e-3);
    expect(cmp.top1Mismatches).toEqual([]);
  });

  it("default precision: rel L2 ≤ 3e-2, top-1 where the margin > 0.1 (one pass, and token by token over bf16 K/V)", async () => {
    const { engine, seq } = await open(g.dir, "default");
    expect(engine.kvCapacity().dtype).toBe("bf16");
    for (const logits of [concat(await seq().feed(g.tokens)), concat(await seq().feed(g.tokens, { chunk: 1 }))]) {
      const cmp = compareLogits(logits, g, 0.1);
      expect(cmp.relL2).toBeLessThanOrEqual(3e-2);
      expect(cmp.top1Mismatches).toEqual([]);
    }
  });

  // The q8 unembedding is held to the serving tolerances, read as converted (mapped weights) and as the
  // CPU's resident Rows16 layout (its own kernel).
  it.each([false, true])(
    "q8 dense weights (default precision, resident %s; one pass and token by token): rel L2 ≤ 3e-2, top-1 where the margin > 0.1",
    async (residentWeights) => {
      const { engine, seq } = await open(g.dir, "default", undefined, "q8", residentWeights);
      expect(engine.denseWeights).toBe("q8");
      for (const logits of [concat(await seq().feed(g.tokens)), concat(await seq().feed(g.tokens, { chunk: 1 }))]) {
        const cmp = compareLogits(logits, g, 0.1);
        expect(cmp.relL2).toBeLessThanOrEqual(3e-2);
        expect(cmp.top1Mismatches).toEqual([]);
      }
    },
  );

  // 8-bit attention projections are not held to the serving tolerances: on these random-weight
  // checkpoints they move the logits by 1.5–13 % rel L2 (docs/PERFORMANCE.md; the published bf16 reference
  // moves them by 1.2–8.5 %), through expert-routing flips. Bounded so a wrong product or conversion
  // (~100 %) cannot pass.
  it.each([false, true])(
    "q8-attention dense weights (default precision, resident %s; one pass and token by token): rel L2 ≤ 0.2, top-1 where the margin > 0.5",
    async (residentWeights) => {
      const { engine, seq } = await open(g.dir, "default", undefined, "q8-attention", residentWeights);
      expect(engine.denseWeights).toBe("q8-attention");
      for (const logits of [concat(await seq().feed(g.tokens)), concat(await seq().feed(g.tokens, { chunk: 1 }))]) {
        const cmp = compareLogits(logits, g, 0.5);
        expect(cmp.relL2).toBeLessThanOrEqual(0.2);
        expect(cmp.top1Mismatches).toEqual([]);
      }
    },
  );

  // fp8 K/V is not held to the serving tolerances: its deviation is measured (docs/PERFORMANCE.md, 4–14 %
  // rel L2 on these cases, about what the all-bf16 reference itself shows), and bounded here so a broken
  // store or load (which gives ~100 %) cannot pass.
  it("fp8 K/V (default precision, token by token): rel L2 ≤ 0.2, top-1 where the margin > 0.5", async () => {
    const { engine, seq } = await open(g.dir, "default", "fp8");
    expect(engine.kvCapacity().dtype).toBe("fp8");
    const cmp = compareLogits(concat(await seq().feed(g.tokens, { chunk: 1 })), g, 0.5);
    expect(cmp.relL2).toBeLessThanOrEqual(0.2);
    expect(cmp.top1Mismatches).toEqual([]);
  });

  it("token by token and chunked through the paged KV cache equal one full pass", async () => {
    const { seq } = await open(g.dir);
    const whole = concat(await seq().feed(g.tokens));
    const stepwise = concat(await seq().feed(g.tokens, { chunk: 1 }));
    const chunked = concat(await seq().feed(g.tokens, { chunk: 7 }));
    for (const other of [stepwise, chunked]) {
      let worst = 0;
      for (let i = 0; i < whole.length; i++) worst = Math.max(worst, Math.abs((other[i] as number) - (whole[i] as number)));
      expect(worst).toBeLessThanOrEqual(1e-4);
    }
    expect(compareLogits(stepwise, g, 1e-3).relL2).toBeLessThanOrEqual(1e-4);
  });

  it("greedy continuation equals the reference while its margins exceed 1e-3", async () => {
    const { seq } = await open(g.dir);
    const s = seq();
    const [prefill] = await s.feed(g.tokens, { allLogits: false });
    let next = argmax(prefill as Float32Array);
    const greedy: number[] = [];
    for (let i = 0; i < g.fp32.greedy.length; i++) {
      greedy.push(next);
      const [row] = await s.feed([next], { allLogits: false });
      next = argmax(row as Float32Array);
    }
    for (let i = 0; i < greedy.length; i++) {
      if ((g.fp32.greedy_margins[i] as number) <= 1e-3) break;
      expect(greedy[i], `greedy token ${i}`).toBe(g.fp32.greedy[i]);
    }
  });
});

describe("paged KV cache past the sliding window", () => {
  it("the golden set covers prompts longer than a 128-token window", () => {
    const g2 = cases.find((c) => c.name === "g2-small-window128");
    expect(g2?.tokens.length).toBeGreaterThan(128);
  });

  it("decoding 400 tokens one by one (the ring wraps 3 times) gives the full pass's logits", async () => {
    const g2 = cases.find((c) => c.name === "g2-small-window128") as (typeof cases)[number];
    const { model, seq } = await open(g2.dir);
    const tokens = Array.from({ length: 400 }, (_, i) => (g2.tokens[i % g2.tokens.length] as number) ^ (i >> 4));
    expect(tokens.every((t) => t < model.config.vocab)).toBe(true);
    const whole = concat(await seq().feed(tokens));
    const stepwise = concat(await seq().feed(tokens, { chunk: 1 }));
    const mixed = concat(await seq().feed(tokens, { chunk: 150 }));
    let worst = 0;
    let scale = 0;
    for (let i = 0; i < whole.length; i++) {
      worst = Math.max(
        worst,
        Math.abs((stepwise[i] as number) - (whole[i] as number)),
        Math.abs((mixed[i] as number) - (whole[i] as number)),
      );
      scale = Math.max(scale, Math.abs(whole[i] as number));
    }
    expect(worst / scale).toBeLessThanOrEqual(1e-5);
  });
});
