/**
 * The o200k_harmony vocabulary as xgrammar sees it, built once per process. Ordinary tokens (ids below
 * 199998) carry their BPE bytes, written in the GPT-2 byte-to-character form xgrammar's "byte_level"
 * vocabulary type decodes (tokens may end mid UTF-8 character). The seven Harmony specials the grammar
 * uses carry their markers (markers.ts); every other special, the reserved ids and the one ordinary
 * token holding the marker byte get an empty string, which xgrammar treats as never allowed.
 * Token bytes are read from the same js-tiktoken ranks table the gateway's tokenizer uses.
 */
import { Tiktoken, type TiktokenBPE } from "js-tiktoken/lite";
import o200kBase from "js-tiktoken/ranks/o200k_base";
import { MARKER_BYTE, markerOfToken } from "../harmony/markers.ts";

/** Model vocabulary size (logit rows): ids 0..201087 (spec §5). */
export const VOCAB_SIZE = 201088;
/** Ordinary BPE tokens are ids below this. */
export const FIRST_SPECIAL = 199998;
/** <|endoftext|>: xgrammar needs at least one stop token; the Harmony grammar never allows it. */
export const ENDOFTEXT = 199999;

/** GPT-2's reversible map from bytes to printable characters, which "byte_level" vocabularies use. */
function byteLevelAlphabet(): string[] {
  const printable = (b: number) => (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
  const alphabet: string[] = new Array(256);
  let next = 256;
  for (let b = 0; b < 256; b++) alphabet[b] = String.fromCodePoint(printable(b) ? b : next++);
  return alphabet;
}

export interface HarmonyVocabulary {
  /** Per id, the string handed to xgrammar's TokenizerInfo ("byte_level" encoding). */
  readonly encoded: readonly string[];
  /** Per id, the token's bytes as the model means them (empty for specials). */
  readonly bytes: readonly Uint8Array[];
}

let built: HarmonyVocabulary | undefined;

function readRanks(ranks: TiktokenBPE): Uint8Array[] {
  const bytes: Uint8Array[] = new Array(VOCAB_SIZE).fill(new Uint8Array());
  for (const line of ranks.bpe_ranks.split("\n")) {
    if (!line) continue;
    const [, offset, ...tokens] = line.split(" ");
    const base = Number.parseInt(offset as string, 10);
    for (const [i, t] of tokens.entries()) bytes[base + i] = Buffer.from(t, "base64");
  }
  return bytes;
}

/** The vocabulary, built on first use (a few hundred milliseconds; the result is kept). */
export function harmonyVocabulary(): HarmonyVocabulary {
  if (built) return built;
  const alphabet = byteLevelAlphabet();
  const bytes = readRanks(o200kBase);
  const toByteLevel = (b: Uint8Array) => {
    let s = "";
    for (const byte of b) s += alphabet[byte];
    return s;
  };
  const encoded = bytes.map((b, id) => {
    if (id >= FIRST_SPECIAL) {
      const marker = markerOfToken(id);
      return marker === undefined ? "" : toByteLevel(Buffer.from(marker, "latin1"));
    }
    return b.includes(MARKER_BYTE) ? "" : toByteLevel(b);
  });
  built = { encoded, bytes };
  return built;
}

let encoder: Tiktoken | undefined;

/** The text encoder, built on first use — a long stretch of the thread that asks, so the compiler builds it up front. */
export function textEncoder(): Tiktoken {
  encoder ??= new Tiktoken(o200kBase);
  return encoder;
}

/**
 * Ordinary text to o200k token ids (no specials): how the worker appends a continuation the grammar
 * forces as text (jump-forward). The same ranks as the gateway's tokenizer, so ids agree.
 */
export function encodeText(text: string): number[] {
  return textEncoder().encode(text, [], []);
}
