/**
 * LocalSequence: one sequence on an Engine with its own blocks — what the CLI and tests use to prefill,
 * decode and read logits without a scheduler. The worker's scheduler does the same for many sequences.
 */
import type { Engine, StepSequence } from "./engine.ts";
import type { BlockPool } from "./kv-blocks.ts";

export class LocalSequence {
  readonly #engine: Engine;
  readonly #full: BlockPool;
  readonly #ring: BlockPool;
  readonly fullBlocks: number[] = [];
  readonly ringBlocks: number[];
  length = 0;

  constructor(engine: Engine, full: BlockPool, ring: BlockPool) {
    this.#engine = engine;
    this.#full = full;
    this.#ring = ring;
    const r = ring.allocate(engine.ringBlocksPerSeq);
    if (!r) throw new Error("LocalSequence: no free ring blocks");
    this.ringBlocks = r;
  }

  /** Ensures blocks for `extra` more positions; returns false (allocating nothing) when the pool is short. */
  reserve(extra: number): boolean {
    const need = this.#engine.blocksFor(this.length + extra) - this.fullBlocks.length;
    if (need <= 0) return true;
    const got = this.#full.allocate(need);
    if (!got) return false;
    this.fullBlocks.push(...got);
    return true;
  }

  /** The step entry for the next `tokens` of this sequence (call reserve first, advance after). */
  entry(tokens: ArrayLike<number>, extra: Partial<StepSequence> = {}): StepSequence {
    return { tokens, posBegin: this.length, fullBlocks: this.fullBlocks, ringBlocks: this.ringBlocks, ...extra };
  }

  advance(n: number): void {
    this.length += n;
  }

  /** Feeds tokens (in chunks of at most chunk rows) and returns the logits of every position. */
  async feed(tokens: readonly number[], options: { chunk?: number; allLogits?: boolean } = {}): Promise<Float32Array[]> {
    const chunk = options.chunk ?? tokens.length;
    const out: Float32Array[] = [];
    for (let i = 0; i < tokens.length; i += chunk) {
      const part = tokens.slice(i, i + chunk);
      if (!this.reserve(part.length)) throw new Error("LocalSequence: KV cache is full");
      const [result] = await this.#engine.step([this.entry(part, { allLogits: options.allLogits ?? true })]);
      this.advance(part.length);
      if (result?.logits) out.push(result.logits);
    }
    return out;
  }

  release(): void {
    this.#full.release(this.fullBlocks.splice(0));
    this.#ring.release(this.ringBlocks);
  }
}
