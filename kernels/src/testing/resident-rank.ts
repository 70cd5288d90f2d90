/**
 * One rank of the resident-memory test, as its own process: loads its shard of a (single-file) checkpoint,
 * runs one teacher-forced step with the group (rank 0 leads, the others follow), then counts which pages
 * of the experts' bytes are resident in this process — by the page tables (/proc/self/pagemap present
 * bits over the checkpoint's mapping), not by the loader's accounting. Prints
 * {rank, world, expertBytes, ownResident, otherResident, allExpertBytes}.
 *   node resident-rank.ts MODEL_DIR RANK WORLD RENDEZVOUS TOKENS(comma-separated)
 */
import { closeSync, openSync, readFileSync, readSync, realpathSync } from "node:fs";
import { join } from "node:path";
import { Communicator } from "../communicator.ts";
import { Engine } from "../engine.ts";
import { BlockPool } from "../kv-blocks.ts";
import { Model } from "../model.ts";
import { LocalSequence } from "../sequence.ts";

const PAGE = 4096;
const [dir, rankArg, worldArg, rendezvous, tokensArg] = process.argv.slice(2) as [string, string, string, string, string];
const rank = Number(rankArg);
const world = Number(worldArg);
const tokens = tokensArg.split(",").map(Number);

const model = await Model.load(dir, { rank, world });
const communicator = world > 1 ? await Communicator.connect({ rank, world, rendezvous, timeoutMs: 60_000 }) : undefined;
const blocks = Math.ceil(tokens.length / 16) + 1;
const engine = new Engine(model, {
  blockSize: 16,
  numFullBlocks: blocks,
  numSlidingBlocks: blocks,
  ...(communicator ? { communicator } : {}),
});
if (rank === 0) {
  await new LocalSequence(engine, new BlockPool(blocks), new BlockPool(blocks)).feed(tokens);
  if (world > 1) await engine.stopFollowers();
} else {
  await engine.follow();
}

/** File byte ranges [begin, end) of each expert's MXFP4 tensors (blocks and scales, every layer). */
function expertRanges(file: string, numExperts: number): Array<{ expert: number; begin: number; end: number }> {
  const fd = openSync(file, "r");
  const head = Buffer.alloc(8);
  readSync(fd, head, 0, 8, 0);
  const n = Number(head.readBigUInt64LE(0));
  const json = Buffer.alloc(n);
  readSync(fd, json, 0, n, 8);
  closeSync(fd);
  const header = JSON.parse(json.toString("utf8")) as Record<string, { data_offsets?: [number, number] }>;
  const out: Array<{ expert: number; begin: number; end: number }> = [];
  for (const [name, t] of Object.entries(header)) {
    if (!/\.mlp\.experts\.(gate_up_proj|down_proj)_(blocks|scales)$/.test(name) || !t.data_offsets) continue;
    const [a, b] = t.data_offsets;
    const per = (b - a) / numExperts;
    for (let e = 0; e < numExperts; e++) out.push({ expert: e, begin: 8 + n + a + e * per, end: 8 + n + a + (e + 1) * per });
  }
  return out;
}

/** Resident bytes (whole pages, present in this process's page tables) of file range [begin, end). */
function residentBytes(file: string, begin: number, end: number, pagemap: number): number {
  let bytes = 0;
  for (const line of readFileSync("/proc/self/maps", "utf8").split("\n")) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) \S+ ([0-9a-f]+) \S+ \d+\s+(.*)$/.exec(line);
    if (!m || m[4] !== file) continue;
    const start = Number.parseInt(m[1] as string, 16);
    const offset = Number.parseInt(m[3] as string, 16);
    const length = Number.parseInt(m[2] as string, 16) - start;
    const lo = Math.max(begin, offset);
    const hi = Math.min(end, offset + length);
    if (lo >= hi) continue;
    const first = Math.floor((start + lo - offset) / PAGE);
    const last = Math.ceil((start + hi - offset) / PAGE);
    const entries = Buffer.alloc((last - first) * 8);
    readSync(pagemap, entries, 0, entries.length, first * 8);
    for (let p = 0; p < last - first; p++) if (entries.readBigUInt64LE(p * 8) >> 63n) bytes += PAGE;
  }
  return bytes;
}

const file = realpathSync(join(dir, "model.safetensors"));
const mine = new Set(model.shard.experts);
const pagemap = openSync("/proc/self/pagemap", "r");
let ownResident = 0;
let otherResident = 0;
let allExpertBytes = 0;
for (const r of expertRanges(file, model.config.numExperts)) {
  const bytes = residentBytes(file, r.begin, r.end, pagemap);
  allExpertBytes += r.end - r.begin;
  if (mine.has(r.expert)) ownResident += bytes;
  else otherResident += bytes;
}
closeSync(pagemap);
process.stdout.write(
  `${JSON.stringify({ rank, world, expertBytes: model.shard.expertBytes, ownResident, otherResident, allExpertBytes })}\n`,
);
process.exit(0);
