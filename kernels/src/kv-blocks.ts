/**
 * A free list of KV block ids. The scheduler owns block tables (as in vLLM): it allocates blocks for a
 * sequence's positions and passes the tables with every step; the native engine only reads/writes them.
 */
export class BlockPool {
  readonly capacity: number;
  readonly #free: number[];

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 0)
      throw new RangeError(`block pool capacity must be a non-negative integer, got ${capacity}`);
    this.capacity = capacity;
    this.#free = Array.from({ length: capacity }, (_, i) => capacity - 1 - i);
  }

  get free(): number {
    return this.#free.length;
  }

  /** Takes n blocks, or returns null (and takes none) when fewer are free. */
  allocate(n: number): number[] | null {
    if (n > this.#free.length) return null;
    return this.#free.splice(this.#free.length - n, n).reverse();
  }

  release(blocks: readonly number[]): void {
    for (const b of blocks) {
      if (!Number.isInteger(b) || b < 0 || b >= this.capacity) throw new RangeError(`block ${b} is not in this pool`);
      this.#free.push(b);
    }
  }
}
