/**
 * ToolPins: the pins of tool loops. A generation that ends in a tool call pins its prefix's blocks (its
 * chain hashes, leading ones first) under its request id for a TTL, so the follow-up turn — the same
 * prefix plus the tool's result — finds them cached. In the full-attention pool that is the whole
 * prefix; in the sliding-window pool only the window where the follow-up resumes (from the window at the
 * end of the turn's prompt to the end of the prefix), the only sliding blocks a match needs. A block two
 * loops share (their common system prompt) stays pinned until the last of them lets go.
 *
 * A key's pin ends when the follow-up arrives (release), when its TTL passes (expire, on the caller's
 * clock) or under memory pressure (releaseOldest: the oldest key first). The PrefixCaches bound the
 * blocks pinned at once (their maxPinned), so a key may pin only a leading part of its prefix, or nothing.
 */
import type { PrefixCache } from "./prefix-cache.ts";

export interface PinnedPools {
  full: PrefixCache;
  sliding: PrefixCache;
  /** The first block of the sliding window where a prefix of `blocks` blocks ends (KvCache.windowStart). */
  windowStart(blocks: number): number;
}

interface Pin {
  full: string[];
  sliding: string[];
  until: number;
}

type PoolName = "full" | "sliding";

export class ToolPins {
  readonly #pools: PinnedPools;
  readonly #byKey = new Map<string, Pin>(); // insertion order: oldest first
  readonly #keysOf = { full: new Map<string, number>(), sliding: new Map<string, number>() }; // hash → keys pinning it

  constructor(pools: PinnedPools) {
    this.#pools = pools;
  }

  /** Keys pinned now. */
  get size(): number {
    return this.#byKey.size;
  }

  /** Blocks of the full pool pinned now. */
  get blocks(): number {
    return this.#keysOf.full.size;
  }

  /**
   * Pins the leading blocks of `hashes` under `key` until `until`; returns how many full-pool blocks (0:
   * none cached, or the pinned share is used up). `resumeAt`: where the follow-up is expected to diverge
   * (blocks; default the whole prefix): the sliding pool pins from the window ending there to the end of
   * what the full pool pinned. Pinning a key again replaces its pin.
   */
  pin(key: string, hashes: readonly string[], until: number, resumeAt = hashes.length): number {
    this.release(key);
    const full = this.#take("full", hashes);
    if (full.length === 0) return 0;
    const from = this.#pools.windowStart(Math.min(resumeAt, full.length));
    const sliding = this.#take("sliding", full.slice(from));
    this.#byKey.set(key, { full, sliding, until });
    return full.length;
  }

  /** Pins `hashes` in `pool` in order, up to the first that is neither pinned already nor pinnable; returns those pinned. */
  #take(pool: PoolName, hashes: readonly string[]): string[] {
    const counts = this.#keysOf[pool];
    const taken: string[] = [];
    for (const h of hashes) {
      if (!counts.has(h) && !this.#pools[pool].pin(h, Number.POSITIVE_INFINITY)) break;
      counts.set(h, (counts.get(h) ?? 0) + 1);
      taken.push(h);
    }
    return taken;
  }

  #drop(pool: PoolName, hashes: readonly string[]): void {
    const counts = this.#keysOf[pool];
    for (const h of hashes) {
      const n = (counts.get(h) ?? 1) - 1;
      if (n > 0) {
        counts.set(h, n);
        continue;
      }
      counts.delete(h);
      this.#pools[pool].unpin(h);
    }
  }

  /** Ends `key`'s pin; false when it had none. */
  release(key: string): boolean {
    const pin = this.#byKey.get(key);
    if (!pin) return false;
    this.#byKey.delete(key);
    this.#drop("full", pin.full);
    this.#drop("sliding", pin.sliding);
    return true;
  }

  /** Ends every pin whose TTL passed at `now`; returns how many. */
  expire(now: number): number {
    let n = 0;
    for (const [key, pin] of this.#byKey) if (pin.until <= now && this.release(key)) n++;
    return n;
  }

  /** Ends the oldest pin (memory pressure); false when none is left. */
  releaseOldest(): boolean {
    const oldest = this.#byKey.keys().next();
    return !oldest.done && this.release(oldest.value);
  }
}
