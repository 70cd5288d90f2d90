/**
 * Prefix identity, shared by the worker (its prefix cache) and the gateway (cache-aware routing) so both
 * name a block of tokens the same way. A block's hash chains over every block before it, and the chain's
 * root is a salt naming the engine (model, precision, KV dtype): equal hashes mean an equal prefix computed
 * by an engine that produces the same KV, never a block another model or dtype wrote.
 *
 * PrefixSummary is what a worker publishes of the blocks it holds: a Bloom filter of their hashes, sized
 * from how many it holds and bounded (MAX_SUMMARY_BITS) whatever the pool holds, so a heartbeat stays small. A false positive only makes the router
 * expect a hit that is not there (a prefill it would have done anyway).
 */
import { createHash } from "node:crypto";

/** The chain's root: what comes before block 0 for an engine named by `salt` (e.g. "gpt-oss-20b|default|bf16"). */
export function prefixRoot(salt: string): string {
  return createHash("sha1").update("expertmesh-prefix-v1\0").update(salt).digest("base64");
}

/** The hash of token block `index` (blockSize tokens from index × blockSize), chained on `prev`: block index − 1's hash, or the root for block 0. */
export function chainHash(prev: string, tokens: readonly number[], index: number, blockSize: number): string {
  return createHash("sha1")
    .update(prev)
    .update(Buffer.from(Int32Array.from(tokens.slice(index * blockSize, (index + 1) * blockSize)).buffer))
    .digest("base64");
}

/** The hashes of the complete blocks of `tokens` under `root`, the first `maxBlocks` at most. */
export function blockHashes(root: string, tokens: readonly number[], blockSize: number, maxBlocks = Number.POSITIVE_INFINITY): string[] {
  const n = Math.min(Math.floor(tokens.length / blockSize), maxBlocks);
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(chainHash(i === 0 ? root : (out[i - 1] as string), tokens, i, blockSize));
  return out;
}

/** The largest published filter: 2^19 bits (64 KiB), enough for ~40k cached blocks at ≤ 1 % false positives. */
export const MAX_SUMMARY_BITS = 1 << 19;

/**
 * Bits of the filter for `blocks` cached blocks: at least 16 per block (three hashes: ≤ 0.6 % false
 * positives), a power of two, between 2^10 and MAX_SUMMARY_BITS. Above 2^15 blocks the cap leaves fewer
 * bits per block: 12 (1 %) at ~43k blocks; beyond that false positives grow.
 */
export function summaryBits(blocks: number): number {
  let bits = 1024;
  while (bits < blocks * 16 && bits < MAX_SUMMARY_BITS) bits *= 2;
  return bits;
}

/** Bit positions a hash sets: three 32-bit words of its digest (already uniform), modulo the size. */
const HASHES = 3;
function positions(hash: string, bits: number): number[] {
  const d = Buffer.from(hash, "base64");
  const out: number[] = [];
  for (let i = 0; i < HASHES; i++) out.push(d.readUInt32LE(i * 4) & (bits - 1));
  return out;
}

/** A Bloom filter of block hashes (bits a power of two). */
export class PrefixSummary {
  readonly bits: Uint8Array;

  constructor(bits: Uint8Array) {
    if (bits.length === 0 || (bits.length & (bits.length - 1)) !== 0)
      throw new Error(`a prefix summary's size must be a power of two bytes; got ${bits.length}`);
    this.bits = bits;
  }

  /** The summary of `hashes` in a filter of `size` bits (summaryBits). */
  static of(hashes: Iterable<string>, size: number): PrefixSummary {
    const s = new PrefixSummary(new Uint8Array(size / 8));
    for (const h of hashes) s.add(h);
    return s;
  }

  add(hash: string): void {
    for (const p of positions(hash, this.bits.length * 8)) this.bits[p >> 3] = (this.bits[p >> 3] as number) | (1 << (p & 7));
  }

  has(hash: string): boolean {
    return positions(hash, this.bits.length * 8).every((p) => ((this.bits[p >> 3] as number) & (1 << (p & 7))) !== 0);
  }

  /** How many leading hashes of a chain the filter holds: the blocks of the prefix a worker probably has cached. */
  matched(chain: readonly string[]): number {
    let k = 0;
    while (k < chain.length && this.has(chain[k] as string)) k++;
    return k;
  }
}
