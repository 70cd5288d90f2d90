/**
 * Batch lines yield to online traffic at this gateway: while any online generation is in flight, or one
 * ended less than `quietMs` ago, at most `maxWhileOnline` batch generations run (the rest wait here,
 * before admission, holding no worker slot); once online traffic has been quiet that long, batch lines
 * run freely (bounded by the runners' concurrency). The quiet period keeps a batch from flooding the
 * engines in the instant between two online requests (a line then holds its rows for its whole length). This is
 * what keeps online TTFT near its idle figure on engines whose step time grows with every row (CPU),
 * where the workers' ONLINE-before-BATCH admission alone cannot help requests already sharing a step.
 * The view is this gateway's own traffic; with several replicas each applies it to what it sees.
 */
export class BatchGate {
  readonly #maxWhileOnline: number;
  readonly #quietMs: number;
  readonly #now: () => number;
  #lastOnline = Number.NEGATIVE_INFINITY;
  #online = 0;
  #batch = 0;
  #waiters = new Set<() => void>();

  constructor(maxWhileOnline: number, quietMs: number, now: () => number = performance.now.bind(performance)) {
    this.#maxWhileOnline = maxWhileOnline;
    this.#quietMs = quietMs;
    this.#now = now;
  }

  get online(): number {
    return this.#online;
  }

  get batch(): number {
    return this.#batch;
  }

  /** Marks an online generation in flight; call the result when it ends. */
  enterOnline(): () => void {
    this.#online++;
    return once(() => {
      this.#online--;
      this.#lastOnline = this.#now();
      this.#wake();
    });
  }

  /** Waits for a batch slot (or the signal); call the result when the generation ends. */
  async enterBatch(signal: AbortSignal): Promise<() => void> {
    for (;;) {
      const quietIn = this.#online > 0 ? Number.POSITIVE_INFINITY : this.#lastOnline + this.#quietMs - this.#now();
      if (quietIn <= 0 || this.#batch < this.#maxWhileOnline) break;
      signal.throwIfAborted();
      await new Promise<void>((resolve) => {
        // Woken when a generation ends, when the signal aborts, or when online traffic has been quiet long enough.
        const timer = Number.isFinite(quietIn) ? setTimeout(() => wake(), quietIn) : undefined;
        const wake = () => {
          clearTimeout(timer);
          this.#waiters.delete(wake);
          signal.removeEventListener("abort", wake);
          resolve();
        };
        this.#waiters.add(wake);
        signal.addEventListener("abort", wake, { once: true });
      });
    }
    signal.throwIfAborted();
    this.#batch++;
    return once(() => {
      this.#batch--;
      this.#wake();
    });
  }

  #wake(): void {
    for (const w of [...this.#waiters]) w();
  }
}

function once(f: () => void): () => void {
  let done = false;
  return () => {
    if (!done) {
      done = true;
      f();
    }
  };
}
