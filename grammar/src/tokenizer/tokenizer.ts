/**
 * o200k_harmony (spec §5): tiktoken's o200k_base byte-level BPE (its ranks and pre-tokenizer pattern from
 * js-tiktoken, its merges by our own O(n log n) encoder, bpe.ts) plus the Harmony special tokens, declared
 * here explicitly. Message text is always encoded with specials disabled, so a
 * user typing "<|end|>" gets ordinary text tokens. StreamDecoder turns token ids into text as they arrive,
 * holding back incomplete UTF-8 sequences (a token may end mid-character).
 */

import type { TiktokenBPE } from "js-tiktoken/lite";
import o200kBase from "js-tiktoken/ranks/o200k_base";
import { HarmonySpecial } from "../spec/harmony-tokens.ts";
import { BytePairEncoder } from "./bpe.ts";
import type { WorkBudget } from "./budget.ts";
import { byteLevelString } from "./byte-level.ts";

/** The Harmony special tokens by name (spec §5). */
export const Special = HarmonySpecial;

const NAMED: Record<number, string> = {
  199998: "<|startoftext|>",
  199999: "<|endoftext|>",
  200002: "<|return|>",
  200003: "<|constrain|>",
  200005: "<|channel|>",
  200006: "<|start|>",
  200007: "<|end|>",
  200008: "<|message|>",
  200012: "<|call|>",
};

/** Text kept by the encode cache, in UTF-16 units (~2 MiB of strings plus their token ids). */
const ENCODE_CACHE_CHARS = 1 << 20;

/** Ordinary (BPE) tokens are ids 0..FIRST_SPECIAL-1; the rest are specials, reserved or named. */
export const FIRST_SPECIAL = 199998;

/** A piece's UTF-8 bytes are written into a reused buffer up to this size; longer ones get their own. */
const PIECE_BUFFER_BYTES = 1 << 16;

/** Model vocabulary size: ids 0..201087. */
export const VOCAB_SIZE = 201088;

const EMPTY = new Uint8Array();

function specialText(id: number): string {
  return NAMED[id] ?? `<|reserved_${id}|>`;
}

/** A candidate special token in text: `<|name|>`; only the Harmony specials' names count. */
const SPECIAL_TEXT = /<\|[a-z0-9_]+\|>/g;

export class HarmonyTokenizer {
  readonly #bpe: BytePairEncoder;
  readonly #pattern: RegExp;
  readonly #utf8 = new TextEncoder();
  #pieceBuffer = new Uint8Array(PIECE_BUFFER_BYTES);
  readonly #specials = new Map<string, number>();
  /** Every token's bytes, end to end; token `id` is bytes[offsets[id], offsets[id + 1]). */
  readonly #allBytes: Uint8Array;
  readonly #offsets: Uint32Array;
  readonly #strict = new TextDecoder("utf-8", { fatal: true });
  readonly #whole: (string | null | undefined)[] = new Array(VOCAB_SIZE).fill(undefined);
  readonly #encoded = new Map<string, number[]>();
  #encodedChars = 0;

  constructor(ranks: TiktokenBPE = o200kBase) {
    // Only the Harmony specials: o200k_base's own <|endofprompt|> (200018) is reserved in Harmony.
    for (let id = 199998; id < VOCAB_SIZE; id++) this.#specials.set(specialText(id), id);
    this.#pattern = new RegExp(ranks.pat_str, "gu");
    // Token bytes, for streaming decode: parsed from the same ranks table js-tiktoken reads, stored flat.
    const pieces: Buffer[] = new Array(VOCAB_SIZE);
    for (const line of ranks.bpe_ranks.split("\n")) {
      if (!line) continue;
      const [, offset, ...tokens] = line.split(" ");
      const base = Number.parseInt(offset as string, 10);
      for (const [i, t] of tokens.entries()) if (base + i < VOCAB_SIZE) pieces[base + i] = Buffer.from(t, "base64");
    }
    for (let id = 199998; id < VOCAB_SIZE; id++) pieces[id] = Buffer.from(specialText(id), "utf8");
    this.#offsets = new Uint32Array(VOCAB_SIZE + 1);
    let total = 0;
    for (let id = 0; id < VOCAB_SIZE; id++) {
      this.#offsets[id] = total;
      total += pieces[id]?.length ?? 0;
    }
    this.#offsets[VOCAB_SIZE] = total;
    this.#allBytes = new Uint8Array(total);
    for (let id = 0; id < VOCAB_SIZE; id++) {
      const p = pieces[id];
      if (p) this.#allBytes.set(p, this.#offsets[id] as number);
    }
    this.#bpe = new BytePairEncoder(this.#allBytes, this.#offsets, FIRST_SPECIAL);
  }

  /**
   * Text as ordinary tokens: special-token text stays text. Results are cached (least recently used
   * first out, ENCODE_CACHE_CHARS of text in all): the system message, developer instructions, tool
   * definitions and a conversation's earlier turns come back with every request.
   */
  encode(text: string, budget?: WorkBudget): number[] {
    if (text.length > ENCODE_CACHE_CHARS / 16) return this.#encodePieces(text, [], budget);
    const hit = this.#encoded.get(text);
    if (hit) {
      this.#encoded.delete(text); // Map order is insertion order: re-insert as the most recent
      this.#encoded.set(text, hit);
      return hit.slice();
    }
    const ids = this.#encodePieces(text, [], budget);
    this.#encoded.set(text, ids.slice());
    this.#encodedChars += text.length;
    for (const [old] of this.#encoded) {
      if (this.#encodedChars <= ENCODE_CACHE_CHARS) break;
      this.#encoded.delete(old);
      this.#encodedChars -= old.length;
    }
    return ids;
  }

  /** Appends the ordinary tokens of `text` to `out` (cached like encode; no spread of a long array). */
  encodeInto(text: string, out: number[], budget?: WorkBudget): void {
    for (const id of this.encode(text, budget)) out.push(id);
  }

  /** The pre-tokenizer's pieces, each through the byte-pair encoder, appended to `out`. */
  #encodePieces(text: string, out: number[], budget?: WorkBudget): number[] {
    const pattern = this.#pattern;
    pattern.lastIndex = 0;
    for (let m = pattern.exec(text); m !== null; m = pattern.exec(text)) {
      const piece = m[0];
      const room = piece.length * 3;
      const buf = room <= PIECE_BUFFER_BYTES ? this.#pieceBuffer : new Uint8Array(room);
      const { written } = this.#utf8.encodeInto(piece, buf);
      this.#bpe.encodePiece(buf, written, out, budget);
    }
    return out;
  }

  /** Text in which special-token text becomes the special tokens (raw completions prompts, fixtures, the CLI). */
  encodeWithSpecials(text: string, budget?: WorkBudget): number[] {
    const out: number[] = [];
    let start = 0;
    SPECIAL_TEXT.lastIndex = 0;
    for (let m = SPECIAL_TEXT.exec(text); m !== null; m = SPECIAL_TEXT.exec(text)) {
      const id = this.#specials.get(m[0]);
      if (id === undefined) {
        SPECIAL_TEXT.lastIndex = m.index + 1; // not a Harmony special: it stays text
        continue;
      }
      if (m.index > start) this.encodeInto(text.slice(start, m.index), out, budget);
      out.push(id);
      start = m.index + m[0].length;
    }
    if (start < text.length) this.encodeInto(text.slice(start), out, budget);
    return out;
  }

  /** Bytes of one token; reserved ids decode as "<|reserved_N|>"; ids outside the vocabulary as nothing. */
  bytes(id: number): Uint8Array {
    if (!(id >= 0 && id < VOCAB_SIZE)) return EMPTY;
    return this.#allBytes.subarray(this.#offsets[id], this.#offsets[id + 1]);
  }

  /**
   * The token's text when its bytes are complete, valid UTF-8 on their own (most tokens); null for a
   * token that holds part of a character. Computed once per token.
   */
  wholeText(id: number): string | null {
    const known = this.#whole[id];
    if (known !== undefined) return known;
    if (!(id >= 0 && id < VOCAB_SIZE)) return "";
    let text: string | null;
    try {
      text = this.#strict.decode(this.bytes(id));
    } catch {
      text = null;
    }
    this.#whole[id] = text;
    return text;
  }

  /**
   * A token as Hugging Face's tokenizer names it (`convert_ids_to_tokens`, vLLM's `token_strs`): a special
   * by its name (`<|start|>`, `<|reserved_200013|>`), an ordinary token in the byte-level alphabet
   * (byte-level.ts), so a token holding part of a character keeps its exact bytes.
   */
  tokenString(id: number): string {
    return this.isSpecial(id) ? specialText(id) : byteLevelString(this.bytes(id));
  }

  decode(ids: readonly number[]): string {
    const d = new StreamDecoder(this);
    return d.push(ids) + d.flush();
  }

  isSpecial(id: number): boolean {
    return id >= 199998;
  }
}

/**
 * Incremental decoding: returns only complete characters; flush() emits U+FFFD for a dangling tail.
 * Between characters (no partial sequence held) a token that is whole UTF-8 is appended as its cached
 * text; otherwise the bytes go through a streaming TextDecoder. `#need` counts the continuation bytes
 * the last lead byte still waits for: 0 means the TextDecoder holds nothing.
 */
export class StreamDecoder {
  readonly #tok: HarmonyTokenizer;
  readonly #decoder = new TextDecoder("utf-8", { fatal: false });
  #need = 0;

  constructor(tok: HarmonyTokenizer) {
    this.#tok = tok;
  }

  push(ids: readonly number[]): string {
    let out = "";
    for (const id of ids) out += this.pushOne(id);
    return out;
  }

  /** One token's complete characters (push of a single id, without the array). */
  pushOne(id: number): string {
    const whole = this.#need === 0 ? this.#tok.wholeText(id) : null;
    if (whole !== null) return whole;
    const bytes = this.#tok.bytes(id);
    const text = this.#decoder.decode(bytes, STREAM);
    this.#need = pendingAfter(this.#need, bytes);
    return text;
  }

  flush(): string {
    this.#need = 0;
    return this.#decoder.decode();
  }
}

const STREAM = { stream: true } as const;

/**
 * Continuation bytes still expected after `bytes`, starting from `need`. A valid partial sequence is
 * counted exactly; after invalid input the count may stay above 0 while the decoder holds nothing,
 * which only sends the next token down the (always correct) TextDecoder path.
 */
function pendingAfter(need: number, bytes: Uint8Array): number {
  let n = need;
  for (const b of bytes) {
    if (n > 0 && (b & 0xc0) === 0x80) n--;
    else if (b < 0x80) n = 0;
    else if ((b & 0xe0) === 0xc0) n = 1;
    else if ((b & 0xf0) === 0xe0) n = 2;
    else if ((b & 0xf8) === 0xf0) n = 3;
    else n = 0;
  }
  return n;
}
