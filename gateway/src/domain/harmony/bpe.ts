/**
 * Byte-level BPE as tiktoken defines it — within one pre-tokenized piece, repeatedly merge the adjacent
 * pair of parts whose concatenation has the lowest rank, the leftmost on ties — in O(n log n) per piece
 * instead of the O(n²)-per-merge scan that let one long run of a character freeze the gateway (#20).
 *
 * The parts form a linked list over the piece's byte positions; an indexed binary min-heap holds, per
 * part, the rank of merging it with its right neighbour, keyed (rank, position), so the heap's top is
 * exactly the pair tiktoken's scan would pick. A merge changes two keys (the part's own and its left
 * neighbour's), each an O(log n) sift. Ranks are found in an open-addressing table over the tokens' byte
 * slices (no string per lookup); spans longer than the longest token are never looked up.
 */
import type { WorkBudget } from "./budget.ts";

/** Merges (and pieces) between two budget checks. */
const CHECK_EVERY = 4096;
const NONE = -1;
/** No merge for this part (it is the last one, or its pair is no token): sorts after every rank. */
const NO_RANK = 0x7fffffff;

export class BytePairEncoder {
  readonly #bytes: Uint8Array;
  readonly #offsets: Uint32Array;
  readonly #table: Int32Array;
  readonly #mask: number;
  /** Longest token, in bytes. */
  readonly maxTokenBytes: number;
  #work = 0;

  /** Tokens 0..count-1: token `id` is bytes[offsets[id], offsets[id + 1]); its rank is its id. */
  constructor(bytes: Uint8Array, offsets: Uint32Array, count: number) {
    this.#bytes = bytes;
    this.#offsets = offsets;
    let size = 1;
    while (size < count * 2) size <<= 1;
    this.#table = new Int32Array(size).fill(NONE);
    this.#mask = size - 1;
    let longest = 0;
    for (let id = 0; id < count; id++) {
      const start = offsets[id] as number;
      const end = offsets[id + 1] as number;
      if (end === start) continue;
      longest = Math.max(longest, end - start);
      let slot = hash(bytes, start, end) & this.#mask;
      while (this.#table[slot] !== NONE) slot = (slot + 1) & this.#mask;
      this.#table[slot] = id;
    }
    this.maxTokenBytes = longest;
  }

  /** The rank (token id) of buf[start, end), or NO_RANK when those bytes are no token. */
  rank(buf: Uint8Array, start: number, end: number): number {
    const len = end - start;
    if (len > this.maxTokenBytes || len <= 0) return NO_RANK;
    let slot = hash(buf, start, end) & this.#mask;
    for (let id = this.#table[slot] as number; id !== NONE; id = this.#table[slot] as number) {
      const at = this.#offsets[id] as number;
      if ((this.#offsets[id + 1] as number) - at === len && equal(this.#bytes, at, buf, start, len)) return id;
      slot = (slot + 1) & this.#mask;
    }
    return NO_RANK;
  }

  /** Appends the tokens of the piece buf[0, n) to `out`. */
  encodePiece(buf: Uint8Array, n: number, out: number[], budget?: WorkBudget): void {
    this.#tick(budget);
    const whole = this.rank(buf, 0, n);
    if (whole !== NO_RANK) {
      out.push(whole);
      return;
    }
    const m = new Merge(this, buf, n);
    while (m.mergeNext()) this.#tick(budget);
    m.emit(out);
  }

  #tick(budget: WorkBudget | undefined): void {
    if (budget && ++this.#work % CHECK_EVERY === 0) budget.check();
  }
}

/** One piece's merge state: parts as a linked list by start position, and their pair ranks in a heap. */
class Merge {
  readonly #enc: BytePairEncoder;
  readonly #buf: Uint8Array;
  readonly #n: number;
  /** next[i]: the start of the part after the one starting at i (n for the last); prev likewise (−1). */
  readonly #next: Int32Array;
  readonly #prev: Int32Array;
  /** pairRank[i]: the rank of the part at i merged with its right neighbour. */
  readonly #pairRank: Int32Array;
  /** The heap of part starts, and where each part sits in it. */
  readonly #heap: Int32Array;
  readonly #at: Int32Array;
  #size: number;

  constructor(enc: BytePairEncoder, buf: Uint8Array, n: number) {
    this.#enc = enc;
    this.#buf = buf;
    this.#n = n;
    this.#next = new Int32Array(n);
    this.#prev = new Int32Array(n);
    this.#pairRank = new Int32Array(n);
    this.#heap = new Int32Array(n);
    this.#at = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      this.#next[i] = i + 1;
      this.#prev[i] = i - 1;
      this.#pairRank[i] = i + 1 < n ? enc.rank(buf, i, i + 2) : NO_RANK;
      this.#heap[i] = i;
      this.#at[i] = i;
    }
    this.#size = n;
    for (let i = (n >> 1) - 1; i >= 0; i--) this.#down(i);
  }

  /** Performs the lowest-ranked, leftmost merge; false when no pair is a token any more. */
  mergeNext(): boolean {
    const i = this.#heap[0] as number;
    if (this.#size === 0 || this.#pairRank[i] === NO_RANK) return false;
    const right = this.#next[i] as number;
    const after = this.#next[right] as number;
    this.#next[i] = after;
    if (after < this.#n) this.#prev[after] = i;
    this.#remove(right);
    this.#rerank(i);
    const left = this.#prev[i] as number;
    if (left >= 0) this.#rerank(left);
    return true;
  }

  emit(out: number[]): void {
    for (let i = 0; i < this.#n; i = this.#next[i] as number) out.push(this.#enc.rank(this.#buf, i, this.#next[i] as number));
  }

  /** The pair at `i` changed extent: its new rank, moved to its place in the heap. */
  #rerank(i: number): void {
    const next = this.#next[i] as number;
    this.#pairRank[i] = next < this.#n ? this.#enc.rank(this.#buf, i, this.#next[next] as number) : NO_RANK;
    const slot = this.#at[i] as number;
    this.#up(slot);
    this.#down(this.#at[i] as number);
  }

  #remove(i: number): void {
    const slot = this.#at[i] as number;
    const last = this.#heap[--this.#size] as number;
    if (slot === this.#size) return;
    this.#heap[slot] = last;
    this.#at[last] = slot;
    this.#up(slot);
    this.#down(this.#at[last] as number);
  }

  /** Heap order: lower rank first, then the leftmost part (tiktoken's tie-break). */
  #less(a: number, b: number): boolean {
    const ra = this.#pairRank[a] as number;
    const rb = this.#pairRank[b] as number;
    return ra < rb || (ra === rb && a < b);
  }

  #up(slot: number): void {
    const item = this.#heap[slot] as number;
    while (slot > 0) {
      const parent = (slot - 1) >> 1;
      const p = this.#heap[parent] as number;
      if (!this.#less(item, p)) break;
      this.#heap[slot] = p;
      this.#at[p] = slot;
      slot = parent;
    }
    this.#heap[slot] = item;
    this.#at[item] = slot;
  }

  #down(slot: number): void {
    const item = this.#heap[slot] as number;
    for (;;) {
      let child = 2 * slot + 1;
      if (child >= this.#size) break;
      const other = child + 1;
      if (other < this.#size && this.#less(this.#heap[other] as number, this.#heap[child] as number)) child = other;
      const c = this.#heap[child] as number;
      if (!this.#less(c, item)) break;
      this.#heap[slot] = c;
      this.#at[c] = slot;
      slot = child;
    }
    this.#heap[slot] = item;
    this.#at[item] = slot;
  }
}

/** FNV-1a over buf[start, end). */
function hash(buf: Uint8Array, start: number, end: number): number {
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) h = Math.imul(h ^ (buf[i] as number), 0x01000193);
  return h >>> 0;
}

function equal(a: Uint8Array, at: number, b: Uint8Array, bt: number, len: number): boolean {
  for (let k = 0; k < len; k++) if (a[at + k] !== b[bt + k]) return false;
  return true;
}
