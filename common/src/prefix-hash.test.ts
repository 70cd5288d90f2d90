/** The shared prefix identity: salted chain hashes and the Bloom summary workers publish. */
import { describe, expect, it } from "vitest";
import { blockHashes, chainHash, MAX_SUMMARY_BITS, PrefixSummary, prefixRoot, summaryBits } from "./prefix-hash.ts";

const BS = 4;

describe("chainHash", () => {
  const tokens = [1, 2, 3, 4, 5, 6, 7, 8, 9];
  it("hashes one block of token ids, chained on the hash of the block before it", () => {
    const h0 = chainHash("", tokens, 0, BS);
    expect(chainHash("", [1, 2, 3, 4, 99], 0, BS)).toBe(h0); // tokens after the block do not count
    expect(chainHash("", [1, 2, 3, 5], 0, BS)).not.toBe(h0);
    const h1 = chainHash(h0, tokens, 1, BS);
    // The same tokens after another prefix are another block.
    expect(chainHash(chainHash("", [0, 2, 3, 4], 0, BS), [0, 2, 3, 4, 5, 6, 7, 8], 1, BS)).not.toBe(h1);
    expect(chainHash(h0, [9, 9, 9, 9, 5, 6, 7, 8], 1, BS)).toBe(h1);
  });

  it("the root names the engine: another model, precision or KV dtype never shares a hash", () => {
    const a = blockHashes(prefixRoot("tiny|default|bf16"), [1, 2, 3, 4, 5, 6, 7, 8], BS);
    const b = blockHashes(prefixRoot("tiny|default|f32"), [1, 2, 3, 4, 5, 6, 7, 8], BS);
    expect(a).toHaveLength(2);
    expect(a.every((h, i) => h !== b[i])).toBe(true);
    expect(blockHashes(prefixRoot("tiny|default|bf16"), [1, 2, 3, 4, 5, 6, 7, 8, 9], BS)).toEqual(a); // partial block: not hashed
    expect(blockHashes(prefixRoot("x"), [1, 2, 3, 4, 5, 6, 7, 8], BS, 1)).toHaveLength(1);
  });
});

describe("PrefixSummary", () => {
  const root = prefixRoot("m|default|bf16");
  const held = blockHashes(
    root,
    Array.from({ length: 4000 }, (_, i) => i % 97),
    16,
  );

  it("holds every hash added, and matches a chain's leading run", () => {
    const s = PrefixSummary.of(held.slice(0, 100), summaryBits(1024));
    expect(held.slice(0, 100).every((h) => s.has(h))).toBe(true);
    expect(s.matched(held)).toBeGreaterThanOrEqual(100);
    const other = blockHashes(
      prefixRoot("other"),
      Array.from({ length: 4000 }, (_, i) => i % 97),
      16,
    );
    expect(s.matched(other)).toBeLessThan(2);
  });

  it("grows with the blocks held, bounded (64 KiB at most), with few false positives at its design load", () => {
    expect(summaryBits(10)).toBe(1024);
    expect(summaryBits(4096)).toBe(65536);
    expect(summaryBits(20_000)).toBe(524288);
    expect(summaryBits(1_000_000)).toBe(MAX_SUMMARY_BITS);
    expect(MAX_SUMMARY_BITS / 8).toBe(64 * 1024);
    const bits = summaryBits(held.length);
    const s = PrefixSummary.of(held, bits);
    const absent = blockHashes(
      prefixRoot("absent"),
      Array.from({ length: 16 * 5000 }, (_, i) => i),
      16,
    );
    const fp = absent.filter((h) => s.has(h)).length / absent.length;
    expect(fp).toBeLessThan(0.02);
  });

  it("keeps false positives under 1 % up to the cap's design load (32k blocks at 16 bits each)", () => {
    const many = blockHashes(
      prefixRoot("many"),
      Array.from({ length: 16 * 32768 }, (_, i) => i),
      16,
    );
    const s = PrefixSummary.of(many, summaryBits(many.length));
    expect(s.bits.length * 8).toBe(MAX_SUMMARY_BITS);
    const absent = blockHashes(
      prefixRoot("absent"),
      Array.from({ length: 16 * 8192 }, (_, i) => i),
      16,
    );
    expect(absent.filter((h) => s.has(h)).length / absent.length).toBeLessThan(0.01);
  });

  it("refuses a size that is not a power of two", () => {
    expect(() => new PrefixSummary(new Uint8Array(3))).toThrow(/power of two/);
  });
});
