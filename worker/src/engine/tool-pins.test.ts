/**
 * ToolPins over two PrefixCaches: a tool loop's pin keeps its prefix from eviction until its follow-up
 * arrives, its TTL passes or memory runs short (oldest first); blocks two loops share stay pinned until
 * both let go; the pools' maxPinned share bounds it all.
 */
import { describe, expect, it } from "vitest";
import { PrefixCache } from "./prefix-cache.ts";
import { ToolPins } from "./tool-pins.ts";

/** A pool whose blocks each hold one registered hash, all released (cached, evictable). */
function cached(capacity: number, hashes: string[], maxPinned = capacity): PrefixCache {
  const cache = new PrefixCache(capacity, { maxPinned });
  const blocks = cache.allocate(hashes.length) as number[];
  for (const [i, h] of hashes.entries()) cache.register(blocks[i] as number, h);
  cache.release(blocks);
  return cache;
}

/** Full and sliding pools holding `hashes`; a window as long as any prefix (every block is in it). */
function pools(capacity: number, hashes: string[], maxPinned = capacity) {
  return [cached(capacity, hashes, maxPinned), cached(capacity, hashes, maxPinned)] as [PrefixCache, PrefixCache];
}

const wholeWindow = () => 0;

describe("ToolPins", () => {
  it("pins a loop's blocks in both pools, and its release makes them evictable again", () => {
    const [full, sliding] = pools(4, ["a", "b", "c"]);
    const pins = new ToolPins({ full, sliding, windowStart: wholeWindow });
    expect(pins.pin("req1", ["a", "b"], 1000)).toBe(2);
    expect(full.pinned).toBe(2);
    expect(sliding.pinned).toBe(2);
    expect(full.free).toBe(2); // the unused block and "c"
    expect(full.allocate(3)).toBeNull(); // pinned blocks are not evicted
    expect(pins.release("req1")).toBe(true);
    expect(pins.release("req1")).toBe(false);
    expect(full.pinned).toBe(0);
    expect(full.free).toBe(4);
  });

  it("a block two loops share stays pinned until the last of them lets go", () => {
    const [full, sliding] = pools(4, ["sys", "x", "y"]);
    const pins = new ToolPins({ full, sliding, windowStart: wholeWindow });
    expect(pins.pin("one", ["sys", "x"], 1000)).toBe(2);
    expect(pins.pin("two", ["sys", "y"], 2000)).toBe(2);
    expect(pins.blocks).toBe(3);
    pins.release("one");
    expect(full.isPinned("sys")).toBe(true);
    expect(full.isPinned("x")).toBe(false);
    pins.release("two");
    expect(full.pinned).toBe(0);
  });

  it("ends the pins whose TTL passed on the caller's clock, and only those", () => {
    const [full, sliding] = pools(4, ["a", "b"]);
    const pins = new ToolPins({ full, sliding, windowStart: wholeWindow });
    pins.pin("early", ["a"], 1000);
    pins.pin("late", ["b"], 5000);
    expect(pins.expire(999)).toBe(0);
    expect(pins.expire(1000)).toBe(1);
    expect(full.isPinned("a")).toBe(false);
    expect(full.isPinned("b")).toBe(true);
    expect(pins.expire(10_000)).toBe(1);
    expect(pins.size).toBe(0);
  });

  it("releases the oldest pin first under pressure", () => {
    const [full, sliding] = pools(4, ["a", "b", "c"]);
    const pins = new ToolPins({ full, sliding, windowStart: wholeWindow });
    pins.pin("first", ["a"], 9000);
    pins.pin("second", ["b"], 1000);
    expect(pins.releaseOldest()).toBe(true);
    expect(full.isPinned("a")).toBe(false);
    expect(full.isPinned("b")).toBe(true);
    expect(pins.releaseOldest()).toBe(true);
    expect(pins.releaseOldest()).toBe(false);
  });

  it("pins only the leading blocks that fit the pinned share, and nothing past an uncached block", () => {
    const [full, sliding] = pools(8, ["a", "b", "c", "d"], 2);
    const pins = new ToolPins({ full, sliding, windowStart: wholeWindow });
    expect(pins.pin("big", ["a", "b", "c"], 1000)).toBe(2);
    expect(full.isPinned("c")).toBe(false);
    expect(pins.pin("other", ["d"], 1000)).toBe(0); // the share is used up
    expect(pins.size).toBe(1);
    pins.release("big");
    expect(pins.pin("gap", ["a", "missing", "c"], 1000)).toBe(1);
  });

  it("a block out of the sliding window is pinned in the full pool alone", () => {
    const [full] = pools(4, ["a", "b"]);
    const sliding = new PrefixCache(4); // holds neither
    const pins = new ToolPins({ full, sliding, windowStart: wholeWindow });
    expect(pins.pin("k", ["a", "b"], 1000)).toBe(2);
    expect(sliding.pinned).toBe(0);
    pins.release("k");
    expect(full.pinned).toBe(0);
  });

  it("pins in the sliding pool only the window where the follow-up resumes, through the end of the prefix", () => {
    const hashes = ["a", "b", "c", "d", "e", "f"];
    const [full, sliding] = pools(8, hashes);
    // A 2-block window: a prefix of n blocks resumes from its blocks n-2 and n-1.
    const pins = new ToolPins({ full, sliding, windowStart: (n) => Math.max(0, n - 2) });
    expect(pins.pin("turn", hashes, 1000, 4)).toBe(6); // its prompt ended after 4 blocks
    expect(hashes.filter((h) => full.isPinned(h))).toEqual(hashes);
    expect(hashes.filter((h) => sliding.isPinned(h))).toEqual(["c", "d", "e", "f"]);
    expect(pins.pin("other", hashes.slice(0, 3), 1000)).toBe(3); // resumes at its end: "b", "c"
    pins.release("turn");
    expect(hashes.filter((h) => sliding.isPinned(h))).toEqual(["b", "c"]);
    pins.release("other");
    expect(sliding.pinned + full.pinned).toBe(0);
  });

  it("when the full pool pins only a leading part, the sliding window is the one where that part ends", () => {
    const hashes = ["a", "b", "c", "d", "e", "f"];
    const full = cached(8, hashes, 3);
    const sliding = cached(8, hashes);
    const pins = new ToolPins({ full, sliding, windowStart: (n) => Math.max(0, n - 2) });
    expect(pins.pin("turn", hashes, 1000, 5)).toBe(3);
    expect(hashes.filter((h) => sliding.isPinned(h))).toEqual(["b", "c"]);
  });
});
