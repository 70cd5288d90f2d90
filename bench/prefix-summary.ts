#!/usr/bin/env node
/**
 * bench/prefix-summary — what publishing the prefix cache costs a heartbeat (issue #26): the encoded
 * MemberLoad's bytes with and without the Bloom summary, the CPU time to build the summary from a full
 * pool's hashes (what BatchEngine.prefixSummary does each heartbeat), and the gateway's side: hashing
 * a prompt into its chain and matching it against one summary.
 *
 *   node bench/prefix-summary.ts [--repeat 50]
 */
import { parseArgs } from "node:util";
import { blockHashes, PrefixSummary, prefixRoot, summaryBits } from "@expertmesh/common/prefix";
import { MemberLoad } from "@expertmesh/proto/cluster";

const { values } = parseArgs({ options: { repeat: { type: "string", default: "50" } } });
const repeat = Number(values.repeat);
const root = prefixRoot("gpt-oss-20b|default|bf16");

function time(f: () => void): number {
  f();
  const t0 = process.cpuUsage();
  for (let i = 0; i < repeat; i++) f();
  const d = process.cpuUsage(t0);
  return (d.user + d.system) / 1000 / repeat;
}

console.log("| pool blocks (all cached) | summary bits | heartbeat bytes without / with | build (CPU ms) | false positives |");
console.log("|---|---|---|---|---|");
for (const blocks of [1024, 4096, 16384, 32768, 65536]) {
  const tokens = Array.from({ length: blocks * 16 }, (_, i) => (i * 2654435761) % 200_000);
  const hashes = blockHashes(root, tokens, 16);
  const bits = summaryBits(blocks);
  const summary = PrefixSummary.of(hashes, bits);
  const base = { requestsRunning: 12, requestsWaiting: 3, kvCacheUsage: 0.5, generationTokensTotal: 123_456_789 };
  const without = MemberLoad.encode(base).finish().length;
  const withPrefix = MemberLoad.encode({
    ...base,
    prefix: { blockSize: 16, salt: "gpt-oss-20b|default|bf16", bloom: Buffer.from(summary.bits), blocks, pinnedBlocks: 0, pinnedLoops: 0 },
  }).finish().length;
  const ms = time(() => PrefixSummary.of(hashes, bits));
  const absent = blockHashes(prefixRoot("absent"), tokens.slice(0, 16 * 4096), 16);
  const fp = absent.filter((h) => summary.has(h)).length / absent.length;
  console.log(`| ${blocks} | ${bits} | ${without} / ${withPrefix} | ${ms.toFixed(2)} | ${(100 * fp).toFixed(1)} % |`);
}
console.log("");
console.log("| prompt tokens | chain (CPU ms) | match against one summary (CPU ms) |");
console.log("|---|---|---|");
const held = PrefixSummary.of(
  blockHashes(
    root,
    Array.from({ length: 16 * 4096 }, (_, i) => i % 5000),
    16,
  ),
  summaryBits(4096),
);
for (const n of [1000, 4000, 16000, 64000]) {
  const prompt = Array.from({ length: n }, (_, i) => i % 5000);
  const chain = blockHashes(root, prompt, 16);
  console.log(`| ${n} | ${time(() => blockHashes(root, prompt, 16)).toFixed(3)} | ${time(() => held.matched(chain)).toFixed(3)} |`);
}
