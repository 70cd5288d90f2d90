/**
 * LocalSequence: one sequence on an Engine with its own blocks — what the CLI, tests and benchmarks use
 * to prefill, decode and read logits without a scheduler. The worker's scheduler does the same for many
 * sequences, and frees sliding-window blocks with the same trimSlidingWindow.
 */
import type { Engine, StepSequence } from "./engine.ts";
import type { BlockPool } from "./kv-blocks.ts";

/**
 * Frees the sliding-window blocks of a block table that lie wholly before the window of a step starting
 * at `nextPos`: each goes to `release` once, and its slot becomes -1 (the engine skips those slots).
 */
export function trimSlidingWindow(
  engine: Pick<Engine, "firstLiveSlidingBlock">,
  slidingBlocks: number[],
  nextPos: number,
  release: (block: number) => void,
): void {
  const firstLive = engine.firstLiveSlidingBlock(nextPos);
  for (let i = 0; i < firstLive && i < slidingBlocks.length; i++) {
    const b = slidingBlocks[i] as number;
    if (b >= 0) {
      release(b);
      slidingBlocks[i] = -1;
    }
  }
}

export class LocalSequence {
  readonly #engine: Engine;
  readonly #full: BlockPool;
  readonly #sliding: BlockPool;
  readonly fullBlocks: number[] = [];
  readonly slidingBlocks: number[] = [];
  length = 0;

  constructor(engine: Engine, full: BlockPool, sliding: BlockPool) {
    this.#engine = engine;
    this.#full = full;
    this.#sliding = sliding;
  }

  /** Ensures blocks for `extra` more positions; returns false (allocating nothing) when a pool is short. */
  reserve(extra: number): boolean {
    const want = this.#engine.blocksFor(this.length + extra);
    const needFull = want - this.fullBlocks.length;
    const needSliding = want - this.slidingBlocks.length;
    if (needFull > this.#full.free || needSliding > this.#sliding.free) return false;
    if (needFull > 0) for (const b of this.#full.allocate(needFull) as number[]) this.fullBlocks.push(b);
    if (needSliding > 0) for (const b of this.#sliding.allocate(needSliding) as number[]) this.slidingBlocks.push(b);
    return true;
  }

  /** The step entry for the next `tokens` of this sequence (call reserve first, advance after). */
  entry(tokens: ArrayLike<number>, extra: Partial<StepSequence> = {}): StepSequence {
    return { tokens, posBegin: this.length, fullBlocks: this.fullBlocks, slidingBlocks: this.slidingBlocks, ...extra };
  }

  /** Moves past `n` positions and frees the sliding blocks that fell wholly out of the window. */
  advance(n: number): void {
    this.length += n;
    trimSlidingWindow(this.#engine, this.slidingBlocks, this.length, (b) => this.#sliding.release([b]));
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
    this.#sliding.release(this.slidingBlocks.splice(0).filter((b) => b >= 0));
  }
}
