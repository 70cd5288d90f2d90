/**
 * ToolPins: the pins of tool loops. A generation that ends in a tool call pins its prefix's blocks (its
 * chain hashes, leading ones first) under its request id for a TTL, so the follow-up turn — the same
 * prefix plus the tool's result — finds them cached. A block two loops share (their common system
 * prompt) stays pinned until the last of them lets go.
 *
 * A key's pin ends when the follow-up arrives (release), when its TTL passes (expire, on the caller's
 * clock) or under memory pressure (releaseOldest: the oldest key first). The PrefixCache bounds the
 * blocks pinned at once (its maxPinned share of the pool), so a key may pin only a leading part of its
 * prefix, or nothing.
 */
import type { PrefixCache } from "./prefix-cache.ts";

interface Pin {
  hashes: string[];
  until: number;
}

export class ToolPins {
  readonly #pools: readonly PrefixCache[];
  readonly #byKey = new Map<string, Pin>(); // insertion order: oldest first
  readonly #keysOf = new Map<string, number>(); // hash → keys pinning it

  /** pools: the full-attention pool first (its count is what a pin reports), then the sliding one. */
  constructor(pools: readonly PrefixCache[]) {
    this.#pools = pools;
  }

  /** Keys pinned now. */
  get size(): number {
    return this.#byKey.size;
  }

  /** Blocks of the first pool pinned now. */
  get blocks(): number {
    return this.#keysOf.size;
  }

  /**
   * Pins the leading blocks of `hashes` under `key` until `until`; returns how many (0: none cached, or
   * the pinned share is used up). Pinning a key again replaces its pin.
   */
  pin(key: string, hashes: readonly string[], until: number): number {
    this.release(key);
    const [full] = this.#pools;
    const pinned: string[] = [];
    for (const h of hashes) {
      if (!this.#keysOf.has(h)) {
        // A block out of the sliding window has no sliding copy: the full pool decides.
        if (!full?.pin(h, Number.POSITIVE_INFINITY)) break;
        for (const p of this.#pools.slice(1)) p.pin(h, Number.POSITIVE_INFINITY);
      }
      this.#keysOf.set(h, (this.#keysOf.get(h) ?? 0) + 1);
      pinned.push(h);
    }
    if (pinned.length > 0) this.#byKey.set(key, { hashes: pinned, until });
    return pinned.length;
  }

  /** Ends `key`'s pin; false when it had none. */
  release(key: string): boolean {
    const pin = this.#byKey.get(key);
    if (!pin) return false;
    this.#byKey.delete(key);
    for (const h of pin.hashes) {
      const n = (this.#keysOf.get(h) ?? 1) - 1;
      if (n > 0) {
        this.#keysOf.set(h, n);
        continue;
      }
      this.#keysOf.delete(h);
      for (const p of this.#pools) p.unpin(h);
    }
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
