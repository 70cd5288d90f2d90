/**
 * o200k_harmony (spec §5): tiktoken's o200k_base byte-level BPE (ranks from js-tiktoken) plus the Harmony
 * special tokens, declared here explicitly. Message text is always encoded with specials disabled, so a
 * user typing "<|end|>" gets ordinary text tokens. StreamDecoder turns token ids into text as they arrive,
 * holding back incomplete UTF-8 sequences (a token may end mid-character).
 */
import { Tiktoken, type TiktokenBPE } from "js-tiktoken/lite";
import o200kBase from "js-tiktoken/ranks/o200k_base";

/** The Harmony special tokens by name (spec §5). */
export const Special = {
  startoftext: 199998,
  endoftext: 199999,
  return: 200002,
  constrain: 200003,
  channel: 200005,
  start: 200006,
  end: 200007,
  message: 200008,
  call: 200012,
} as const;

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

/** Model vocabulary size: ids 0..201087. */
export const VOCAB_SIZE = 201088;

function specialText(id: number): string {
  return NAMED[id] ?? `<|reserved_${id}|>`;
}

export class HarmonyTokenizer {
  readonly #plain: Tiktoken;
  readonly #withSpecials: Tiktoken;
  readonly #bytes: Map<number, Uint8Array>;
  readonly #encoder = new TextEncoder();

  constructor(ranks: TiktokenBPE = o200kBase) {
    // Only the Harmony specials: o200k_base's own <|endofprompt|> (200018) is reserved in Harmony.
    const specials: Record<string, number> = {};
    for (let id = 199998; id < VOCAB_SIZE; id++) specials[specialText(id)] = id;
    this.#plain = new Tiktoken({ ...ranks, special_tokens: {} });
    this.#withSpecials = new Tiktoken({ ...ranks, special_tokens: {} }, specials);
    // Token bytes, for streaming decode: parsed from the same ranks table js-tiktoken reads.
    this.#bytes = new Map();
    for (const line of ranks.bpe_ranks.split("\n")) {
      if (!line) continue;
      const [, offset, ...tokens] = line.split(" ");
      const base = Number.parseInt(offset as string, 10);
      for (const [i, t] of tokens.entries()) this.#bytes.set(base + i, Uint8Array.from(Buffer.from(t, "base64")));
    }
    for (let id = 199998; id < VOCAB_SIZE; id++) this.#bytes.set(id, this.#encoder.encode(specialText(id)));
  }

  /** Text as ordinary tokens: special-token text stays text. */
  encode(text: string): number[] {
    return this.#plain.encode(text, [], []);
  }

  /** Text in which special-token text becomes the special tokens (for fixtures and the CLI). */
  encodeWithSpecials(text: string): number[] {
    return this.#withSpecials.encode(text, "all", []);
  }

  /** Bytes of one token; reserved ids decode as "<|reserved_N|>"; ids outside the vocabulary as nothing. */
  bytes(id: number): Uint8Array {
    return this.#bytes.get(id) ?? new Uint8Array();
  }

  decode(ids: readonly number[]): string {
    const d = new StreamDecoder(this);
    return d.push(ids) + d.flush();
  }

  isSpecial(id: number): boolean {
    return id >= 199998;
  }
}

/** Incremental decoding: returns only complete characters; flush() emits U+FFFD for a dangling tail. */
export class StreamDecoder {
  readonly #tok: HarmonyTokenizer;
  readonly #decoder = new TextDecoder("utf-8", { fatal: false });

  constructor(tok: HarmonyTokenizer) {
    this.#tok = tok;
  }

  push(ids: readonly number[]): string {
    let out = "";
    for (const id of ids) out += this.#decoder.decode(this.#tok.bytes(id), { stream: true });
    return out;
  }

  flush(): string {
    return this.#decoder.decode();
  }
}
