/**
 * The o200k_harmony vocabulary as xgrammar sees it, built once per process. Ordinary tokens (ids below
 * 199998) carry their BPE bytes, written in the GPT-2 byte-to-character form xgrammar's "byte_level"
 * vocabulary type decodes (tokens may end mid UTF-8 character). The seven Harmony specials the grammar
 * uses carry their markers (markers.ts); every other special, the reserved ids and the one ordinary
 * token holding the marker byte get an empty string, which xgrammar treats as never allowed.
 * Token bytes come from the o200k_harmony tokenizer (../tokenizer), the one the gateway renders prompts with.
 */
import { MARKER_BYTE, markerOfToken } from "../harmony/markers.ts";
import { byteLevelString } from "../tokenizer/byte-level.ts";
import { FIRST_SPECIAL, HarmonyTokenizer, VOCAB_SIZE } from "../tokenizer/tokenizer.ts";

export { FIRST_SPECIAL, VOCAB_SIZE };
/** <|endoftext|>: xgrammar needs at least one stop token; the Harmony grammar never allows it. */
export const ENDOFTEXT = 199999;

export interface HarmonyVocabulary {
  /** Per id, the string handed to xgrammar's TokenizerInfo ("byte_level" encoding). */
  readonly encoded: readonly string[];
  /** Per id, the token's bytes as the model means them (empty for specials). */
  readonly bytes: readonly Uint8Array[];
}

let tokenizer: HarmonyTokenizer | undefined;

/** The process's o200k_harmony tokenizer, built on first use (its tables take the thread a while). */
export function harmonyTokenizer(): HarmonyTokenizer {
  tokenizer ??= new HarmonyTokenizer();
  return tokenizer;
}

let built: HarmonyVocabulary | undefined;

/** The vocabulary, built on first use from the tokenizer's token bytes (the result is kept). */
export function harmonyVocabulary(): HarmonyVocabulary {
  if (built) return built;
  const tok = harmonyTokenizer();
  const bytes: Uint8Array[] = new Array(VOCAB_SIZE);
  const encoded: string[] = new Array(VOCAB_SIZE);
  for (let id = 0; id < VOCAB_SIZE; id++) {
    if (id >= FIRST_SPECIAL) {
      const marker = markerOfToken(id);
      bytes[id] = new Uint8Array();
      encoded[id] = marker === undefined ? "" : byteLevelString(Buffer.from(marker, "latin1"));
    } else {
      const b = tok.bytes(id);
      bytes[id] = b;
      encoded[id] = b.includes(MARKER_BYTE) ? "" : byteLevelString(b);
    }
  }
  built = { encoded, bytes };
  return built;
}

/**
 * Ordinary text to o200k token ids (no specials): how the worker appends a continuation the grammar
 * forces as text (jump-forward). The gateway's tokenizer, so ids agree.
 */
export function encodeText(text: string): number[] {
  return harmonyTokenizer().encode(text);
}
