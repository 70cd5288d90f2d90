/**
 * KvCache on a stand-in geometry (blocks of 4 tokens, an 8-token sliding window): a sequence's tables
 * register completed blocks, drop sliding blocks that left the window, and a later prompt reuses its
 * longest prefix whose blocks are cached in the full pool and, inside that prefix's window, the sliding one.
 */
import { describe, expect, it } from "vitest";
import { emptyTables, KvCache } from "./kv-cache.ts";

const WINDOW = 8;
const geometry = {
  blockSize: 4,
  numFullBlocks: 16,
  numSlidingBlocks: 16,
  blocksFor: (positions: number) => Math.ceil(positions / 4),
  firstLiveSlidingBlock: (posBegin: number) => Math.floor(Math.max(0, posBegin - WINDOW + 1) / 4),
};
const prompt = Array.from({ length: 16 }, (_, i) => 100 + i);

/** A cache after one sequence computed `prompt` and finished. */
function afterOneSequence() {
  const kv = new KvCache(geometry);
  const t = emptyTables();
  kv.grow(t, 4, 4);
  kv.register(t, prompt.length, () => prompt);
  kv.trim(t, prompt.length);
  expect(t.sliding.slice(0, 2)).toEqual([-1, -1]); // positions 0-7 are out of the window of position 16
  expect(kv.sliding.inUse).toBe(2);
  kv.release(t);
  expect(kv.inUse).toBe(0);
  return kv;
}

describe("KvCache", () => {
  it("a prompt sharing the prefix reuses its blocks, leaving at least one token to compute", () => {
    const kv = afterOneSequence();
    const t = emptyTables();
    const hit = kv.match(t, prompt.slice(0, 13));
    expect(hit).toBe(3);
    expect(kv.match(emptyTables(), prompt)).toBe(3); // 16 tokens: the last block is computed again
    kv.takePrefix(t, hit);
    expect(t.full).toHaveLength(3);
    expect(t.sliding[0]).toBe(-1); // before the window of position 12: not taken
    expect(t.registered).toBe(3);
    expect(kv.inUse).toBe(5);
    expect(kv.match(emptyTables(), [7, ...prompt.slice(1)])).toBe(0);
  });

  it("sliding blocks before the prefix's window are not needed; one inside it that was evicted shortens the hit", () => {
    const kv = afterOneSequence();
    kv.sliding.allocate(13); // the 12 unused blocks, then the oldest cached one: sliding block 0
    expect(kv.match(emptyTables(), prompt.slice(0, 13))).toBe(3);
    kv.sliding.allocate(1); // sliding block 1, inside the window of a 3-block prefix
    expect(kv.match(emptyTables(), prompt.slice(0, 13))).toBe(0);
  });

  it("the ledger counts free blocks and what holds each one", () => {
    const kv = new KvCache(geometry);
    const a = emptyTables();
    kv.grow(a, 2, 1);
    const ledger = kv.ledger();
    expect(ledger.free).toEqual({ full: 14, sliding: 15 });
    expect(ledger.holds("full", a.full[0] as number)).toBe(1);
    expect(kv.usage).toBeCloseTo(2 / 16);
  });

  it("keepWindow keeps the sliding blocks a later prompt resumes from: they outlast blocks that slid out of a window", () => {
    const kv = new KvCache(geometry);
    const t = emptyTables();
    kv.grow(t, 4, 4);
    kv.register(t, prompt.length, () => prompt);
    kv.keepWindow(t, 3, 4); // the window where a 3-block prefix ends (blocks 1, 2) through block 3
    kv.trim(t, prompt.length);
    const hashes = [...t.hashes];
    kv.release(t);
    expect(kv.sliding.kept).toBe(3);
    kv.sliding.allocate(13); // the 12 unused blocks, then the only cached block not kept: block 0
    expect(kv.match(emptyTables(), prompt.slice(0, 13))).toBe(3);
    expect(kv.sliding.peek(hashes[0] as string)).toBeUndefined();
    expect(kv.sliding.peek(hashes[1] as string)).toBeDefined();
    expect(kv.windowStart(3)).toBe(1);
  });
});
