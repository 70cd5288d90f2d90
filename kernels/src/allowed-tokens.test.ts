/**
 * SamplingOptions.allowedTokens (#24): the native sampler's allowed-token bitmask, through the real
 * Engine on g1-tiny (vocabulary 2048: 64 mask words), on the CPU, on cuda-emu (the device sampler) and,
 * where this build sees a CUDA device, on cuda:0 (skipped, with the reason, elsewhere). Expected tokens
 * and logprobs are computed here from the unmasked logits the same step returns (returnLogits).
 */
import { describe, expect, it } from "vitest";
import {
  type Backend,
  BlockPool,
  capabilities,
  Engine,
  LocalSequence,
  Model,
  maskWords,
  NativeError,
  type SamplingOptions,
} from "./index.ts";
import { type GoldenCase, goldenCases } from "./testing/golden.ts";

const g1 = goldenCases().find((c) => c.name === "g1-tiny") as GoldenCase;
const PROMPT = g1.tokens.slice(0, 12);
const caps = capabilities();
const gpu = caps.devices.includes("cuda:0");
const why = `needs a CUDA device (CUDA compiled: ${caps.cuda.compiled}, devices: ${caps.cuda.deviceCount})`;

function maskOf(vocab: number, ids: readonly number[], words = maskWords(vocab)): Uint32Array {
  const m = new Uint32Array(words);
  for (const id of ids) m[id >>> 5] = ((m[id >>> 5] as number) | (1 << (id & 31))) >>> 0;
  return m;
}

/** The allowed ids by logit, best first (ties → lower id), and their log-sum-exp, in fp64. */
function masked(logits: Float32Array, allowed: readonly number[]) {
  const order = [...allowed].sort((a, b) => (logits[b] as number) - (logits[a] as number) || a - b);
  const max = logits[order[0] as number] as number;
  const lse = max + Math.log(allowed.reduce((z, id) => z + Math.exp((logits[id] as number) - max), 0));
  return { order, logprob: (id: number) => (logits[id] as number) - lse };
}

/** An engine on g1; `step` samples PROMPT's next token (rewriting the same KV positions each time) beside its logits. */
async function open(backend: Backend, decodeGraphs?: boolean) {
  const model = await Model.load(g1.dir);
  const engine = new Engine(model, { blockSize: 16, numFullBlocks: 16, numSlidingBlocks: 16, precision: "exact", backend, decodeGraphs });
  const full = new BlockPool(16);
  const sliding = new BlockPool(16);
  const newSeq = (positions: number) => {
    const s = new LocalSequence(engine, full, sliding);
    s.reserve(positions);
    return s;
  };
  const seq = newSeq(PROMPT.length);
  const step = async (sampling: SamplingOptions) => {
    const [r] = await engine.step([seq.entry(PROMPT, { sampling, returnLogits: true })]);
    return { ...r, logits: r?.logits as Float32Array };
  };
  return { engine, vocab: model.config.vocab, step, newSeq };
}

describe.each<Backend>(["cpu", "cuda-emu", "cuda:0"])("allowedTokens on %s", (backend) => {
  const skip = (ctx: { skip: (note: string) => void }) => backend === "cuda:0" && !gpu && ctx.skip(why);

  it("greedy picks the highest-logit allowed token; its logprob and top logprobs are the masked log-softmax", async (ctx) => {
    skip(ctx);
    const { vocab, step } = await open(backend);
    const free = await step({ temperature: 0 });
    const byLogit = masked(free.logits, [...Array(vocab).keys()]).order;
    expect(free.token).toBe(byLogit[0]);
    // The 2nd, 5th and 50th best, and ids at word edges; never the argmax.
    const allowed = [byLogit[1], byLogit[4], byLogit[49], 0, 31, 32, 1000, vocab - 1].filter((id) => id !== byLogit[0]) as number[];
    const want = masked(free.logits, allowed);
    const mask = maskOf(vocab, allowed);
    for (const allowedTokens of [mask, new Int32Array(mask.buffer)]) {
      const r = await step({ temperature: 0, topLogprobs: 5, allowedTokens });
      expect(r.token).toBe(byLogit[1]);
      expect(r.token).toBe(want.order[0]);
      expect(r.logprob).toBeCloseTo(want.logprob(r.token as number), 4);
      expect(r.topLogprobs?.map((t) => t.token)).toEqual(want.order.slice(0, 5));
      for (const t of r.topLogprobs ?? []) expect(t.logprob).toBeCloseTo(want.logprob(t.token), 4);
      expect(r.logits).toEqual(free.logits); // the raw logits are the model's, mask or not
    }
  });

  it("one allowed token: greedy or drawn, it is the token, with logprob 0 and one top logprob", async (ctx) => {
    skip(ctx);
    const { vocab, step } = await open(backend);
    const allowedTokens = maskOf(vocab, [777]);
    for (const sampling of [{ temperature: 0 }, { temperature: 1.5, topP: 0.5, seed: 3 }, { temperature: 1, topK: 40, minP: 0.5 }]) {
      const r = await step({ ...sampling, topLogprobs: 4, allowedTokens });
      expect(r.token).toBe(777);
      expect(r.logprob).toBeCloseTo(0, 5);
      expect(r.topLogprobs).toEqual([{ token: 777, logprob: r.logprob }]);
    }
  });

  it("draws with temperature, top-k/p, min-p, penalties and a +100 bias on a disallowed token stay inside the mask", async (ctx) => {
    skip(ctx);
    const { vocab, step } = await open(backend);
    const free = await step({ temperature: 0 });
    const banned = free.token as number;
    const allowed = Array.from({ length: 40 }, (_, i) => (i * 97 + 13) % vocab).filter((id) => id !== banned);
    const want = masked(free.logits, allowed);
    const seen = new Set<number>();
    for (const [counter, sampling] of [
      { temperature: 1.5, seed: 1 },
      { temperature: 1, topK: 3, seed: 2 },
      { temperature: 0.9, topP: 0.8, seed: 4 },
      { temperature: 1.2, minP: 0.05, seed: 5 },
      { temperature: 1, presencePenalty: 2, frequencyPenalty: 1, repetitionPenalty: 3, outputTokens: allowed.slice(0, 3), seed: 6 },
    ].entries()) {
      for (let k = 0; k < 3; k++) {
        const r = await step({
          ...sampling,
          counter: counter * 3 + k,
          logitBias: { [banned]: 100 },
          allowedTokens: maskOf(vocab, allowed),
        });
        expect(allowed).toContain(r.token);
        expect(r.logprob).toBeCloseTo(want.logprob(r.token as number), 4);
        seen.add(r.token as number);
      }
    }
    expect(seen.size).toBeGreaterThan(1);
    // Top-k 3 keeps the three best allowed tokens, whatever the draw.
    for (let counter = 0; counter < 6; counter++) {
      const r = await step({ temperature: 5, topK: 3, seed: 9, counter, allowedTokens: maskOf(vocab, allowed) });
      expect(want.order.slice(0, 3)).toContain(r.token);
    }
  });

  it("a null mask and an all-ones mask give results bit-identical to no mask field", async (ctx) => {
    skip(ctx);
    const { vocab, step } = await open(backend);
    const ones = new Uint32Array(maskWords(vocab)).fill(0xffffffff);
    for (const sampling of [
      { temperature: 0, topLogprobs: 5 },
      { temperature: 1, topP: 0.9, seed: 11, topLogprobs: 3 },
      { temperature: 0.7, topK: 20, minP: 0.02, presencePenalty: 0.5, outputTokens: PROMPT, seed: 12 },
    ]) {
      for (let counter = 0; counter < 3; counter++) {
        const plain = await step({ ...sampling, counter });
        const { logits: _, ...want } = plain;
        for (const allowedTokens of [null, ones]) {
          const { logits: __, ...got } = await step({ ...sampling, counter, allowedTokens });
          expect(got).toEqual(want); // numbers compared with Object.is: bit for bit
        }
      }
    }
  });

  it("ignores bits of ids ≥ vocab and words past ceil(vocab / 32)", async (ctx) => {
    skip(ctx);
    const { vocab, step } = await open(backend);
    const mask = maskOf(vocab, [5], maskWords(vocab) + 6);
    mask.fill(0xffffffff, maskWords(vocab));
    const r = await step({ temperature: 1, seed: 1, topLogprobs: 3, allowedTokens: mask });
    expect(r.token).toBe(5);
    expect(r.topLogprobs).toHaveLength(1);
  });

  it("rejects a short or mistyped mask in TypeScript, and one that allows nothing with NativeError invalid_argument", async (ctx) => {
    skip(ctx);
    const { vocab, step } = await open(backend);
    const words = maskWords(vocab);
    await expect(step({ allowedTokens: new Uint32Array(words - 1) })).rejects.toThrow(
      new RangeError(
        `seqs[0].sampling.allowedTokens has ${words - 1} words; a vocabulary of ${vocab} tokens needs ${words} (one bit per token id)`,
      ),
    );
    await expect(step({ allowedTokens: new Float32Array(words) as unknown as Uint32Array })).rejects.toThrow(
      new TypeError("seqs[0].sampling.allowedTokens must be an Int32Array or Uint32Array bitmask, got [object Float32Array]"),
    );
    const onlyPastVocab = new Uint32Array(words + 2).fill(0xffffffff, words);
    for (const allowedTokens of [new Uint32Array(words), onlyPastVocab]) {
      const err = await step({ temperature: 0, allowedTokens }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(NativeError);
      expect((err as NativeError).statusName).toBe("invalid_argument");
      expect((err as NativeError).message).toBe(`sample: the allowed-token mask allows no token id below the vocabulary size ${vocab}`);
    }
    // The step failed before any work: the engine steps on.
    expect((await step({ temperature: 0, allowedTokens: maskOf(vocab, [9]) })).token).toBe(9);
  });
});

describe.each<Backend>(["cuda-emu", "cuda:0"])("allowedTokens with decode graphs on %s", (backend) => {
  it("masked decode steps replayed from graphs draw what eager steps draw", async (ctx) => {
    if (backend === "cuda:0" && !gpu) ctx.skip(why);
    const run = async (decodeGraphs: boolean) => {
      const { engine, vocab, newSeq } = await open(backend, decodeGraphs);
      const seqs = [newSeq(PROMPT.length + 4), newSeq(PROMPT.length + 4)];
      const allowed = [
        maskOf(vocab, [3, 700, 1500, 2000]),
        maskOf(
          vocab,
          Array.from({ length: 64 }, (_, i) => i * 31),
        ),
      ];
      let inputs = [PROMPT, PROMPT.slice(0, 7)];
      const tokens: number[][] = [];
      for (let k = 0; k < 4; k++) {
        const sampling = (i: number): SamplingOptions => ({
          temperature: 1,
          seed: 21 + i,
          counter: k,
          allowedTokens: allowed[i] as Uint32Array,
        });
        const results = await engine.step(seqs.map((s, i) => s.entry(inputs[i] as number[], { sampling: sampling(i) })));
        for (const [i, s] of seqs.entries()) s.advance((inputs[i] as number[]).length);
        inputs = results.map((r) => [r.token as number]);
        tokens.push(results.map((r) => r.token as number));
      }
      return { tokens, stats: engine.graphStats() };
    };
    const eager = await run(false);
    const graphed = await run(true);
    expect(graphed.tokens).toEqual(eager.tokens);
    expect(graphed.stats.replays).toBeGreaterThan(0);
    for (const [a, b] of eager.tokens) {
      expect([3, 700, 1500, 2000]).toContain(a);
      expect((b as number) % 31).toBe(0);
    }
  });
});
