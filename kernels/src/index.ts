/** @expertmesh/kernels — the typed TypeScript face of the native engine. */
import { addon } from "./addon.ts";

export { KV_DTYPES, type KvCapacity, type KvDtype, type ModelConfigInfo, type ShardInfo } from "./addon.ts";
export { type Capabilities, capabilities } from "./capabilities.ts";
export { type ModelShape, parameterCount, SHAPES, type ShapeName } from "./checkpoint/shapes.ts";
export { Communicator, type CommunicatorOptions, type GlooOptions, type NcclOptions } from "./communicator.ts";
export {
  type Backend,
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

/** Machine probes for benchmarks: read bandwidth over `bytes` (best of `repeats`) and the fp32 FMA rate. Blocks ~1-3 s. */
export function probes(bytes: number, repeats = 3): { readGBps: number; fmaGflops: number } {
  return addon().probes(bytes, repeats);
}
