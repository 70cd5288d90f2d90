/**
 * @expertmesh/grammar — constrained decoding for Harmony, for the worker: compiles constraint specs to
 * xgrammar grammars over the o200k_harmony vocabulary and runs one matcher per sequence. The spec
 * itself (what the gateway builds) is in ./spec and the o200k_harmony tokenizer (which both use) in
 * ./tokenizer, each importable without loading xgrammar.
 */
export {
  type CompiledConstraint,
  ConstraintCompiler,
  type ConstraintCompilerOptions,
  DEFAULT_COMPILER_OPTIONS,
} from "./engine/compiler.ts";
export { BITMASK_WORDS, ConstraintMatcher, type JumpForwardPiece } from "./engine/matcher.ts";
export { encodeText, harmonyVocabulary, VOCAB_SIZE } from "./engine/vocabulary.ts";
export { type GrammarErrorCode, grammarErrors } from "./errors.ts";
export type { GrammarVariant } from "./harmony/grammar.ts";
export { HarmonyToken } from "./harmony/markers.ts";
export { HarmonyProgress } from "./harmony/progress.ts";
export * from "./spec/index.ts";
