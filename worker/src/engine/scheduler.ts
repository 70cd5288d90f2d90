/**
 * Scheduler: the batch engine's decisions — which waiting sequences start and in what order, which
 * running one is preempted when KV blocks run short, and what one step computes. It touches no block, no
 * clock and no native engine: the step runner (batch-engine.ts) passes the time, the free blocks and a
 * port to the prefix cache, and applies the answers to the KvCache.
 *
 * - Admission: ONLINE before BATCH, oldest first; a BATCH request that has waited starvationMs counts as
 *   ONLINE. A sequence starts after its longest cached prefix when its first chunk fits in free blocks;
 *   admission stops at the first that does not (no overtaking) and at maxNumSeqs running. One whose
 *   next block a running sequence is computing now (siblings sharing instructions, arrived together)
 *   waits for it to be cached instead of computing it too; those behind it may start meanwhile.
 * - A step packs, within maxTokensPerStep, one decode row per running sequence past its prompt (plus the
 *   tokens forced after its last sample), then prefill chunks of those still in their prompt. While an
 *   ONLINE sequence is in its prompt, BATCH sequences sit the step out (its first token should cost a
 *   step of online rows only; batch work resumes a step later, its KV kept).
 * - KV blocks are taken as positions are reached. When a pool runs dry, blocks held for later are
 *   reclaimed first (the ledger's reclaim: tool-loop pins); then the other running sequence of
 *   lowest priority, then the newest, is preempted by recompute (the runner re-queues it with its output
 *   folded into its prompt); a BATCH sequence never preempts an ONLINE one.
 */
import type { KvGeometry } from "./kv-cache.ts";

export interface SchedulerPolicy {
  maxNumSeqs: number;
  maxTokensPerStep: number;
  /** A BATCH request waiting longer than this is admitted like an ONLINE one (no starvation). */
  starvationMs: number;
  geometry: Pick<KvGeometry, "blockSize" | "blocksFor">;
}

/** What the Scheduler reads of a sequence (sequence.ts's Live). */
export interface ScheduledSequence {
  readonly batch: boolean;
  /** False while its constraint compiles: not admitted yet. */
  readonly opened: boolean;
  readonly waitingSince: number;
  /** Admission order: newest = largest. */
  readonly admittedSeq: number;
  /** Tokens to (re)compute before decoding: the prompt, plus the output after a preemption. */
  readonly prompt: readonly number[];
  readonly promptLength: number;
  readonly output: readonly number[];
  /** Prompt tokens in the KV cache. */
  readonly fed: number;
  /** Output tokens not in the KV cache yet. */
  readonly unfed: number;
  readonly blocks: { readonly full: readonly number[]; readonly sliding: readonly number[] };
}

export type Pool = "full" | "sliding";

/** The KV pools as a step is planned against them. */
export interface KvLedger {
  free: Record<Pool, number>;
  /** What keeps `block` from being free when its sequences release it: references (and a pin). */
  holds(pool: Pool, block: number): number;
  /**
   * Frees blocks that are held for later rather than used (the oldest tool-loop pin): what it freed in
   * each pool, or undefined when nothing is left to free. Tried before any preemption.
   */
  reclaim?(): Record<Pool, number> | undefined;
}

/** How admission reads and takes KV blocks, in order (an admission's new blocks may evict a cached prefix the next candidate would have matched). */
export interface AdmissionPort<S> {
  /** Takes the sequence's longest cached prefix; returns its length in blocks. */
  takePrefix(seq: S): number;
  free(): Record<Pool, number>;
  /** Gives back what takePrefix took: the sequence does not start now. */
  putBack(seq: S): void;
  /** Whether a running sequence is computing the block after the sequence's `hit` cached ones (absent: never). */
  inFlight?(seq: S, hit: number): boolean;
  /** Starts the sequence after its `hit` cached blocks with `blocks` new ones in each pool. */
  start(seq: S, hit: number, blocks: number): void;
}

/** Effective class for admission: BATCH requests age into ONLINE after starvationMs. */
export function isOnline(seq: Pick<ScheduledSequence, "batch" | "waitingSince">, now: number, starvationMs: number): boolean {
  return !seq.batch || now - seq.waitingSince >= starvationMs;
}

/** Waiting sequences in admission order: online first, then the longest waiting. */
export function admissionOrder<S extends ScheduledSequence>(waiting: readonly S[], now: number, starvationMs: number): S[] {
  const online = (s: S) => Number(isOnline(s, now, starvationMs));
  return [...waiting].sort((a, b) => online(b) - online(a) || a.waitingSince - b.waitingSince);
}

/** New blocks (in each pool) a sequence needs to start after `hit` cached ones: its first chunk, and the position after it. */
export function admissionBlocks(seq: ScheduledSequence, hit: number, policy: SchedulerPolicy): number {
  const chunkEnd = Math.min(seq.prompt.length, hit * policy.geometry.blockSize + policy.maxTokensPerStep);
  return policy.geometry.blocksFor(chunkEnd + 1) - hit;
}

/** Starts waiting sequences (see the header) and returns them in the order they started. */
export function admit<S extends ScheduledSequence>(
  waiting: readonly S[],
  running: number,
  now: number,
  policy: SchedulerPolicy,
  kv: AdmissionPort<S>,
): S[] {
  const started: S[] = [];
  for (const seq of admissionOrder(waiting, now, policy.starvationMs)) {
    if (!seq.opened) continue;
    if (running + started.length >= policy.maxNumSeqs) break;
    // Taken before the check: a cached block nobody references counts as free until it is taken.
    const hit = kv.takePrefix(seq);
    if (kv.inFlight?.(seq, hit)) {
      kv.putBack(seq);
      continue;
    }
    const blocks = admissionBlocks(seq, hit, policy);
    const free = kv.free();
    if (free.full < blocks || free.sliding < blocks) {
      kv.putBack(seq);
      break;
    }
    kv.start(seq, hit, blocks);
    started.push(seq);
  }
  return started;
}

/** Prompt tokens looked up in the prefix cache and served from it, since start. */
export interface PrefixStats {
  queried: number;
  hit: number;
}

/** The stats after a sequence's first lookup (a preempted sequence coming back is not counted again). */
export function countPrefixLookup(stats: PrefixStats, promptTokens: number, hitTokens: number): PrefixStats & { hitRate: number } {
  const next = { queried: stats.queried + promptTokens, hit: stats.hit + hitTokens };
  return { ...next, hitRate: next.hit / next.queried };
}

/** The sequence to preempt so that `forSeq` can grow, or none (no other sequence, or only ONLINE ones for a BATCH one). */
export function pickVictim<S extends ScheduledSequence>(running: readonly S[], forSeq: S): S | undefined {
  const victims = running.filter((v) => v !== forSeq);
  // Lowest priority first, then the most recently admitted.
  victims.sort((a, b) => Number(b.batch) - Number(a.batch) || b.admittedSeq - a.admittedSeq);
  const v = victims[0];
  return v && !(!v.batch && forSeq.batch) ? v : undefined;
}

/** A change to the KV pools, applied in order before the step: preempt frees a sequence's blocks, grow appends new ones. */
export type KvAction<S> = { kind: "preempt"; seq: S } | { kind: "grow"; seq: S; full: number; sliding: number };

/** One sequence's rows in a step: the next `rows` prompt tokens, or its unfed output tokens (decode). */
export interface PlannedRows<S> {
  seq: S;
  rows: number;
  decode: boolean;
  /** The step samples a token for it (its last prompt chunk, or all its unfed output). */
  sample: boolean;
}

export interface StepPlan<S> {
  kv: KvAction<S>[];
  /** Decode rows first, then prefill chunks; each in priority order. */
  rows: PlannedRows<S>[];
}

/** Plans one step over the running sequences (see the header). */
export function planStep<S extends ScheduledSequence>(running: readonly S[], ledger: KvLedger, policy: SchedulerPolicy): StepPlan<S> {
  const kv = new KvSimulation(running, ledger, policy);
  const rows: PlannedRows<S>[] = [];
  let budget = policy.maxTokensPerStep;
  const byPriority = [...running].sort((a, b) => Number(a.batch) - Number(b.batch) || a.admittedSeq - b.admittedSeq);
  const onlinePrefill = byPriority.some((s) => !s.batch && s.fed < s.prompt.length);
  for (const decode of [true, false]) {
    for (const seq of byPriority) {
      if ((onlinePrefill && seq.batch) || !kv.running.includes(seq) || budget <= 0) continue;
      if (decode !== seq.fed >= seq.prompt.length) continue;
      // Decode: the last sampled token and any forced after it (fed like a prompt chunk when they do not all fit).
      const n = decode ? Math.min(seq.unfed, budget) : Math.min(seq.prompt.length - seq.fed, budget);
      const end = decode ? seq.promptLength + seq.output.length : seq.fed + n;
      if (!kv.ensure(seq, end)) continue;
      rows.push({ seq, rows: n, decode, sample: decode ? n === seq.unfed : end === seq.prompt.length });
      budget -= n;
    }
  }
  // A preemption may have evicted a sequence placed earlier in this step.
  return { kv: kv.actions, rows: rows.filter((r) => kv.running.includes(r.seq)) };
}

/** Free-block counts as planned actions change them: what preempting a sequence would free, given shared blocks. */
class KvSimulation<S extends ScheduledSequence> {
  readonly running: S[];
  readonly actions: KvAction<S>[] = [];
  readonly #ledger: KvLedger;
  readonly #policy: SchedulerPolicy;
  readonly #free: Record<Pool, number>;
  readonly #dropped = new Map<string, number>(); // "pool:block" → holds released by planned preemptions
  readonly #grown = new Map<S, Record<Pool, number>>();
  #reclaimed = false; // the ledger has nothing left to reclaim: holds() no longer changes

  constructor(running: readonly S[], ledger: KvLedger, policy: SchedulerPolicy) {
    this.running = [...running];
    this.#ledger = ledger;
    this.#policy = policy;
    this.#free = { ...ledger.free };
  }

  /** Makes sure `seq` has blocks for positions up to `end`, preempting others (never `seq`) if needed. */
  ensure(seq: S, end: number): boolean {
    const want = this.#policy.geometry.blocksFor(end);
    const grown = this.#grown.get(seq) ?? { full: 0, sliding: 0 };
    const need = want - seq.blocks.full.length - grown.full;
    const needSliding = want - seq.blocks.sliding.length - grown.sliding;
    if (need <= 0 && needSliding <= 0) return true;
    while (this.#free.full < need || this.#free.sliding < needSliding) {
      if (this.#reclaim()) continue;
      const victim = pickVictim(this.running, seq);
      if (!victim) return false;
      this.#preempt(victim);
    }
    const add = { full: Math.max(0, need), sliding: Math.max(0, needSliding) };
    this.#free.full -= add.full;
    this.#free.sliding -= add.sliding;
    this.#grown.set(seq, { full: grown.full + add.full, sliding: grown.sliding + add.sliding });
    this.actions.push({ kind: "grow", seq, ...add });
    return true;
  }

  /** Reclaims what the ledger holds for later, until it has nothing left; false then. */
  #reclaim(): boolean {
    if (this.#reclaimed) return false;
    const freed = this.#ledger.reclaim?.();
    if (!freed) {
      this.#reclaimed = true;
      return false;
    }
    this.#free.full += freed.full;
    this.#free.sliding += freed.sliding;
    return true;
  }

  #preempt(victim: S): void {
    this.running.splice(this.running.indexOf(victim), 1);
    for (const pool of ["full", "sliding"] as const) {
      for (const b of victim.blocks[pool]) {
        if (b < 0) continue;
        const key = `${pool}:${b}`;
        const dropped = (this.#dropped.get(key) ?? 0) + 1;
        this.#dropped.set(key, dropped);
        if (this.#ledger.holds(pool, b) === dropped) this.#free[pool]++;
      }
      this.#free[pool] += this.#grown.get(victim)?.[pool] ?? 0;
    }
    this.#grown.delete(victim);
    this.actions.push({ kind: "preempt", seq: victim });
  }
}
