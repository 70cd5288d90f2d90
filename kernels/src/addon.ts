/**
 * Loads the compiled addon (build/Release/expertmesh_kernels.node) once and registers the error class.
 * The raw addon is untyped; this file is the only place that touches it.
 */
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { NativeError } from "./native-error.ts";

export interface RawCapabilities {
  cpu: {
    avx2: boolean;
    fma: boolean;
    avx512f: boolean;
    avx512bw: boolean;
    avx512bf16: boolean;
    avx512vnni: boolean;
    avxvnni: boolean;
    amxBf16: boolean;
    amxInt8: boolean;
    logicalCores: number;
  };
  cuda: { compiled: boolean; deviceCount: number; architectures: string; error: string };
  nccl: { loadable: boolean; version: number };
  gloo: { compiled: boolean; usable: boolean };
}

export interface ModelConfigInfo {
  numLayers: number;
  hidden: number;
  intermediate: number;
  numExperts: number;
  expertsPerToken: number;
  numQHeads: number;
  numKvHeads: number;
  headDim: number;
  vocab: number;
  slidingWindow: number;
  maxPositions: number;
  eosTokenId: number;
  originalFormat: boolean;
}

export interface ShardInfo {
  rank: number;
  world: number;
  qHeadBegin: number;
  qHeadEnd: number;
  kvHeadBegin: number;
  kvHeadEnd: number;
  experts: number[];
  /** MXFP4 bytes (blocks + scales) of this rank's experts, all layers. */
  expertBytes: number;
}

/** Opaque native handles. */
export type ModelHandle = { readonly __brand: "ModelHandle" };
export type EngineHandle = { readonly __brand: "EngineHandle" };
export type CommHandle = { readonly __brand: "CommHandle" };

export interface RawCommunicator {
  handle: CommHandle;
}

/** Any typed array (not a DataView): collectives move its bytes. */
export type TypedArray =
  | Int8Array
  | Uint8Array
  | Uint8ClampedArray
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | Float32Array
  | Float64Array
  | BigInt64Array
  | BigUint64Array;

/** Validated by communicator.ts; read by binding/communicator.cpp ConnectCommunicator. */
export interface RawCommunicatorOptions {
  transport: "gloo" | "nccl";
  rank: number;
  world: number;
  timeoutMs: number;
  rendezvous?: string;
  ncclUniqueId?: Uint8Array;
  device?: number;
}

export interface RawModel {
  config: ModelConfigInfo;
  shard: ShardInfo;
  handle: ModelHandle;
}

export interface RawEngine {
  handle: EngineHandle;
  /** The backend the engine's steps run on, as the engine reports it. */
  backend: string;
}

/** What an engine's KV cache holds on its rank (gptoss_kv_capacity). */
export interface KvCapacity {
  /** Both pools, in the backend's memory. */
  bytes: number;
  /** One token's keys and values in every layer. */
  bytesPerToken: number;
  /** Tokens each pool holds (blocks × block size). */
  fullTokens: number;
  slidingTokens: number;
  dtype: KvDtype;
}

/** How the KV cache stores keys and values. */
export type KvDtype = "f32" | "bf16" | "fp8";
export const KV_DTYPES: readonly KvDtype[] = ["f32", "bf16", "fp8"];

export interface RawStepOutput {
  logits: Float32Array;
  tokens: Int32Array;
  logprobs: Float32Array;
  topCounts: Int32Array;
  topIds: Int32Array;
  topLogprobs: Float32Array;
}

export interface Addon {
  setErrorClass(ctor: typeof NativeError): void;
  capabilities(): RawCapabilities;
  probes(bytes: number, passes: number): { readGBps: number[]; readOnCpu: number[]; fmaGflops: number };
  readModelConfig(dir: string): ModelConfigInfo;
  loadModel(dir: string, rank: number, world: number, experts: Int32Array | null): Promise<RawModel>;
  createEngine(
    model: ModelHandle,
    blockSize: number,
    numFullBlocks: number,
    numSlidingBlocks: number,
    communicator?: RawCommunicator,
    backend?: string,
    /** 1 on, -1 off, 0 the backend's default. */
    decodeGraphs?: number,
    /** gptoss_kv_type: 0 f32, 1 bf16, 2 fp8. */
    kvType?: 0 | 1 | 2,
    /** gptoss_dense_weights: 0 bf16, 1 q8 (unembedding), 2 q8 attention projections too. */
    denseWeights?: 0 | 1 | 2,
    /** cpu: copy the weights into huge-page memory once. */
    residentWeights?: boolean,
    /** The gptoss_precision it starts in: 0 exact, 1 serving. */
    precision?: 0 | 1,
  ): RawEngine;
  engineGraphStats(engine: RawEngine): { captures: number; replays: number };
  engineKvCapacity(engine: RawEngine): KvCapacity;
  /** 0 = exact, 1 = serving (gptoss_precision). */
  setEnginePrecision(engine: RawEngine, precision: 0 | 1): void;
  connectCommunicator(options: RawCommunicatorOptions): Promise<RawCommunicator>;
  ncclUniqueId(): Promise<Uint8Array>;
  commAllReduceSum(comm: RawCommunicator, data: Float32Array): Promise<void>;
  commBroadcast(comm: RawCommunicator, data: TypedArray, root: number): Promise<void>;
  commAllGather(comm: RawCommunicator, input: TypedArray, output: TypedArray): Promise<void>;
  commBarrier(comm: RawCommunicator): Promise<void>;
  commAbort(comm: RawCommunicator, reason: string): void;
  engineCall(engine: RawEngine, call: "follow" | "stopFollowers" | "keepalive"): Promise<void>;
  /** Packed arguments; the layout is documented in binding/engine.cpp and built by engine.ts. */
  step(
    engine: RawEngine,
    tokens: Int32Array,
    seqs: Int32Array,
    blocks: Int32Array,
    samplingFloats: Float64Array,
    samplingInts: Int32Array,
    aux: Int32Array,
    auxFloats: Float32Array,
    logitFloats: number,
    /** Per sampling: its allowed-token mask (the caller's array, copied natively) or null. */
    masks: ReadonlyArray<Int32Array | Uint32Array | null>,
  ): Promise<RawStepOutput>;
}

const addonPath = join(dirname(fileURLToPath(import.meta.url)), "../build/Release/expertmesh_kernels.node");
let loaded: Addon | undefined;

export function addon(): Addon {
  if (loaded) return loaded;
  if (!existsSync(addonPath)) {
    throw new Error(`native addon not built: ${addonPath} is missing (run: npx turbo run build --filter=@expertmesh/kernels)`);
  }
  const mod = createRequire(import.meta.url)(addonPath) as Addon;
  mod.setErrorClass(NativeError);
  loaded = mod;
  return mod;
}
