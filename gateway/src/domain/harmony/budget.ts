/**
 * A cooperative bound on tokenizing and rendering work: the encoder calls check() every few thousand
 * units of work (pieces and merges), and check() throws — the caller's own error — when the work must
 * stop: its client has gone, or it has spent the CPU time it was given.
 */
export interface WorkBudget {
  /** Throws when the work must stop (the caller's AppError). */
  check(): void;
}

/** A budget of wall-clock time from now, with an optional signal (the client's request) that ends it early. */
export function deadlineBudget(ms: number, onExceeded: () => Error, signal?: AbortSignal): WorkBudget {
  const deadline = performance.now() + ms;
  return {
    check() {
      if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : onExceeded();
      if (performance.now() > deadline) throw onExceeded();
    },
  };
}
