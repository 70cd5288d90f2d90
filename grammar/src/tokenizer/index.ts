/**
 * @expertmesh/grammar/tokenizer — the o200k_harmony tokenizer (spec §5): byte-level BPE over o200k_base's
 * ranks plus the Harmony specials, streaming decode, and the work budget that bounds encoding. The gateway
 * renders and reads prompts with it; the worker's constrained decoding encodes forced text with it.
 */

export { type Clock, deadlineBudget, threadCpuClock, type WorkBudget, wallClock } from "./budget.ts";
export { byteLevelBytes, byteLevelString } from "./byte-level.ts";
export { FIRST_SPECIAL, HarmonyTokenizer, Special, StreamDecoder, VOCAB_SIZE } from "./tokenizer.ts";
