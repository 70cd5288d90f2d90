/**
 * Drives a matcher like a sampler with no model: each step reads the mask and picks an allowed token
 * with a seeded RNG. Used by the tests (every output of every seed must satisfy the constraint) and by
 * bench/grammar.ts (mask time per token). Picks are biased so walks end: free text is closed by an
 * allowed special after a few tokens, and half the time a token holding a JSON delimiter is preferred
 * (a uniform pick would close a JSON string only about once in two hundred tokens). Every pick is
 * still from the mask, which is what the tests judge.
 */
import { seededRandom } from "@expertmesh/common/testing";
import { BITMASK_WORDS, type ConstraintMatcher } from "../engine/matcher.ts";
import { FIRST_SPECIAL, harmonyVocabulary } from "../engine/vocabulary.ts";
import { HarmonyToken } from "../harmony/markers.ts";

export { seededRandom };

const popcount = (x: number): number => {
  let v = x - ((x >>> 1) & 0x55555555);
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return (((v + (v >>> 4)) & 0xf0f0f0f) * 0x1010101) >>> 24;
};

/** The `k`-th (from 0) set bit of mask & filter, with `count` set bits in all. */
function nthAllowed(mask: Int32Array, filter: Int32Array | null, k: number): number {
  let left = k;
  for (let w = 0; w < BITMASK_WORDS; w++) {
    const bits = filter ? (mask[w] as number) & (filter[w] as number) : (mask[w] as number);
    const n = popcount(bits);
    if (left < n) {
      for (let b = 0; b < 32; b++) if ((bits >>> b) & 1 && left-- === 0) return w * 32 + b;
    }
    left -= n;
  }
  return -1;
}

function countAllowed(mask: Int32Array, filter: Int32Array | null): number {
  let n = 0;
  for (let w = 0; w < BITMASK_WORDS; w++) n += popcount(filter ? (mask[w] as number) & (filter[w] as number) : (mask[w] as number));
  return n;
}

function tokenSet(pred: (bytes: Uint8Array, id: number) => boolean): Int32Array {
  const set = new Int32Array(BITMASK_WORDS);
  harmonyVocabulary().bytes.forEach((b, id) => {
    if (pred(b, id)) set[id >> 5] = (set[id >> 5] as number) | (1 << (id & 31));
  });
  return set;
}

const DELIMITERS = new Set([...'"{}[],:'].map((c) => c.charCodeAt(0)));
let delimiterTokens: Int32Array | undefined;
let specialTokens: Int32Array | undefined;

export interface DriveOptions {
  /** Give up (and report it) after this many tokens. */
  readonly maxTokens: number;
  /** Called around each mask computation, for the benchmark. */
  readonly onMask?: (ms: number) => void;
}

export interface DriveResult {
  readonly tokens: number[];
  /** The matcher reached the end of the grammar (a <|return|> or <|call|>). */
  readonly terminated: boolean;
}

/** Walks `matcher` from its current state until the grammar ends or maxTokens. */
export async function drive(matcher: ConstraintMatcher, random: () => number, options: DriveOptions): Promise<DriveResult> {
  delimiterTokens ??= tokenSet((b, id) => id < FIRST_SPECIAL && b.some((x) => DELIMITERS.has(x)));
  specialTokens ??= tokenSet((_, id) => id >= FIRST_SPECIAL);
  const mask = new Int32Array(BITMASK_WORDS);
  const tokens: number[] = [];
  let freeRun = 0;
  while (!matcher.isTerminated && tokens.length < options.maxTokens) {
    const started = performance.now();
    await matcher.fillNextTokenBitmask(mask);
    options.onMask?.(performance.now() - started);
    const specials = countAllowed(mask, specialTokens);
    const delimiters = countAllowed(mask, delimiterTokens);
    let token: number;
    if (specials > 0 && (freeRun > 3 || random() < 0.3)) token = nthAllowed(mask, specialTokens, Math.floor(random() * specials));
    else if (delimiters > 0 && random() < 0.5) token = nthAllowed(mask, delimiterTokens, Math.floor(random() * delimiters));
    else token = nthAllowed(mask, null, Math.floor(random() * countAllowed(mask, null)));
    if (token < 0 || !matcher.accept(token)) throw new Error(`the mask allowed token ${token} but the matcher refused it`);
    tokens.push(token);
    freeRun = token >= FIRST_SPECIAL ? 0 : freeRun + 1;
  }
  return { tokens, terminated: matcher.isTerminated };
}

/** One parsed message of a completion: its header text, content bytes decoded, and terminator. */
export interface ParsedMessage {
  readonly header: string;
  readonly content: string;
  /** Tokens of the content. */
  readonly length: number;
  readonly terminator: number;
}

/**
 * Not fatal, like the gateway's stream decoder (spec §5): xgrammar checks UTF-8 structure but not
 * ranges, so a JSON string may hold bytes such as F4 9E 9E 8D (beyond U+10FFFF), which decode to U+FFFD.
 */
const decoder = new TextDecoder("utf-8");

/** Splits a completion (starting after <|start|>assistant) into messages, by token ids. */
export function splitMessages(tokens: readonly number[]): ParsedMessage[] {
  const vocab = harmonyVocabulary();
  const text = (ids: number[]) => decoder.decode(Buffer.concat(ids.map((id) => vocab.bytes[id] as Uint8Array)));
  const names = new Map<number, string>(Object.entries(HarmonyToken).map(([n, id]) => [id, `<|${n}|>`]));
  const messages: ParsedMessage[] = [];
  let header: string[] = [];
  let content: number[] | null = null;
  for (const id of tokens) {
    if (content === null && id === HarmonyToken.message) content = [];
    else if (content === null) header.push(names.get(id) ?? text([id]));
    else if (id === HarmonyToken.end || id === HarmonyToken.return || id === HarmonyToken.call) {
      messages.push({ header: header.join(""), content: text(content), length: content.length, terminator: id });
      header = [];
      content = null;
    } else content.push(id);
  }
  return messages;
}

/** Harmony's valid completion headers (spec §6): a channel, and a function recipient before or after it. */
const HEADER =
  /^(?:<\|start\|>assistant)?(?:<\|channel\|>(analysis|commentary|final)( to=functions\.([A-Za-z0-9_-]+) ?<\|constrain\|>json)?|( to=functions\.([A-Za-z0-9_-]+))<\|channel\|>(analysis|commentary) ?<\|constrain\|>json)$/;

/** A header's channel and recipient (from splitMessages), or null when it is not a valid Harmony header. */
export function headerParts(header: string): { channel: string; recipient: string | undefined } | null {
  const m = HEADER.exec(header);
  return m ? { channel: (m[1] ?? m[6]) as string, recipient: m[3] ?? m[5] } : null;
}
