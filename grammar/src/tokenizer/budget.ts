/**
 * A cooperative bound on tokenizing and rendering work: the encoder calls check() every few thousand
 * units of work (pieces and merges), and check() throws — the caller's own error — when the work must
 * stop: its client has gone, or it has spent the CPU time it was given.
 */
export interface WorkBudget {
  /** Throws when the work must stop (the caller's AppError). */
  check(): void;
}

/** Milliseconds on some monotonic clock: wall time, or the CPU time of the calling thread. */
export type Clock = () => number;

export const wallClock: Clock = () => performance.now();

/**
 * The CPU time of the calling thread. A prompt thread runs at a lower priority than the event loop and
 * the engine, so on a busy machine it waits; a budget of CPU time does not count that waiting against
 * the request, only the work its input costs.
 */
export const threadCpuClock: Clock = () => {
  const { user, system } = process.threadCpuUsage();
  return (user + system) / 1000;
};

/** A budget of `ms` on `clock` from now, with an optional signal (the client's request) that ends it early. */
export function deadlineBudget(ms: number, onExceeded: () => Error, signal?: AbortSignal, clock: Clock = wallClock): WorkBudget {
  const deadline = clock() + ms;
  return {
    check() {
      if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : onExceeded();
      if (clock() > deadline) throw onExceeded();
    },
  };
}
