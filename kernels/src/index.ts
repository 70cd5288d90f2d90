/** @expertmesh/kernels — the typed TypeScript face of the native engine. */
import { addon } from "./addon.ts";

export { KV_DTYPES, type KvCapacity, type KvDtype, type ModelConfigInfo, type ShardInfo } from "./addon.ts";
export { type Capabilities, capabilities } from "./capabilities.ts";
export { type ModelShape, parameterCount, SHAPES, type ShapeName } from "./checkpoint/shapes.ts";
export { Communicator, type CommunicatorOptions, type GlooOptions, type NcclOptions } from "./communicator.ts";
export {
  type Backend,
  DENSE_WEIGHTS,
  type DenseWeights,
  Engine,
  type EngineOptions,
  isBackend,
  PRECISIONS,
  type Precision,
  type StepResult,
  type StepSequence,
  type TokenLogprob,
} from "./engine.ts";
export { BlockPool } from "./kv-blocks.ts";
export { type LoadOptions, Model } from "./model.ts";
export { COMM_FAILURES, type CommFailure, NativeError, NativeStatus, type NativeStatusName } from "./native-error.ts";
export { maskWords, type SamplingOptions } from "./sampling.ts";
export { LocalSequence, trimSlidingWindow } from "./sequence.ts";

/**
 * Machine probes for benchmarks: read bandwidth over a buffer of `bytes` on all threads, one figure (GB/s)
 * per timed pass (page faults and one warm-up pass untimed) with, per pass, the least share of the pass
 * that any thread spent on a CPU (`readOnCpu`: ≈ 1 when no thread lost its core to another process), and
 * the best fp32 FMA rate of three. Summarizing the passes is the caller's choice (bench/engine takes the
 * median of the undisturbed ones). Blocks ~1-3 s.
 */
export function probes(bytes: number, passes = 5): { readGBps: number[]; readOnCpu: number[]; fmaGflops: number } {
  if (!Number.isSafeInteger(bytes) || bytes < 1024 ** 2) throw new RangeError(`probes: bytes must be an integer ≥ 1 MiB, got ${bytes}`);
  if (!Number.isInteger(passes) || passes < 1 || passes > 1000)
    throw new RangeError(`probes: passes must be an integer in 1..1000, got ${passes}`);
  return addon().probes(bytes, passes);
}
