/**
 * Engine: a Model plus its paged KV cache, running batched steps off the event loop. A step mixes
 * sequences at any stage: a prefill chunk is many rows of one sequence, a decode step is one row.
 * Arguments are validated here with exact messages before they cross into C++.
 */
import { addon, KV_DTYPES, type KvCapacity, type KvDtype, type RawEngine, type RawStepOutput } from "./addon.ts";
import type { Communicator } from "./communicator.ts";
import type { Model } from "./model.ts";
import { type PackedSampling, packSampling, SAMPLING_FLOATS, SAMPLING_INTS, type SamplingOptions } from "./sampling.ts";

const SEQ_INTS = 9;

export interface TokenLogprob {
  token: number;
  logprob: number;
}

/** What a step returns for one sequence. */
export interface StepResult {
  /** [rows, vocab] logits when returnLogits (rows = tokens.length with allLogits, else 1). */
  logits?: Float32Array;
  /** The sampled next token, when sampling was requested. */
  token?: number;
  /** Its logprob (log-softmax of the raw logits; over the allowed tokens when sampling.allowedTokens is set). */
  logprob?: number;
  topLogprobs?: TokenLogprob[];
}

export interface EngineOptions {
  /** Tokens per KV block (default 16). */
  blockSize?: number;
  /** Blocks of the full-attention layers (every position of every sequence). */
  numFullBlocks: number;
  /** Blocks of the sliding-window layers: a sequence needs only those covering its last `window` positions. */
  numSlidingBlocks: number;
  /**
   * This rank's place in an expert-parallel group (the model must be loaded as the same rank's shard).
   * Rank 0 steps and broadcasts each step's plan; other ranks call follow().
   */
  communicator?: Communicator;
  /**
   * Numerics (default "default"): "exact" keeps fp32 activations everywhere (the golden tolerances'
   * exact mode); "default" quantizes the MXFP4 expert products' activations to int8 per 32-element block
   * (integer dot products, ~2× faster decode; relative L2 to exact well under the 3e-2 serving tolerance).
   * Every rank of a group must use the same.
   */
  precision?: Precision;
  /**
   * How the KV cache stores keys and values (default: "f32" in exact precision, "bf16" in default
   * precision): bf16 halves the bytes per token, so the same memory holds twice the tokens and decode
   * reads half the cache; "fp8" (e4m3 codes with one fp32 scale per row of head_dim elements) holds
   * about four times fp32's tokens at a measured cost in accuracy (docs/PERFORMANCE.md); attention
   * widens to fp32 on load. See kvCapacity().
   */
  kvDtype?: KvDtype;
  /**
   * How the dense weights are read (default "bf16", as the checkpoint holds them): "q8" converts the
   * unembedding to 8-bit codes with one fp32 scale per 32 weights when the engine is created (a few
   * seconds at the 20b shape), so a decode step reads ~15 % fewer bytes, within the serving tolerances;
   * "q8-attention" converts the attention projections too (~30 % fewer bytes, a larger deviation). The
   * router and the embedding stay bf16. Products over q8 weights quantize their activations as the
   * default precision does, even in exact precision. Accuracy: docs/PERFORMANCE.md.
   */
  denseWeights?: DenseWeights;
  /**
   * CPU backend (default false): copy the weights once, at creation, out of the checkpoint's file
   * mapping into anonymous memory in 2 MiB huge pages, so decode steps stream them with one TLB entry
   * per 2 MiB instead of per 4 KiB page (measured in docs/PERFORMANCE.md). Costs the weights' size in
   * process memory (the page cache's copy can then be dropped by the kernel) and the copy's time at load.
   * Other backends copy into their own memory either way.
   */
  residentWeights?: boolean;
  /**
   * Where the ops run (default "cpu"), chosen once for the engine's life: "cpu", "cuda:N" (GPU N; fails
   * with NativeError invalid_argument when the build has no CUDA or there is no device N), or "cuda-emu"
   * (the CUDA kernels run on the CPU by the project's emulator: slow, for tests).
   */
  backend?: Backend;
  /**
   * Decode steps replayed from captured launch graphs, padded to batch buckets 1, 2, 4, …, 128
   * (default: on for cuda:N, off elsewhere; cuda-emu can turn them on to check them, cpu has none).
   * A group of several ranks runs eagerly either way. The logits are those of eager steps.
   */
  decodeGraphs?: boolean;
}

export type Backend = "cpu" | "cuda-emu" | `cuda:${number}`;
const BACKEND = /^(cpu|cuda-emu|cuda:\d+)$/;

/** Whether `s` names a backend ("cpu", "cuda-emu" or "cuda:N"), for callers that validate their own settings. */
export function isBackend(s: unknown): s is Backend {
  return typeof s === "string" && BACKEND.test(s);
}

export type Precision = "exact" | "default";
export const PRECISIONS: readonly Precision[] = ["exact", "default"];

export type DenseWeights = "bf16" | "q8" | "q8-attention";
export const DENSE_WEIGHTS: readonly DenseWeights[] = ["bf16", "q8", "q8-attention"];
/** gptoss_dense_weights' values. */
const DENSE_TYPE = { bf16: 0, q8: 1, "q8-attention": 2 } as const satisfies Record<DenseWeights, number>;

export interface StepSequence {
  /** This step's token ids of the sequence (a prefill chunk, or one decode token). */
  tokens: ArrayLike<number>;
  /** Absolute position of tokens[0]: the number of tokens already in the KV cache. */
  posBegin: number;
  /** Full-layer block table covering positions [0, posBegin + tokens.length). */
  fullBlocks: readonly number[];
  /**
   * Sliding-layer block table, also by position; entries wholly before the window (index below
   * firstLiveSlidingBlock(posBegin)) may be -1 once the caller has freed them.
   */
  slidingBlocks: readonly number[];
  /** Logits for every row (teacher forcing) instead of the last row only. */
  allLogits?: boolean;
  /** Return the logits rows (default: true unless sampling is set). */
  returnLogits?: boolean;
  /** Sample the next token from the last row in native code. */
  sampling?: SamplingOptions;
}

/** gptoss_kv_type's values. */
const KV_TYPE = { f32: 0, bf16: 1, fp8: 2 } as const satisfies Record<KvDtype, number>;

export class Engine {
  readonly model: Model;
  readonly blockSize: number;
  readonly numFullBlocks: number;
  readonly numSlidingBlocks: number;
  /** Sliding window of the model, in positions. */
  readonly window: number;
  /** This engine's rank and group size (0 / 1 without a communicator). */
  readonly rank: number;
  readonly world: number;
  readonly precision: Precision;
  readonly kvDtype: KvDtype;
  readonly denseWeights: DenseWeights;
  /** The backend the native engine reports it runs on. */
  readonly backend: string;
  readonly #raw: RawEngine;
  #busy = false;

  constructor(model: Model, options: EngineOptions) {
    const blockSize = options.blockSize ?? 16;
    for (const [name, v, min] of [
      ["blockSize", blockSize, 1],
      ["numFullBlocks", options.numFullBlocks, 1],
      ["numSlidingBlocks", options.numSlidingBlocks, 1],
    ] as const) {
      if (!Number.isInteger(v) || v < min || v > 2 ** 31 - 1) throw new RangeError(`${name} must be an integer >= ${min}, got ${v}`);
    }
    this.model = model;
    this.blockSize = blockSize;
    this.numFullBlocks = options.numFullBlocks;
    this.numSlidingBlocks = options.numSlidingBlocks;
    this.window = model.config.slidingWindow;
    const comm = options.communicator;
    if (comm && (comm.rank !== model.shard.rank || comm.world !== model.shard.world))
      throw new RangeError(
        `communicator is rank ${comm.rank} of ${comm.world} but the model was loaded as rank ${model.shard.rank} of ${model.shard.world}`,
      );
    this.rank = comm?.rank ?? 0;
    this.world = comm?.world ?? 1;
    const precision = options.precision ?? "default";
    if (!PRECISIONS.includes(precision))
      throw new RangeError(`precision must be one of ${PRECISIONS.join(", ")}, got ${String(precision)}`);
    this.precision = precision;
    const kvDtype = options.kvDtype ?? (precision === "exact" ? "f32" : "bf16");
    if (!KV_DTYPES.includes(kvDtype)) throw new RangeError(`kvDtype must be one of ${KV_DTYPES.join(", ")}, got ${String(kvDtype)}`);
    this.kvDtype = kvDtype;
    const denseWeights = options.denseWeights ?? "bf16";
    if (!DENSE_WEIGHTS.includes(denseWeights))
      throw new RangeError(`denseWeights must be one of ${DENSE_WEIGHTS.join(", ")}, got ${String(denseWeights)}`);
    this.denseWeights = denseWeights;
    const backend = options.backend ?? "cpu";
    if (!isBackend(backend)) throw new RangeError(`backend must be "cpu", "cuda-emu" or "cuda:N", got ${String(backend)}`);
    const graphs = options.decodeGraphs === undefined ? 0 : options.decodeGraphs ? 1 : -1;
    this.#raw = addon().createEngine(
      model.raw.handle,
      blockSize,
      options.numFullBlocks,
      options.numSlidingBlocks,
      comm?.raw,
      backend,
      graphs,
      KV_TYPE[kvDtype],
      DENSE_TYPE[denseWeights],
      options.residentWeights ?? false,
      precision === "exact" ? 0 : 1,
    );
    this.backend = this.#raw.backend;
  }

  /** Decode graphs captured so far, and decode steps that replayed one. */
  graphStats(): { captures: number; replays: number } {
    return addon().engineGraphStats(this.#raw);
  }

  /** What the KV cache holds on this rank, in the element type of `kvDtype`. */
  kvCapacity(): KvCapacity {
    return addon().engineKvCapacity(this.#raw);
  }

  /** Follower ranks (> 0): runs the leader's steps in lockstep; resolves when the leader stops them. */
  follow(): Promise<void> {
    if (this.rank === 0) return Promise.reject(new Error("Engine.follow: rank 0 leads; only ranks > 0 follow"));
    return addon().engineCall(this.#raw, "follow");
  }

  /** Leader: ends the followers' follow(). */
  stopFollowers(): Promise<void> {
    return addon().engineCall(this.#raw, "stopFollowers");
  }

  /** Leader, while idle: keeps the followers' waits (bounded by the watchdog) alive. */
  keepalive(): Promise<void> {
    return addon().engineCall(this.#raw, "keepalive");
  }

  /** Blocks needed to hold `positions` tokens (either table). */
  blocksFor(positions: number): number {
    return Math.ceil(positions / this.blockSize);
  }

  /** The first sliding block a step starting at `posBegin` reads; blocks before it may be freed. */
  firstLiveSlidingBlock(posBegin: number): number {
    return Math.floor(Math.max(0, posBegin - this.window + 1) / this.blockSize);
  }

  /**
   * Runs one step. Resolves to one StepResult per sequence, in order. Steps on one engine never overlap.
   */
  async step(seqs: readonly StepSequence[]): Promise<StepResult[]> {
    if (this.#busy) throw new Error("Engine.step: a step is already running on this engine; await it first");
    if (!Array.isArray(seqs) || seqs.length === 0) throw new TypeError("Engine.step: seqs must be a non-empty array");
    const { vocab, maxPositions } = this.model.config;
    let numTokens = 0;
    let numBlocks = 0;
    seqs.forEach((s, i) => {
      const where = `seqs[${i}]`;
      if (s.tokens.length === 0) throw new RangeError(`${where}.tokens must not be empty`);
      if (!Number.isInteger(s.posBegin) || s.posBegin < 0)
        throw new RangeError(`${where}.posBegin must be a non-negative integer, got ${s.posBegin}`);
      const end = s.posBegin + s.tokens.length;
      if (end > maxPositions) throw new RangeError(`${where}: positions up to ${end} exceed the context length ${maxPositions}`);
      for (let t = 0; t < s.tokens.length; t++) {
        const id = s.tokens[t] as number;
        if (!Number.isInteger(id) || id < 0 || id >= vocab)
          throw new RangeError(`${where}.tokens[${t}] = ${id} is not a token id in [0, ${vocab})`);
      }
      if (s.fullBlocks.length < this.blocksFor(end)) {
        throw new RangeError(`${where}.fullBlocks has ${s.fullBlocks.length} blocks; positions [0, ${end}) need ${this.blocksFor(end)}`);
      }
      if (s.slidingBlocks.length < this.blocksFor(end)) {
        throw new RangeError(
          `${where}.slidingBlocks has ${s.slidingBlocks.length} blocks; positions [0, ${end}) need ${this.blocksFor(end)}`,
        );
      }
      for (const b of s.fullBlocks) {
        if (!Number.isInteger(b) || b < 0 || b >= this.numFullBlocks)
          throw new RangeError(`${where}: block id ${b} is not in [0, ${this.numFullBlocks})`);
      }
      const firstLive = this.firstLiveSlidingBlock(s.posBegin);
      s.slidingBlocks.forEach((b: number, k: number) => {
        if (b === -1 && k < firstLive) return;
        if (!Number.isInteger(b) || b < 0 || b >= this.numSlidingBlocks) {
          throw new RangeError(`${where}: sliding block ${k} (id ${b}) is not in [0, ${this.numSlidingBlocks})`);
        }
      });
      numTokens += s.tokens.length;
      numBlocks += s.fullBlocks.length + s.slidingBlocks.length;
    });

    const sampling: PackedSampling[] = [];
    seqs.forEach((s, i) => {
      if (s.sampling) sampling.push(packSampling(s.sampling, vocab, `seqs[${i}].sampling`));
    });
    const tokens = new Int32Array(numTokens);
    const packed = new Int32Array(seqs.length * SEQ_INTS);
    const blocks = new Int32Array(numBlocks);
    const sampF = new Float64Array(sampling.length * SAMPLING_FLOATS);
    const sampI = new Int32Array(sampling.length * SAMPLING_INTS);
    const auxLen = sampling.reduce((n, p) => n + p.bias.length + p.prompt.length + p.output.length, 0);
    const aux = new Int32Array(auxLen);
    const auxF = new Float32Array(auxLen);
    let a = 0;
    sampling.forEach((p, k) => {
      sampF.set(p.floats, k * SAMPLING_FLOATS);
      const biasOffset = a;
      for (const [id, v] of p.bias) {
        aux[a] = id;
        auxF[a++] = v;
      }
      const promptOffset = a;
      for (let i = 0; i < p.prompt.length; i++) aux[a++] = p.prompt[i] as number;
      const outputOffset = a;
      for (let i = 0; i < p.output.length; i++) aux[a++] = p.output[i] as number;
      sampI.set([biasOffset, p.bias.length, promptOffset, p.prompt.length, outputOffset, p.output.length], k * SAMPLING_INTS);
    });
    let tok = 0;
    let blk = 0;
    let logitFloats = 0;
    let samplingIndex = 0;
    seqs.forEach((s, i) => {
      for (let t = 0; t < s.tokens.length; t++) tokens[tok++] = s.tokens[t] as number;
      const fullOffset = blk;
      for (const b of s.fullBlocks) blocks[blk++] = b;
      const slidingOffset = blk;
      for (const b of s.slidingBlocks) blocks[blk++] = b;
      const returnLogits = s.returnLogits ?? !s.sampling;
      if (returnLogits) logitFloats += (s.allLogits ? s.tokens.length : 1) * vocab;
      const sIdx = s.sampling ? samplingIndex++ : -1;
      packed.set(
        [
          s.tokens.length,
          s.posBegin,
          s.allLogits ? 1 : 0,
          returnLogits ? 1 : 0,
          fullOffset,
          s.fullBlocks.length,
          slidingOffset,
          s.slidingBlocks.length,
          sIdx,
        ],
        i * SEQ_INTS,
      );
    });

    this.#busy = true;
    let raw: RawStepOutput;
    try {
      const masks = sampling.map((p) => p.allowed);
      raw = await addon().step(this.#raw, tokens, packed, blocks, sampF, sampI, aux, auxF, logitFloats, masks);
    } finally {
      this.#busy = false;
    }
    let offset = 0;
    return seqs.map((s, i) => {
      const result: StepResult = {};
      if (s.returnLogits ?? !s.sampling) {
        const n = (s.allLogits ? s.tokens.length : 1) * vocab;
        result.logits = raw.logits.subarray(offset, offset + n);
        offset += n;
      }
      if (s.sampling) {
        result.token = raw.tokens[i] as number;
        result.logprob = raw.logprobs[i] as number;
        const n = raw.topCounts[i] as number;
        result.topLogprobs = Array.from({ length: n }, (_, j) => ({
          token: raw.topIds[i * 20 + j] as number,
          logprob: raw.topLogprobs[i * 20 + j] as number,
        }));
      }
      return result;
    });
  }
}
