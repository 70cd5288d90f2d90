/**
 * The Scheduler's decisions as functions of state: admission order and limits, the preemption victim,
 * prefix-hit accounting and the step plan (rows, KV growth, preemptions given shared blocks). The same
 * policies on a real worker are in batch-engine.scheduling.test.ts.
 */
import { describe, expect, it } from "vitest";
import {
  type AdmissionPort,
  admissionBlocks,
  admissionOrder,
  admit,
  countPrefixLookup,
  type KvLedger,
  pickVictim,
  planStep,
  type ScheduledSequence,
  type SchedulerPolicy,
} from "./scheduler.ts";

type Seq = ScheduledSequence & { id: string };

const policy: SchedulerPolicy = {
  maxNumSeqs: 4,
  maxTokensPerStep: 8,
  starvationMs: 1000,
  geometry: { blockSize: 4, blocksFor: (positions) => Math.ceil(positions / 4) },
};

const prompt = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

/** A waiting sequence: online, opened, with a prompt of n tokens. */
function waiting(id: string, n: number, extra: Partial<Seq> = {}): Seq {
  return {
    id,
    batch: false,
    opened: true,
    waitingSince: 0,
    admittedSeq: 0,
    prompt: prompt(n),
    promptLength: n,
    output: [],
    fed: 0,
    unfed: 0,
    blocks: { full: [], sliding: [] },
    ...extra,
  };
}

/** A running sequence past its prompt of n tokens, with `output` generated (the last one not fed yet). */
function decoding(id: string, admittedSeq: number, n: number, output: number, blocks: number[], extra: Partial<Seq> = {}): Seq {
  return waiting(id, n, { admittedSeq, fed: n, output: prompt(output), unfed: 1, blocks: { full: blocks, sliding: blocks }, ...extra });
}

/** The ledger of these running sequences: every table entry holds its block once. */
function ledger(free: number, running: readonly Seq[], pinned: number[] = []): KvLedger {
  const holds = new Map<number, number>(pinned.map((b) => [b, 1]));
  for (const s of running) for (const b of s.blocks.full) holds.set(b, (holds.get(b) ?? 0) + 1);
  return { free: { full: free, sliding: free }, holds: (_pool, b) => holds.get(b) ?? 0 };
}

const ids = (seqs: readonly Seq[]) => seqs.map((s) => s.id);

/** An in-memory admission port: `hits` cached blocks per id, `free` blocks in each pool. */
function fakeKv(free: number, hits: Record<string, number> = {}) {
  const log: string[] = [];
  const port: AdmissionPort<Seq> = {
    takePrefix: (s) => hits[s.id] ?? 0,
    free: () => ({ full: free, sliding: free }),
    putBack: (s) => log.push(`putBack ${s.id}`),
    start: (s, hit, blocks) => {
      free -= blocks;
      log.push(`start ${s.id} hit=${hit} blocks=${blocks}`);
    },
  };
  return { port, log };
}

describe("admission", () => {
  it("orders online before batch, then the longest waiting; batch work past starvationMs counts as online", () => {
    const q = [
      waiting("batch-old", 4, { batch: true, waitingSince: 100 }),
      waiting("online-new", 4, { waitingSince: 900 }),
      waiting("online-old", 4, { waitingSince: 500 }),
      waiting("batch-new", 4, { batch: true, waitingSince: 800 }),
    ];
    expect(ids(admissionOrder(q, 1000, 1000))).toEqual(["online-old", "online-new", "batch-old", "batch-new"]);
    expect(ids(admissionOrder(q, 1100, 1000))).toEqual(["batch-old", "online-old", "online-new", "batch-new"]);
  });

  it("blocks to start: the first chunk after the cached prefix and the position after it", () => {
    expect(admissionBlocks(waiting("a", 10), 0, policy)).toBe(3); // 8 tokens + 1 → 3 blocks of 4
    expect(admissionBlocks(waiting("a", 10), 2, policy)).toBe(1); // 2 cached; 10 + 1 positions → 3 blocks
    expect(admissionBlocks(waiting("a", 3), 0, policy)).toBe(1);
  });

  it("starts sequences in order with their cached prefix, skipping those whose constraint still compiles", () => {
    const { port, log } = fakeKv(100, { b: 2 });
    const q = [waiting("a", 10, { waitingSince: 1 }), waiting("c", 4, { opened: false }), waiting("b", 10, { waitingSince: 2 })];
    expect(ids(admit(q, 0, 0, policy, port))).toEqual(["a", "b"]);
    expect(log).toEqual(["start a hit=0 blocks=3", "start b hit=2 blocks=1"]);
  });

  it("stops at max_num_seqs, counting those already running", () => {
    const { port } = fakeKv(100);
    const q = [waiting("a", 4), waiting("b", 4), waiting("c", 4)];
    expect(ids(admit(q, 2, 0, policy, port))).toEqual(["a", "b"]);
    expect(admit(q, 4, 0, policy, port)).toEqual([]);
  });

  it("holds back a sequence whose next block is being computed, letting the ones behind it start", () => {
    const q = [waiting("a", 40, { waitingSince: 1 }), waiting("b", 40, { waitingSince: 2 }), waiting("c", 40, { waitingSince: 3 })];
    const { port, log } = fakeKv(100, { b: 2 });
    const inFlight: AdmissionPort<Seq>["inFlight"] = (s, hit) => s.id === "b" && hit === 2;
    expect(ids(admit(q, 0, 0, policy, { ...port, inFlight }))).toEqual(["a", "c"]);
    expect(log).toContain("putBack b");
  });

  it("stops at the first sequence that does not fit, giving its prefix back: no overtaking", () => {
    const { port, log } = fakeKv(2);
    const q = [waiting("big", 40, { waitingSince: 1 }), waiting("small", 2, { waitingSince: 2 })];
    expect(admit(q, 0, 0, policy, port)).toEqual([]);
    expect(log).toEqual(["putBack big"]);
  });
});

describe("prefix-hit accounting", () => {
  it("adds each first lookup and keeps the rate since start", () => {
    const one = countPrefixLookup({ queried: 0, hit: 0 }, 300, 288);
    expect(one).toEqual({ queried: 300, hit: 288, hitRate: 288 / 300 });
    expect(countPrefixLookup(one, 300, 0)).toEqual({ queried: 600, hit: 288, hitRate: 288 / 600 });
  });
});

describe("preemption victim", () => {
  const online1 = decoding("online-1", 1, 4, 1, []);
  const batch2 = decoding("batch-2", 2, 4, 1, [], { batch: true });
  const batch3 = decoding("batch-3", 3, 4, 1, [], { batch: true });
  const online4 = decoding("online-4", 4, 4, 1, []);
  it("takes batch work first, then the most recently admitted, never the one growing", () => {
    expect(pickVictim([online1, batch2, batch3, online4], online1)?.id).toBe("batch-3");
    expect(pickVictim([online1, batch2, online4], batch2)?.id).toBeUndefined();
    expect(pickVictim([online1, online4], online1)?.id).toBe("online-4");
    expect(pickVictim([online1, batch3], batch3)).toBeUndefined(); // batch never evicts online
    expect(pickVictim([online1], online1)).toBeUndefined();
  });
});

describe("step plan", () => {
  it("decode rows first, then a prefill chunk of what the budget leaves, growing tables as positions are reached", () => {
    const a = decoding("a", 1, 4, 1, [0, 1]);
    const b = waiting("b", 10, { admittedSeq: 2 });
    const plan = planStep([b, a], ledger(10, [a, b]), policy);
    expect(plan.rows.map((r) => [r.seq.id, r.rows, r.decode, r.sample])).toEqual([
      ["a", 1, true, true],
      ["b", 7, false, false],
    ]);
    expect(plan.kv).toEqual([{ kind: "grow", seq: b, full: 2, sliding: 2 }]);
  });

  it("feeds forced tokens that exceed the budget as a chunk without sampling", () => {
    const a = decoding("a", 1, 4, 12, [0, 1, 2, 3], { unfed: 10 });
    const plan = planStep([a], ledger(10, [a]), policy);
    expect(plan.rows.map((r) => [r.rows, r.sample])).toEqual([[8, false]]);
  });

  it("batch sequences sit out while an online one is in its prompt", () => {
    const batch = decoding("batch", 1, 4, 1, [0, 1], { batch: true });
    const online = waiting("online", 4, { admittedSeq: 2 });
    const plan = planStep([batch, online], ledger(10, [batch, online]), policy);
    expect(plan.rows.map((r) => r.seq.id)).toEqual(["online"]);
  });

  it("preempts batch work first when a pool runs dry, then grows, and drops the victim's rows", () => {
    const a = decoding("a", 1, 4, 5, [0, 1]); // position 9 needs a third block
    const b = decoding("b", 2, 2, 1, [5], { batch: true });
    const c = decoding("c", 3, 2, 1, [6]);
    const plan = planStep([a, b, c], ledger(0, [a, b, c]), policy);
    expect(plan.kv).toEqual([
      { kind: "preempt", seq: b },
      { kind: "grow", seq: a, full: 1, sliding: 1 },
    ]);
    expect(plan.rows.map((r) => r.seq.id)).toEqual(["a", "c"]);
  });

  it("a shared block frees only when its last holder is preempted (or never, while pinned)", () => {
    const a = decoding("a", 1, 4, 5, [0, 1]);
    const b = decoding("b", 2, 2, 1, [7]);
    const c = decoding("c", 3, 2, 1, [7]);
    const plan = planStep([a, b, c], ledger(0, [a, b, c]), policy);
    expect(plan.kv.map((k) => `${k.kind} ${k.seq.id}`)).toEqual(["preempt c", "preempt b", "grow a"]);
    expect(plan.rows.map((r) => r.seq.id)).toEqual(["a"]);
    const pinned = planStep([a, b, c], ledger(0, [a, b, c], [7]), policy);
    expect(pinned.kv.map((k) => `${k.kind} ${k.seq.id}`)).toEqual(["preempt c", "preempt b"]);
    expect(pinned.rows).toEqual([]);
  });

  it("blocks grown earlier in the step come back when their sequence is preempted later in it", () => {
    const older = waiting("older", 12, { admittedSeq: 1 });
    const newer = decoding("newer", 2, 4, 5, [1, 2]); // position 9: grows a third block in the decode pass
    const plan = planStep([older, newer], ledger(1, [older, newer]), { ...policy, maxTokensPerStep: 16 });
    // older's 12-token chunk needs 3 blocks: newer's 2 plus the one it just grew.
    expect(plan.kv.map((k) => `${k.kind} ${k.seq.id}`)).toEqual(["grow newer", "preempt newer", "grow older"]);
    expect(plan.rows.map((r) => [r.seq.id, r.rows, r.sample])).toEqual([["older", 12, true]]);
  });

  it("a batch sequence that cannot grow without evicting online work sits the step out", () => {
    const online = decoding("online", 1, 4, 1, [0, 1]);
    const batch = decoding("batch", 2, 4, 5, [2, 3], { batch: true });
    const plan = planStep([online, batch], ledger(0, [online, batch]), policy);
    expect(plan.kv).toEqual([]);
    expect(plan.rows.map((r) => r.seq.id)).toEqual(["online"]);
  });

  it("reclaims pinned blocks, oldest pin first, before preempting anyone, and only while short", () => {
    const a = decoding("a", 1, 4, 5, [0, 1]); // position 9 needs a third block
    const b = decoding("b", 2, 2, 1, [5], { batch: true });
    const pins = [
      { full: 0, sliding: 1 },
      { full: 1, sliding: 1 },
      { full: 1, sliding: 1 },
    ];
    let reclaimed = 0;
    const kv = { ...ledger(0, [a, b]), reclaim: () => (reclaimed < pins.length ? pins[reclaimed++] : undefined) };
    const plan = planStep([a, b], kv, policy);
    expect(reclaimed).toBe(2); // the first pin freed no full block; the second was enough
    expect(plan.kv).toEqual([{ kind: "grow", seq: a, full: 1, sliding: 1 }]);
    expect(plan.rows.map((r) => r.seq.id)).toEqual(["a", "b"]);
  });

  it("preempts once nothing is left to reclaim", () => {
    const a = decoding("a", 1, 4, 5, [0, 1]);
    const b = decoding("b", 2, 2, 1, [5], { batch: true });
    let asked = 0;
    const plan = planStep([a, b], { ...ledger(0, [a, b]), reclaim: () => void asked++ }, policy);
    expect(asked).toBe(1);
    expect(plan.kv.map((k) => `${k.kind} ${k.seq.id}`)).toEqual(["preempt b", "grow a"]);
  });
});
