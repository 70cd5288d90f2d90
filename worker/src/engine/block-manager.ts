/**
 * BlockManager: the KV blocks of one pool (full-attention or sliding-window layers) with reference counts
 * and a prefix cache. A block that holds a complete, hashed block of tokens stays cached after its last
 * user releases it (least-recently-used first to be evicted), so a later prompt with the same prefix
 * reuses it. Blocks are immutable once full: sharing needs no copy-on-write.
 */
import { BlockPool } from "@expertmesh/kernels";

export class BlockManager {
  readonly capacity: number;
  readonly #pool: BlockPool;
  readonly #refs = new Map<number, number>();
  readonly #hashOf = new Map<number, string>();
  readonly #byHash = new Map<string, number>();
  readonly #lru = new Set<number>(); // cached blocks nobody references, oldest first

  constructor(capacity: number) {
    this.capacity = capacity;
    this.#pool = new BlockPool(capacity);
  }

  /** Blocks obtainable now: never used plus cached-but-unreferenced (evictable). */
  get free(): number {
    return this.#pool.free + this.#lru.size;
  }

  /** Blocks referenced by at least one sequence. */
  get inUse(): number {
    return this.capacity - this.free;
  }

  /** Takes n blocks (evicting cached ones if needed), or null when fewer than n are obtainable. */
  allocate(n: number): number[] | null {
    if (n > this.free) return null;
    while (this.#pool.free < n) {
      const oldest = this.#lru.values().next().value as number;
      this.#lru.delete(oldest);
      this.#byHash.delete(this.#hashOf.get(oldest) as string);
      this.#hashOf.delete(oldest);
      this.#pool.release([oldest]);
    }
    const blocks = this.#pool.allocate(n) as number[];
    for (const b of blocks) this.#refs.set(b, 1);
    return blocks;
  }

  /** Drops one reference per block; unreferenced hashed blocks stay cached, others return to the pool. */
  release(blocks: readonly number[]): void {
    for (const b of blocks) {
      if (b < 0) continue;
      const refs = (this.#refs.get(b) ?? 0) - 1;
      if (refs > 0) {
        this.#refs.set(b, refs);
        continue;
      }
      this.#refs.delete(b);
      if (this.#hashOf.has(b)) this.#lru.add(b);
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
    this.#refs.set(b, (this.#refs.get(b) ?? 0) + 1);
    return b;
  }
}
