/**
 * KvCache: a worker's two KV pools (full-attention and sliding-window layers), each a PrefixCache, and
 * what a sequence's block tables do with them: find and take its longest cached prefix, grow, register
 * newly completed blocks, drop sliding blocks that left the window, release everything.
 *
 * Both tables are indexed by block position; a sliding slot is -1 once wholly out of the window (or when
 * a cached prefix starts past it). Which sequence gets blocks, and when, is the Scheduler's decision.
 */

import { blockHashes, chainHash, prefixRoot } from "@expertmesh/common/prefix";
import { type Engine, trimSlidingWindow } from "@expertmesh/kernels";
import { PrefixCache, type PrefixCacheOptions } from "./prefix-cache.ts";
import type { KvLedger } from "./scheduler.ts";

/** What the cache needs of the native engine: its pools and block geometry. */
export type KvGeometry = Pick<Engine, "blockSize" | "numFullBlocks" | "numSlidingBlocks" | "blocksFor" | "firstLiveSlidingBlock">;

/** A sequence's KV blocks. */
export interface BlockTables {
  full: number[];
  sliding: number[]; // by position; -1 once wholly out of the window
  hashes: string[]; // chain hashes of the complete token blocks computed (or matched) so far
  registered: number; // blocks registered with the prefix cache
}

export const emptyTables = (): BlockTables => ({ full: [], sliding: [], hashes: [], registered: 0 });

export class KvCache {
  readonly full: PrefixCache;
  readonly sliding: PrefixCache;
  /** The hash chain's root: the engine's salt (model, precision, KV dtype), so only equal engines share hashes. */
  readonly root: string;
  readonly #geometry: KvGeometry;

  constructor(geometry: KvGeometry, options: PrefixCacheOptions & { salt?: string } = {}) {
    this.#geometry = geometry;
    this.root = prefixRoot(options.salt ?? "");
    this.full = new PrefixCache(geometry.numFullBlocks, options);
    this.sliding = new PrefixCache(geometry.numSlidingBlocks, options);
  }

  /** Blocks held by sequences in both pools (0 when idle: nothing leaks). */
  get inUse(): number {
    return this.full.inUse + this.sliding.inUse;
  }

  /** Fraction of the full-attention pool not obtainable now (the vLLM KV usage gauge). */
  get usage(): number {
    return 1 - this.full.free / this.full.capacity;
  }

  /** What the Scheduler plans a step against. */
  ledger(): KvLedger {
    return {
      free: { full: this.full.free, sliding: this.sliding.free },
      holds: (pool, block) => this[pool].holds(block),
    };
  }

  /**
   * How many leading blocks of `prompt` are cached in the full pool and, within the window those blocks
   * end at, in the sliding pool; leaves their hashes in tables.hashes. At least one prompt token is
   * always left to compute: the step needs its logits.
   */
  match(tables: BlockTables, prompt: readonly number[]): number {
    const bs = this.#geometry.blockSize;
    const maxBlocks = Math.floor((prompt.length - 1) / bs);
    tables.hashes = [];
    let k = 0;
    while (k < maxBlocks) {
      const h = chainHash(k === 0 ? this.root : (tables.hashes[k - 1] as string), prompt, k, bs);
      if (this.full.peek(h) === undefined) break;
      tables.hashes.push(h);
      k++;
    }
    for (; k > 0; k--) {
      const firstLive = this.#geometry.firstLiveSlidingBlock(k * bs);
      let ok = true;
      for (let i = firstLive; i < k && ok; i++) ok = this.sliding.peek(tables.hashes[i] as string) !== undefined;
      if (ok) break;
    }
    return k;
  }

  /**
   * The hash of `prompt`'s block `hit`, the first one match did not find (tables.hashes holds the
   * `hit` before it); undefined when no further block could be reused (match leaves the last token).
   */
  nextHash(tables: BlockTables, prompt: readonly number[], hit: number): string | undefined {
    const bs = this.#geometry.blockSize;
    if (hit >= Math.floor((prompt.length - 1) / bs)) return undefined;
    return chainHash(hit === 0 ? this.root : (tables.hashes[hit - 1] as string), prompt, hit, bs);
  }

  /** The hashes of every complete block of `tokens`: what a sequence computing them will register. */
  chainOf(tokens: readonly number[]): string[] {
    return blockHashes(this.root, tokens, this.#geometry.blockSize);
  }

  /**
   * Takes references on the first `hit` matched blocks (sliding ones only within the window): from now
   * on they do not count as free. Call before checking what else fits.
   */
  takePrefix(tables: BlockTables, hit: number): void {
    const firstLive = this.#geometry.firstLiveSlidingBlock(hit * this.#geometry.blockSize);
    tables.full = [];
    tables.sliding = [];
    for (let i = 0; i < hit; i++) {
      tables.full.push(this.full.acquire(tables.hashes[i] as string));
      tables.sliding.push(i < firstLive ? -1 : this.sliding.acquire(tables.hashes[i] as string));
    }
    tables.registered = hit;
    tables.hashes.length = hit;
  }

  /** Appends `full` and `sliding` new blocks (the caller checked they are free). */
  grow(tables: BlockTables, full: number, sliding: number): void {
    if (full > 0) for (const b of this.full.allocate(full) as number[]) tables.full.push(b);
    if (sliding > 0) for (const b of this.sliding.allocate(sliding) as number[]) tables.sliding.push(b);
  }

  /** Gives every block back (cached ones stay cached) and forgets the hashes. */
  release(tables: BlockTables): void {
    this.full.release(tables.full.splice(0));
    this.sliding.release(tables.sliding.splice(0));
    tables.hashes = [];
    tables.registered = 0;
  }

  /**
   * Registers the blocks completed by the first `computed` positions. `tokens` gives the sequence's tokens
   * in position order, asked for only when a block completed.
   */
  register(tables: BlockTables, computed: number, tokens: () => readonly number[]): void {
    const bs = this.#geometry.blockSize;
    const complete = Math.floor(computed / bs);
    if (complete <= tables.registered) return;
    const all = tokens();
    for (let i = tables.registered; i < complete; i++) {
      const h = tables.hashes[i] ?? chainHash(i === 0 ? this.root : (tables.hashes[i - 1] as string), all, i, bs);
      tables.hashes[i] = h;
      this.full.register(tables.full[i] as number, h);
      const s = tables.sliding[i] as number;
      if (s >= 0) this.sliding.register(s, h);
    }
    tables.registered = complete;
  }

  /** The first block of the sliding window where a prefix of `blocks` blocks ends: the sliding blocks resuming it needs. */
  windowStart(blocks: number): number {
    return this.#geometry.firstLiveSlidingBlock(blocks * this.#geometry.blockSize);
  }

  /**
   * Marks kept (evicted last) the cached sliding blocks from the window where a prefix of `from` blocks
   * ends up to block `to` (exclusive; at most the registered blocks): where a later prompt sharing the
   * prefix, or any longer one up to `to`, resumes.
   */
  keepWindow(tables: BlockTables, from: number, to = from): void {
    const end = Math.min(to, tables.registered, tables.hashes.length);
    for (let i = this.windowStart(Math.min(from, end)); i < end; i++) this.sliding.keep(tables.hashes[i] as string);
  }

  /** Frees the sliding blocks that lie wholly before the window of a step starting at `nextPos`. */
  trim(tables: BlockTables, nextPos: number): void {
    trimSlidingWindow(this.#geometry, tables.sliding, nextPos, (b) => this.sliding.release([b]));
  }
}
