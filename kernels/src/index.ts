/** @expertmesh/kernels — the typed TypeScript face of the native engine. */
export type { ModelConfigInfo, ShardInfo } from "./addon.ts";
export { type Capabilities, capabilities } from "./capabilities.ts";
export { Engine, type EngineOptions, type StepResult, type StepSequence, type TokenLogprob } from "./engine.ts";
export { BlockPool } from "./kv-blocks.ts";
export { type LoadOptions, Model } from "./model.ts";
export { NativeError, NativeStatus, type NativeStatusName } from "./native-error.ts";
export type { SamplingOptions } from "./sampling.ts";
export { LocalSequence } from "./sequence.ts";
