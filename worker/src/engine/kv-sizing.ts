/**
 * How many blocks the sliding-window KV pool gets. Sliding layers keep only the last `window` positions,
 * so a running sequence needs its window (plus a block boundary on each side) and this step's prefill
 * chunks, which the token budget bounds. A cached prefix is reusable only if the sliding blocks of the
 * window where it ends are cached too (KvCache.match): without room for those, the full pool's cached
 * prefixes could never be resumed once their sequences end. So the pool also keeps `cachedWindows`
 * windows of ended sequences (the window at the end of each prompt and of what it generated).
 *
 * Default cachedWindows: one per two windows' worth of the full pool, so every cached conversation at
 * least two windows long (256 tokens for gpt-oss's 128-token window) keeps its last window; the sliding
 * pool then takes about half the full pool's blocks on top of the live sequences' share.
 */

export interface SlidingPoolInput {
  blockSize: number;
  /** The model's sliding window, in positions. */
  window: number;
  maxNumSeqs: number;
  maxTokensPerStep: number;
  /** The full-attention pool's blocks (WORKER_KV_NUM_BLOCKS). */
  fullBlocks: number;
  /** Cached prefixes' windows to keep room for (WORKER_KV_CACHED_WINDOWS; absent: the default above). */
  cachedWindows?: number | undefined;
}

export interface SlidingPoolSize {
  /** What running sequences need: their windows and one step's chunks. */
  live: number;
  cachedWindows: number;
  /** Blocks one cached window takes. */
  windowBlocks: number;
  total: number;
}

/** Blocks the window ending at any position spans: ceil(window / blockSize), plus one when not aligned. */
export function windowBlocks(window: number, blockSize: number): number {
  return Math.ceil(window / blockSize) + 1;
}

/** The default number of cached windows: a window per two windows' worth of full-pool blocks. */
export function defaultCachedWindows(fullBlocks: number, window: number, blockSize: number): number {
  return Math.floor(fullBlocks / (2 * windowBlocks(window, blockSize)));
}

export function slidingPoolSize(p: SlidingPoolInput): SlidingPoolSize {
  const perWindow = windowBlocks(p.window, p.blockSize);
  const live = p.maxNumSeqs * (Math.ceil(p.window / p.blockSize) + 2) + Math.ceil(p.maxTokensPerStep / p.blockSize);
  const cachedWindows = p.cachedWindows ?? defaultCachedWindows(p.fullBlocks, p.window, p.blockSize);
  return { live, cachedWindows, windowBlocks: perWindow, total: live + cachedWindows * perWindow };
}
