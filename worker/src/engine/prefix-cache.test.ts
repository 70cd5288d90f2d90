/**
 * PrefixCache alone (the chained block hash is common/src/prefix-hash.test.ts): reference counts, least-recently-used eviction and pins
 * (expiry on the caller's clock, a cap on pinned blocks). The worker-level behaviour (hits over gRPC,
 * exact outputs) is in batch-engine.prefix-cache.test.ts.
 */
import { describe, expect, it } from "vitest";
import { PrefixCache } from "./prefix-cache.ts";

/** A cache whose blocks each hold one registered token block, all released (cached, evictable). */
function cachedBlocks(capacity: number, hashes: string[], options = {}) {
  const cache = new PrefixCache(capacity, options);
  const blocks = cache.allocate(hashes.length) as number[];
  for (const [i, h] of hashes.entries()) cache.register(blocks[i] as number, h);
  return { cache, blocks };
}

describe("PrefixCache reference counts", () => {
  it("an unregistered block returns to the pool at its last release; a registered one stays cached", () => {
    const cache = new PrefixCache(4);
    const [a, b] = cache.allocate(2) as number[];
    expect(cache.free).toBe(2);
    expect(cache.inUse).toBe(2);
    cache.register(b as number, "hb");
    expect(cache.acquire("hb")).toBe(b);
    cache.release([a as number, b as number]);
    expect(cache.inUse).toBe(1); // b still has its second reference
    expect(cache.holds(b as number)).toBe(1);
    cache.release([b as number, -1]); // -1: a slot trimmed out of the window
    expect(cache.inUse).toBe(0);
    expect(cache.free).toBe(4);
    expect(cache.peek("hb")).toBe(b);
  });

  it("allocate takes nothing when fewer blocks are obtainable", () => {
    const cache = new PrefixCache(3);
    cache.allocate(2);
    expect(cache.allocate(2)).toBeNull();
    expect(cache.free).toBe(1);
  });

  it("the first block registered under a hash keeps it", () => {
    const cache = new PrefixCache(2);
    const [a, b] = cache.allocate(2) as number[];
    cache.register(a as number, "h");
    cache.register(b as number, "h");
    cache.register(a as number, "other");
    expect(cache.peek("h")).toBe(a);
    expect(cache.peek("other")).toBeUndefined();
  });
});

describe("PrefixCache eviction", () => {
  it("evicts cached blocks least recently released first, only when the pool has no unused block", () => {
    const { cache, blocks } = cachedBlocks(4, ["h0", "h1", "h2"]);
    const [b0, b1, b2] = blocks as [number, number, number];
    cache.release([b1, b0, b2]);
    expect(cache.free).toBe(4);
    cache.allocate(1); // the unused block
    expect([cache.peek("h0"), cache.peek("h1"), cache.peek("h2")]).toEqual([b0, b1, b2]);
    cache.allocate(1);
    expect(cache.peek("h1")).toBeUndefined();
    expect(cache.peek("h0")).toBe(b0);
  });

  it("a cached block taken again is no longer evictable, and is the newest once released", () => {
    const { cache, blocks } = cachedBlocks(2, ["h0", "h1"]);
    cache.release(blocks);
    cache.acquire("h0");
    expect(cache.free).toBe(1);
    cache.release([blocks[0] as number]);
    cache.allocate(1);
    expect(cache.peek("h1")).toBeUndefined();
    expect(cache.peek("h0")).toBe(blocks[0]);
  });
});

describe("PrefixCache pins", () => {
  it("a pinned block is neither free nor evicted until its pin expires on the caller's clock", () => {
    const { cache, blocks } = cachedBlocks(3, ["h0", "h1", "h2"], { maxPinned: 1 });
    cache.release(blocks);
    expect(cache.pin("h0", 1000)).toBe(true);
    expect(cache.free).toBe(2);
    expect(cache.pinned).toBe(1);
    expect(cache.holds(blocks[0] as number)).toBe(1);
    expect(cache.allocate(3)).toBeNull();
    cache.allocate(2);
    expect(cache.peek("h0")).toBe(blocks[0]);
    expect(cache.expirePins(999)).toBe(0);
    expect(cache.expirePins(1000)).toBe(1);
    expect(cache.free).toBe(1);
    cache.allocate(1);
    expect(cache.peek("h0")).toBeUndefined();
  });

  it("unpin releases at once; a pinned block in use stays pinned after its last release", () => {
    const { cache, blocks } = cachedBlocks(2, ["h0", "h1"], { maxPinned: 2 });
    expect(cache.pin("h0", 50)).toBe(true);
    cache.release(blocks);
    expect(cache.free).toBe(1);
    expect(cache.inUse).toBe(0);
    expect(cache.unpin("h0")).toBe(true);
    expect(cache.unpin("h0")).toBe(false);
    expect(cache.free).toBe(2);
    // Back among the evictable ones as the newest: h1 goes first.
    cache.allocate(1);
    expect(cache.peek("h1")).toBeUndefined();
  });

  it("pinning again keeps the later expiry", () => {
    const { cache, blocks } = cachedBlocks(2, ["h0"], { maxPinned: 1 });
    cache.release(blocks);
    cache.pin("h0", 100);
    cache.pin("h0", 50);
    expect(cache.expirePins(60)).toBe(0);
    expect(cache.expirePins(100)).toBe(1);
  });

  it("refuses pins past maxPinned (live requests keep the rest) and hashes that are not cached", () => {
    const { cache, blocks } = cachedBlocks(8, ["h0", "h1", "h2"]);
    cache.release(blocks);
    expect(cache.maxPinned).toBe(2); // a quarter of the pool by default
    expect(cache.pin("h0", 10)).toBe(true);
    expect(cache.pin("h1", 10)).toBe(true);
    expect(cache.pin("h2", 10)).toBe(false);
    expect(cache.pin("h0", 20)).toBe(true); // already pinned: extends, takes no new place
    expect(cache.pin("nothing", 10)).toBe(false);
    expect(cache.pinned).toBe(2);
    expect(cache.free).toBe(6);
  });
});

describe("PrefixCache kept blocks", () => {
  it("evicts every block not kept before a kept one, each tier oldest first", () => {
    const { cache, blocks } = cachedBlocks(4, ["a", "b", "c", "d"]);
    cache.release(blocks); // evictable in order a, b, c, d
    expect(cache.keep("a")).toBe(true);
    expect(cache.keep("c")).toBe(true);
    expect(cache.keep("missing")).toBe(false);
    expect(cache.kept).toBe(2);
    expect(cache.free).toBe(4); // kept blocks are still obtainable
    cache.allocate(1);
    expect(cache.peek("b")).toBeUndefined();
    cache.allocate(1);
    expect(cache.peek("d")).toBeUndefined();
    expect(cache.peek("a")).toBeDefined();
    cache.allocate(1);
    expect(cache.peek("a")).toBeUndefined(); // then the oldest kept one
    expect(cache.peek("c")).toBeDefined();
    expect(cache.kept).toBe(1);
  });

  it("a block kept while in use joins the kept tier when released; acquiring and pinning take it out", () => {
    const { cache, blocks } = cachedBlocks(3, ["a", "b"], { maxPinned: 1 });
    cache.keep("a");
    cache.release(blocks);
    cache.acquire("a");
    expect(cache.free).toBe(2);
    cache.release([cache.peek("a") as number]);
    expect(cache.pin("a", 100)).toBe(true);
    expect(cache.free).toBe(2);
    cache.expirePins(100);
    expect(cache.free).toBe(3);
    cache.allocate(2); // the unused block, then b
    expect(cache.peek("a")).toBeDefined();
    expect(cache.peek("b")).toBeUndefined();
  });
});
