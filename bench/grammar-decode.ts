/**
 * bench/grammar --decode: decode tokens/s of a batch with and without constraints, on the synthetic
 * checkpoint bench/engine writes (`node bench/engine.ts --shape 20b --prepare`). Runs alternate
 * (free, constrained, free, …) so both see the same machine; the constrained run does what the
 * worker does per step: every sequence's mask before the step (passed to the native sampler), the
 * sampled token accepted after it. Sampling at temperature 1 from a random model: a sequence whose
 * grammar ends starts over with a fresh matcher, so every step keeps the whole batch constrained.
 */

import { BITMASK_WORDS, type ConstraintCompiler, type ConstraintMatcher, type ConstraintSpec, encodeText } from "@expertmesh/grammar";
import { BlockPool, Engine, LocalSequence, Model } from "@expertmesh/kernels";

export interface DecodeOptions {
  readonly dir: string;
  readonly batch: number;
  readonly steps: number;
  readonly rounds: number;
  readonly spec: ConstraintSpec;
}

const PROMPT = encodeText("Return a JSON object describing a city: its name, population and a few landmarks.");

async function run(engine: Engine, o: DecodeOptions, compiler: ConstraintCompiler | undefined): Promise<number> {
  const full = new BlockPool(engine.numFullBlocks);
  const ring = new BlockPool(engine.numSlidingBlocks);
  const seqs = Array.from({ length: o.batch }, () => new LocalSequence(engine, full, ring));
  for (const s of seqs) s.reserve(PROMPT.length + o.steps + 2);
  const compiled = compiler ? await compiler.compile(o.spec) : null;
  const matchers: Array<ConstraintMatcher | undefined> = await Promise.all(
    seqs.map(() => (compiled ? compiler?.matcher(compiled) : undefined)),
  );
  const masks = seqs.map(() => new Int32Array(BITMASK_WORDS));
  let inputs: number[][] = seqs.map(() => PROMPT);
  let elapsed = 0;
  // Step 0 (the prompts) and 1 are untimed: they warm the pages the batch touches.
  for (let k = 0; k < o.steps + 2; k++) {
    const t0 = performance.now();
    await Promise.all(matchers.map((m, i) => m?.fillNextTokenBitmask(masks[i] as Int32Array)));
    const entries = seqs.map((s, i) => {
      const sampling = { temperature: 1, seed: i, counter: k, ...(matchers[i] ? { allowedTokens: masks[i] as Int32Array } : {}) };
      return s.entry(inputs[i] as number[], { sampling });
    });
    const results = await engine.step(entries);
    for (const [i, s] of seqs.entries()) s.advance((inputs[i] as number[]).length);
    for (const [i, m] of matchers.entries()) {
      const token = results[i]?.token as number;
      if (m && !m.accept(token)) throw new Error(`the sampler returned ${token}, which the mask did not allow`);
      if (m?.isTerminated && compiled && compiler) {
        m.dispose();
        matchers[i] = await compiler.matcher(compiled);
      }
    }
    inputs = results.map((r) => [r.token as number]);
    if (k >= 2) elapsed += performance.now() - t0;
  }
  for (const m of matchers) m?.dispose();
  for (const s of seqs) s.release();
  return (o.batch * o.steps) / (elapsed / 1000);
}

/** Median decode rate without and with constraints, and their ratio (target ≥ 0.95). */
export async function decodeWithConstraints(
  o: DecodeOptions,
  compiler: ConstraintCompiler,
): Promise<{ free: number; constrained: number }> {
  const model = await Model.load(o.dir);
  const blocks = Math.max(64, o.batch * Math.ceil((PROMPT.length + o.steps + 2) / 16) + 8);
  const engine = new Engine(model, { blockSize: 16, numFullBlocks: blocks, numSlidingBlocks: blocks });
  const free: number[] = [];
  const constrained: number[] = [];
  for (let r = 0; r < o.rounds; r++) {
    free.push(await run(engine, o, undefined));
    constrained.push(await run(engine, o, compiler));
  }
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
  return { free: median(free), constrained: median(constrained) };
}
