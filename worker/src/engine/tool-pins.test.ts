/**
 * ToolPins over two PrefixCaches: a tool loop's pin keeps its prefix from eviction until its follow-up
 * arrives, its TTL passes or memory runs short (oldest first); blocks two loops share stay pinned until
 * both let go; the pools' maxPinned share bounds it all.
 */
import { describe, expect, it } from "vitest";
import { PrefixCache } from "./prefix-cache.ts";
import { ToolPins } from "./tool-pins.ts";

/** Full and sliding pools whose blocks each hold one registered hash, all released (cached, evictable). */
function pools(capacity: number, hashes: string[], maxPinned = capacity) {
  const made = [new PrefixCache(capacity, { maxPinned }), new PrefixCache(capacity, { maxPinned })];
  for (const cache of made) {
    const blocks = cache.allocate(hashes.length) as number[];
    for (const [i, h] of hashes.entries()) cache.register(blocks[i] as number, h);
    cache.release(blocks);
  }
  return made as [PrefixCache, PrefixCache];
}

describe("ToolPins", () => {
  it("pins a loop's blocks in both pools, and its release makes them evictable again", () => {
    const [full, sliding] = pools(4, ["a", "b", "c"]);
    const pins = new ToolPins([full, sliding]);
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
    const pins = new ToolPins([full, sliding]);
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
    const pins = new ToolPins([full, sliding]);
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
    const pins = new ToolPins([full, sliding]);
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
    const pins = new ToolPins([full, sliding]);
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
    const pins = new ToolPins([full, sliding]);
    expect(pins.pin("k", ["a", "b"], 1000)).toBe(2);
    expect(sliding.pinned).toBe(0);
    pins.release("k");
    expect(full.pinned).toBe(0);
  });
});
