/**
 * PrefixCache: the KV blocks of one pool (full-attention or sliding-window layers) with reference counts,
 * and the prefix cache over them. A block holding a complete block of tokens is registered under a hash
 * chained over every block before it (chainHash), so equal hashes mean equal prefixes. It stays cached
 * after its last user releases it, least-recently-used first to be evicted, and a later prompt with the
 * same prefix reuses it. Blocks are immutable once full: sharing needs no copy-on-write.
 *
 * Kept blocks (keep) are evicted only after every other evictable block: in the sliding-window pool, the
 * windows at the ends of cached prefixes, without which those prefixes cannot be resumed, outlast the
 * blocks that merely slid out of a running sequence's window.
 *
 * Pins keep a cached block from eviction for a while (a prefix many requests share). The caller gives the
 * expiry and the clock: nothing here runs on a timer. At most maxPinned blocks are pinned at once; a
 * pinned block does not count as free, so the caller ends pins when live requests need the blocks.
 *
 * Knows nothing of sequences or of the sliding window (kv-cache.ts does).
 */
import { BlockPool } from "@expertmesh/kernels";

export interface PrefixCacheOptions {
  /** Most blocks pinned at once (default: a quarter of the pool). */
  maxPinned?: number;
}

export class PrefixCache {
  readonly capacity: number;
  readonly maxPinned: number;
  readonly #pool: BlockPool;
  readonly #refs = new Map<number, number>();
  readonly #hashOf = new Map<number, string>();
  readonly #byHash = new Map<string, number>();
  readonly #lru = new Set<number>(); // cached blocks nobody references or pins, oldest first
  readonly #keptLru = new Set<number>(); // the same for kept blocks: evicted after every block of #lru
  readonly #kept = new Set<number>(); // kept blocks, whatever holds them (until evicted)
  readonly #pins = new Map<number, number>(); // block → pinned until (on the caller's clock)

  constructor(capacity: number, options: PrefixCacheOptions = {}) {
    this.capacity = capacity;
    this.maxPinned = options.maxPinned ?? Math.floor(capacity / 4);
    this.#pool = new BlockPool(capacity);
  }

  /** Blocks obtainable now: never used plus cached ones nobody references or pins (evictable). */
  get free(): number {
    return this.#pool.free + this.#lru.size + this.#keptLru.size;
  }

  /** Blocks referenced by at least one sequence. */
  get inUse(): number {
    return this.#refs.size;
  }

  /** Blocks registered under a hash (referenced, pinned or evictable). */
  get cached(): number {
    return this.#byHash.size;
  }

  /** Cached blocks marked kept (keep). */
  get kept(): number {
    return this.#kept.size;
  }

  /** Blocks pinned now. */
  get pinned(): number {
    return this.#pins.size;
  }

  /** Takes n blocks (evicting cached ones, oldest first, if needed), or null when fewer than n are obtainable. */
  allocate(n: number): number[] | null {
    if (n > this.free) return null;
    while (this.#pool.free < n) {
      const tier = this.#lru.size > 0 ? this.#lru : this.#keptLru;
      const oldest = tier.values().next().value as number;
      tier.delete(oldest);
      this.#kept.delete(oldest);
      this.#byHash.delete(this.#hashOf.get(oldest) as string);
      this.#hashOf.delete(oldest);
      this.#pool.release([oldest]);
    }
    const blocks = this.#pool.allocate(n) as number[];
    for (const b of blocks) this.#refs.set(b, 1);
    return blocks;
  }

  /** Drops one reference per block (-1 entries are skipped); unreferenced hashed blocks stay cached, others return to the pool. */
  release(blocks: readonly number[]): void {
    for (const b of blocks) {
      if (b < 0) continue;
      const refs = (this.#refs.get(b) ?? 0) - 1;
      if (refs > 0) {
        this.#refs.set(b, refs);
        continue;
      }
      this.#refs.delete(b);
      if (this.#hashOf.has(b)) this.#idle(b);
      else this.#pool.release([b]);
    }
  }

  /** Records that `block` holds the token block identified by `hash` (first writer wins). */
  register(block: number, hash: string): void {
    if (this.#hashOf.has(block) || this.#byHash.has(hash)) return;
    this.#hashOf.set(block, hash);
    this.#byHash.set(hash, block);
  }

  /** The cached block for `hash`, if any, without taking it. */
  peek(hash: string): number | undefined {
    return this.#byHash.get(hash);
  }

  /** Takes a reference on the cached block for `hash`. */
  acquire(hash: string): number {
    const b = this.#byHash.get(hash);
    if (b === undefined) throw new Error(`no cached block for ${hash}`);
    this.#lru.delete(b);
    this.#keptLru.delete(b);
    this.#refs.set(b, (this.#refs.get(b) ?? 0) + 1);
    return b;
  }

  /** What keeps `block` from being free: its references, plus one while pinned (0: free or evictable). */
  holds(block: number): number {
    return (this.#refs.get(block) ?? 0) + (this.#pins.has(block) ? 1 : 0);
  }

  /**
   * Keeps the cached block for `hash` from eviction until `until` (the clock expirePins is given), or
   * until unpinned; pinning a pinned block again keeps the later expiry. False when nothing is cached
   * under `hash` or maxPinned blocks are pinned already.
   */
  pin(hash: string, until: number): boolean {
    const b = this.#byHash.get(hash);
    if (b === undefined) return false;
    const current = this.#pins.get(b);
    if (current === undefined && this.#pins.size >= this.maxPinned) return false;
    this.#pins.set(b, Math.max(current ?? until, until));
    this.#lru.delete(b);
    this.#keptLru.delete(b);
    return true;
  }

  /**
   * Marks the cached block for `hash` kept: once nothing holds it, it is evicted only after every block
   * not kept. Lasts until it is evicted. False when nothing is cached under `hash`.
   */
  keep(hash: string): boolean {
    const b = this.#byHash.get(hash);
    if (b === undefined) return false;
    if (this.#kept.has(b)) return true;
    this.#kept.add(b);
    if (this.#lru.delete(b)) this.#keptLru.add(b);
    return true;
  }

  /** Releases the pin on `hash`'s block; false when it was not pinned. */
  unpin(hash: string): boolean {
    const b = this.#byHash.get(hash);
    if (b === undefined || !this.#pins.delete(b)) return false;
    if (!this.#refs.has(b)) this.#idle(b);
    return true;
  }

  /** Releases every pin whose expiry is at or before `now`; returns how many. */
  expirePins(now: number): number {
    let expired = 0;
    for (const [b, until] of this.#pins) {
      if (until > now) continue;
      this.#pins.delete(b);
      if (!this.#refs.has(b)) this.#idle(b);
      expired++;
    }
    return expired;
  }

  /** The hashes of every cached block (referenced, pinned or evictable): what the worker publishes. */
  hashes(): IterableIterator<string> {
    return this.#byHash.keys();
  }

  /** Whether `hash`'s block is pinned now. */
  isPinned(hash: string): boolean {
    const b = this.#byHash.get(hash);
    return b !== undefined && this.#pins.has(b);
  }

  /** An unreferenced cached block becomes evictable (the newest of its tier) unless pinned. */
  #idle(block: number): void {
    if (this.#pins.has(block)) return;
    if (this.#kept.has(block)) this.#keptLru.add(block);
    else this.#lru.add(block);
  }
}
