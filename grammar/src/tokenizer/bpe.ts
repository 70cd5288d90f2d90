/**
 * Byte-level BPE as tiktoken defines it — within one pre-tokenized piece, repeatedly merge the adjacent
 * pair of parts whose concatenation has the lowest rank, the leftmost on ties — in O(n log n) per piece
 * (O(n) on runs of one character) instead of the O(n²)-per-merge scan that let one long run of a
 * character freeze the gateway (#20, R23).
 *
 * The parts form a linked list over the piece's byte positions. Each part whose pair (it and its right
 * neighbour) is a token sits in the bucket of that pair's rank: a list of positions in position order.
 * Merging never creates a pair of the rank being merged (the new pair is strictly longer than that
 * token), so buckets are emptied in increasing rank order, each once, head first — exactly tiktoken's
 * choice. A merge can create a pair of a lower rank than the current one (a vocabulary is not
 * bound to rank a token after its parts); such a pair is always beside the merge, and is merged at once.
 * Ranks are found in an open-addressing table over the tokens' byte slices (no string per lookup; a
 * direct table for the two-byte pairs of the first pass); spans longer than the longest token are never
 * looked up. A piece of a few dozen bytes (most of them) is merged by tiktoken's own scan instead, which
 * is cheaper at that size.
 */
import type { WorkBudget } from "./budget.ts";

/** Merges (and pieces) between two budget checks. */
const CHECK_EVERY = 4096;
const NONE = -1;
/** No merge for this part (it is the last one, its pair is no token, or it was merged away). */
const NO_RANK = 0x7fffffff;
/** Merge arrays for pieces up to this many bytes are kept for the next piece; a longer piece's are let go. */
const KEEP_BYTES = 1 << 16;
const EMPTY: Uint8Array = new Uint8Array();
/** Pieces up to this many bytes are merged by scanning (cheaper than buckets at this size, and bounded). */
const SCAN_BYTES = 32;

export class BytePairEncoder {
  readonly #bytes: Uint8Array;
  readonly #offsets: Uint32Array;
  readonly #table: Int32Array;
  readonly #mask: number;
  /** The rank of every one- and two-byte token, indexed by its bytes (b0, or b0 << 8 | b1). */
  readonly #singles = new Int32Array(256).fill(NO_RANK);
  readonly #pairs = new Int32Array(1 << 16).fill(NO_RANK);
  readonly #merge: Merge;
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
      if (end - start > longest) longest = end - start;
      if (end - start === 1) this.#singles[bytes[start] as number] = id;
      if (end - start === 2) this.#pairs[((bytes[start] as number) << 8) | (bytes[start + 1] as number)] = id;
      let slot = hash(bytes, start, end) & this.#mask;
      while (this.#table[slot] !== NONE) slot = (slot + 1) & this.#mask;
      this.#table[slot] = id;
    }
    this.maxTokenBytes = longest;
    this.#merge = new Merge(this, count);
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

  /** The rank of the byte b. */
  byteRank(b: number): number {
    return this.#singles[b] as number;
  }

  /** The rank of the two bytes at buf[i], buf[i + 1]. */
  pairRank(buf: Uint8Array, i: number): number {
    return this.#pairs[((buf[i] as number) << 8) | (buf[i + 1] as number)] as number;
  }

  /** Appends the tokens of the piece buf[0, n) to `out`. */
  encodePiece(buf: Uint8Array, n: number, out: number[], budget?: WorkBudget): void {
    this.tick(budget);
    const whole = this.rank(buf, 0, n);
    if (whole !== NO_RANK) {
      out.push(whole);
      return;
    }
    this.#merge.run(buf, n, out, budget);
  }

  tick(budget: WorkBudget | undefined): void {
    if (budget && ++this.#work % CHECK_EVERY === 0) budget.check();
  }
}

/**
 * One piece's merge state, its arrays reused from piece to piece (grown for a longer one). A part is
 * named by its first byte's position; its pair rank decides which bucket (a doubly linked list of
 * positions, per rank) it is in.
 */
class Merge {
  readonly #enc: BytePairEncoder;
  #buf = EMPTY;
  #n = 0;
  /** The rank being merged: parts with a pair rank at or above it are in a bucket, lower ones are merged at once. */
  #round = 0;
  /** next[i]: the start of the part after the one starting at i (n for the last); prev likewise (−1). */
  #next = new Int32Array(0);
  #prev = new Int32Array(0);
  /** pairRank[i]: the rank of the part at i merged with its right neighbour. */
  #pairRank = new Int32Array(0);
  /** The bucket lists: neighbours of a position in its bucket. */
  #bnext = new Int32Array(0);
  #bprev = new Int32Array(0);
  /** Per rank: its bucket's first and last positions, whether it may be out of order, whether it is in the heap. */
  readonly #head: Int32Array;
  readonly #tail: Int32Array;
  readonly #unsorted: Uint8Array;
  readonly #queued: Uint8Array;
  /** A binary min-heap of the ranks whose buckets have been filled. */
  readonly #ranks: Int32Array;
  #size = 0;

  constructor(enc: BytePairEncoder, count: number) {
    this.#enc = enc;
    this.#head = new Int32Array(count).fill(NONE);
    this.#tail = new Int32Array(count).fill(NONE);
    this.#unsorted = new Uint8Array(count);
    this.#queued = new Uint8Array(count);
    this.#ranks = new Int32Array(count);
  }

  run(buf: Uint8Array, n: number, out: number[], budget: WorkBudget | undefined): void {
    if (n <= SCAN_BYTES) {
      this.#scan(buf, n, out, budget);
      return;
    }
    this.#start(buf, n);
    try {
      for (let r = this.#pop(); r !== NONE; r = this.#pop()) {
        this.#round = r;
        if (this.#unsorted[r]) this.#sort(r);
        for (let i = this.#head[r] as number; i !== NONE; i = this.#head[r] as number) {
          this.#enc.tick(budget);
          this.#mergeAt(i);
        }
      }
      const next = this.#next;
      for (let i = 0; i < n; i = next[i] as number) out.push(this.#enc.rank(buf, i, next[i] as number));
    } catch (err) {
      this.#clear(); // a budget stopped it: leave no bucket behind for the next piece
      throw err;
    } finally {
      this.#buf = EMPTY;
      if (this.#next.length > KEEP_BYTES) this.#allocate(0);
    }
  }

  /**
   * tiktoken's own loop, for a short piece: scan the parts for the lowest pair rank (the first on a tie),
   * merge, look up the two pairs that changed. At most SCAN_BYTES steps per merge.
   */
  #scan(buf: Uint8Array, n: number, out: number[], budget: WorkBudget | undefined): void {
    if (this.#next.length <= n) this.#allocate(SCAN_BYTES + 1);
    const enc = this.#enc;
    const start = this.#next;
    const rank = this.#pairRank;
    const token = this.#prev; // unused by the scan: each part's token, so the result needs no lookups
    for (let i = 0; i < n; i++) {
      start[i] = i;
      token[i] = enc.byteRank(buf[i] as number);
      rank[i] = i + 1 < n ? enc.pairRank(buf, i) : NO_RANK;
    }
    start[n] = n;
    let parts = n;
    for (;;) {
      let at = NONE;
      let best = NO_RANK;
      for (let i = 0; i < parts - 1; i++) {
        if ((rank[i] as number) < best) {
          best = rank[i] as number;
          at = i;
        }
      }
      if (at === NONE) break;
      enc.tick(budget);
      start.copyWithin(at + 1, at + 2, parts + 1);
      rank.copyWithin(at + 1, at + 2, parts);
      token.copyWithin(at + 1, at + 2, parts);
      token[at] = best;
      parts--;
      rank[at] = at + 1 < parts ? enc.rank(buf, start[at] as number, start[at + 2] as number) : NO_RANK;
      if (at > 0) rank[at - 1] = enc.rank(buf, start[at - 1] as number, start[at + 1] as number);
    }
    for (let i = 0; i < parts; i++) out.push(token[i] as number);
  }

  /** Arrays for parts at positions 0..cap-1. */
  #allocate(cap: number): void {
    this.#next = new Int32Array(cap);
    this.#prev = new Int32Array(cap);
    this.#pairRank = new Int32Array(cap);
    this.#bnext = new Int32Array(cap);
    this.#bprev = new Int32Array(cap);
  }

  #start(buf: Uint8Array, n: number): void {
    if (this.#next.length < n) this.#allocate(n <= KEEP_BYTES ? Math.min(KEEP_BYTES, Math.max(n, this.#next.length * 2)) : n);
    this.#buf = buf;
    this.#n = n;
    this.#round = 0;
    for (let i = 0; i < n; i++) {
      this.#next[i] = i + 1;
      this.#prev[i] = i - 1;
      const r = i + 1 < n ? this.#enc.pairRank(buf, i) : NO_RANK;
      this.#pairRank[i] = r;
      if (r !== NO_RANK) this.#link(i, r);
    }
  }

  /** Merges the part at i with its right neighbour, then any lower-ranked pair that merge made beside it. */
  #mergeAt(first: number): void {
    const next = this.#next;
    const rank = this.#pairRank;
    for (let i = first; ; ) {
      const right = next[i] as number;
      const after = next[right] as number;
      this.#unlink(i);
      this.#unlink(right);
      rank[right] = NO_RANK;
      next[i] = after;
      if (after < this.#n) this.#prev[after] = i;
      // Left pair first: a bucket is filled in position order.
      const left = this.#prev[i] as number;
      if (left >= 0) {
        this.#unlink(left);
        this.#setRank(left, this.#enc.rank(this.#buf, left, after));
      }
      this.#setRank(i, after < this.#n ? this.#enc.rank(this.#buf, i, next[after] as number) : NO_RANK);
      // The pairs below the round's rank are only ever these two: merge the lower, the left on a tie.
      const lower = left >= 0 && (rank[left] as number) <= (rank[i] as number) ? left : i;
      if ((rank[lower] as number) >= this.#round) return;
      i = lower;
    }
  }

  #setRank(i: number, r: number): void {
    this.#pairRank[i] = r;
    if (r !== NO_RANK && r >= this.#round) this.#link(i, r);
  }

  /** Appends position i to the bucket of rank r. */
  #link(i: number, r: number): void {
    const tail = this.#tail[r] as number;
    this.#bnext[i] = NONE;
    this.#bprev[i] = tail;
    this.#tail[r] = i;
    if (tail === NONE) {
      this.#head[r] = i;
      this.#unsorted[r] = 0;
      if (!this.#queued[r]) this.#push(r);
    } else {
      this.#bnext[tail] = i;
      if (i < tail) this.#unsorted[r] = 1;
    }
  }

  /** Takes position i out of its bucket, if it is in one. */
  #unlink(i: number): void {
    const r = this.#pairRank[i] as number;
    if (r === NO_RANK || r < this.#round) return;
    const before = this.#bprev[i] as number;
    const after = this.#bnext[i] as number;
    if (before === NONE) this.#head[r] = after;
    else this.#bnext[before] = after;
    if (after === NONE) this.#tail[r] = before;
    else this.#bprev[after] = before;
  }

  /**
   * Puts the bucket of rank r in position order. Merges fill buckets in order on o200k and on every
   * random vocabulary tried (bpe.test.ts); this keeps the leftmost rule from resting on that.
   */
  #sort(r: number): void {
    const all: number[] = [];
    for (let i = this.#head[r] as number; i !== NONE; i = this.#bnext[i] as number) all.push(i);
    const sorted = Int32Array.from(all).sort();
    this.#head[r] = NONE;
    this.#tail[r] = NONE;
    for (const i of sorted) this.#link(i, r);
  }

  #push(r: number): void {
    this.#queued[r] = 1;
    const heap = this.#ranks;
    let slot = this.#size++;
    while (slot > 0) {
      const parent = (slot - 1) >> 1;
      const p = heap[parent] as number;
      if (p <= r) break;
      heap[slot] = p;
      slot = parent;
    }
    heap[slot] = r;
  }

  /** The lowest queued rank whose bucket is not empty, or NONE. */
  #pop(): number {
    while (this.#size > 0) {
      const heap = this.#ranks;
      const top = heap[0] as number;
      const last = heap[--this.#size] as number;
      let slot = 0;
      for (;;) {
        let child = 2 * slot + 1;
        if (child >= this.#size) break;
        if (child + 1 < this.#size && (heap[child + 1] as number) < (heap[child] as number)) child++;
        if ((heap[child] as number) >= last) break;
        heap[slot] = heap[child] as number;
        slot = child;
      }
      heap[slot] = last;
      this.#queued[top] = 0;
      if (this.#head[top] !== NONE) return top;
    }
    return NONE;
  }

  #clear(): void {
    for (let k = 0; k < this.#size; k++) {
      const r = this.#ranks[k] as number;
      this.#head[r] = NONE;
      this.#tail[r] = NONE;
      this.#queued[r] = 0;
    }
    this.#size = 0;
    if (this.#round < this.#head.length) {
      this.#head[this.#round] = NONE;
      this.#tail[this.#round] = NONE;
    }
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
