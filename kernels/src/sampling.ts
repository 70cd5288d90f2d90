/**
 * Sampling options for one sequence's next token, validated here with exact messages and packed for the
 * native sampler (cpu/sample.cpp). Penalties follow OpenAI (presence/frequency over generated tokens)
 * and HF/vLLM (repetition over prompt and generated tokens).
 */
export interface SamplingOptions {
  /** 0 = greedy (default). */
  temperature?: number;
  topP?: number;
  topK?: number;
  minP?: number;
  presencePenalty?: number;
  frequencyPenalty?: number;
  repetitionPenalty?: number;
  /** Per-request seed (unsigned 64-bit); with `counter` it fixes the draw whatever the batch. */
  seed?: bigint | number;
  /** Index of the token being sampled within its request (0 for the first generated token). */
  counter?: number;
  /** Alternatives to report with their logprobs (0-20). */
  topLogprobs?: number;
  /** Token id → bias added to its logit (-100..100). */
  logitBias?: ReadonlyMap<number, number> | Readonly<Record<number, number>>;
  promptTokens?: ArrayLike<number>;
  outputTokens?: ArrayLike<number>;
  /**
   * Allowed-token bitmask (constrained decoding), xgrammar's layout: bit (id & 31) of word (id >> 5) set
   * = token id allowed; at least ceil(vocab / 32) words (later words, and bits of ids ≥ vocab, are
   * ignored). A disallowed token is out before everything else (logitBias, penalties, greedy or the
   * temperature cuts), and the logprobs (the token's and topLogprobs) are those of the masked
   * distribution, so topLogprobs holds at most as many entries as the mask allows. The array is handed to
   * native code as it is (no repacking) and copied there once per step. Absent or null: every token is
   * allowed. A mask that allows no token below vocab fails the step with NativeError invalid_argument.
   */
  allowedTokens?: Int32Array | Uint32Array | null;
}

export const SAMPLING_FLOATS = 11;
export const SAMPLING_INTS = 6;

function num(name: string, v: number | undefined, dflt: number, ok: (x: number) => boolean, range: string): number {
  const x = v ?? dflt;
  if (typeof x !== "number" || !Number.isFinite(x) || !ok(x)) throw new RangeError(`sampling.${name} must be ${range}, got ${String(v)}`);
  return x;
}

export interface PackedSampling {
  floats: number[];
  bias: Array<[number, number]>;
  prompt: ArrayLike<number>;
  output: ArrayLike<number>;
  /** The caller's mask, viewed as its first ceil(vocab / 32) words (a view, not a copy), or null. */
  allowed: Int32Array | Uint32Array | null;
}

/** Words of an allowed-token bitmask for a vocabulary of `vocab` tokens. */
export function maskWords(vocab: number): number {
  return Math.ceil(vocab / 32);
}

function allowedOf(mask: unknown, vocab: number, name: string): Int32Array | Uint32Array | null {
  if (mask === undefined || mask === null) return null;
  if (!(mask instanceof Int32Array || mask instanceof Uint32Array))
    throw new TypeError(`${name} must be an Int32Array or Uint32Array bitmask, got ${Object.prototype.toString.call(mask)}`);
  const words = maskWords(vocab);
  if (mask.length < words)
    throw new RangeError(`${name} has ${mask.length} words; a vocabulary of ${vocab} tokens needs ${words} (one bit per token id)`);
  return mask.length === words ? mask : mask.subarray(0, words);
}

export function packSampling(o: SamplingOptions, vocab: number, where: string): PackedSampling {
  const name = (n: string) => `${where}.${n}`;
  const temperature = num(name("temperature"), o.temperature, 0, (x) => x >= 0 && x <= 100, "a number in [0, 100]");
  const topP = num(name("topP"), o.topP, 1, (x) => x > 0 && x <= 1, "a number in (0, 1]");
  const topK = num(name("topK"), o.topK, 0, (x) => Number.isInteger(x) && x >= 0, "a non-negative integer");
  const minP = num(name("minP"), o.minP, 0, (x) => x >= 0 && x <= 1, "a number in [0, 1]");
  const presence = num(name("presencePenalty"), o.presencePenalty, 0, (x) => x >= -2 && x <= 2, "a number in [-2, 2]");
  const frequency = num(name("frequencyPenalty"), o.frequencyPenalty, 0, (x) => x >= -2 && x <= 2, "a number in [-2, 2]");
  const repetition = num(name("repetitionPenalty"), o.repetitionPenalty, 1, (x) => x > 0 && x <= 10, "a number in (0, 10]");
  const counter = num(name("counter"), o.counter, 0, (x) => Number.isInteger(x) && x >= 0, "a non-negative integer");
  const topLogprobs = num(name("topLogprobs"), o.topLogprobs, 0, (x) => Number.isInteger(x) && x >= 0 && x <= 20, "an integer in [0, 20]");
  const seed = BigInt(o.seed ?? 0);
  if (seed < 0n || seed >= 1n << 64n) throw new RangeError(`${name("seed")} must be an unsigned 64-bit integer, got ${String(o.seed)}`);
  const bias: Array<[number, number]> = [];
  const entries =
    o.logitBias instanceof Map ? [...o.logitBias.entries()] : Object.entries(o.logitBias ?? {}).map(([k, v]) => [Number(k), v]);
  for (const [id, value] of entries as Array<[number, number]>) {
    if (!Number.isInteger(id) || id < 0 || id >= vocab)
      throw new RangeError(`${name("logitBias")}: token id ${id} is not in [0, ${vocab})`);
    if (typeof value !== "number" || !Number.isFinite(value) || value < -100 || value > 100) {
      throw new RangeError(`${name("logitBias")}[${id}] must be a number in [-100, 100], got ${String(value)}`);
    }
    bias.push([id, value]);
  }
  for (const [field, list] of [
    ["promptTokens", o.promptTokens],
    ["outputTokens", o.outputTokens],
  ] as const) {
    for (let i = 0; list && i < list.length; i++) {
      const t = list[i] as number;
      if (!Number.isInteger(t) || t < 0 || t >= vocab)
        throw new RangeError(`${name(field)}[${i}] = ${t} is not a token id in [0, ${vocab})`);
    }
  }
  return {
    floats: [
      temperature,
      topP,
      topK,
      minP,
      presence,
      frequency,
      repetition,
      Number(seed >> 32n),
      Number(seed & 0xffffffffn),
      counter,
      topLogprobs,
    ],
    bias,
    prompt: o.promptTokens ?? [],
    output: o.outputTokens ?? [],
    allowed: allowedOf(o.allowedTokens, vocab, name("allowedTokens")),
  };
}
