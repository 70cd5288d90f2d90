/**
 * BatchEngine: continuous batching over the native Engine — what runs each step.
 *
 * Each step packs, within max_tokens_per_step: one decode row per running sequence, then prefill chunks
 * (chunked prefill) of sequences still reading their prompt. KV blocks are taken as positions are
 * reached, not reserved up front; when the pool runs dry the scheduler preempts by recompute: the
 * victim (lowest priority, then newest) frees its blocks and waits again with prompt + generated tokens
 * as its new prompt, so its output continues exactly where it stopped (sampling is keyed by seed and
 * token index, and steps are batch-invariant).
 * Admission: ONLINE before BATCH; a BATCH request that has waited starvation_ms is treated as ONLINE.
 * Prefix caching: every complete block of tokens is registered under a hash chained over all blocks
 * before it; a new prompt (or a preempted one coming back) starts after its longest cached prefix whose
 * sliding-window blocks are still cached too, and reuses those blocks without recomputing them.
 * Cancellation and deadlines: an aborted signal, Abort(request_id) or an expired deadline removes the
 * sequence before the next step and frees its blocks. drain() stops admission and waits for the rest.
 */
import { createHash } from "node:crypto";
import { type Engine, type Model, NativeError, type StepResult, type StepSequence } from "@expertmesh/kernels";
import { FinishReason, type GeneratedToken, type GenerateRequest } from "@expertmesh/proto/worker";
import type { SpanContext } from "@opentelemetry/api";
import { workerErrors } from "../errors.ts";
import { stepSpan } from "../transport/tracing.ts";
import { BlockManager } from "./block-manager.ts";
import type { Constraints } from "./constraints.ts";
import type { EngineEvent, EnginePort } from "./engine-port.ts";
import type { EngineMetrics } from "./metrics.ts";
import { type Live, newLive } from "./sequence.ts";

export interface BatchEngineOptions {
  modelName: string;
  synthetic: boolean;
  maxNumSeqs: number;
  maxTokensPerStep: number;
  maxWaiting: number;
  /** A BATCH request waiting longer than this is admitted like an ONLINE one (no starvation). */
  starvationMs?: number;
  metrics?: EngineMetrics;
  /** This worker's rank in its expert-parallel group (span attribute). */
  rank?: number;
  /** Called when a step failed because the expert-parallel group broke (a peer rank died or hung). */
  onGroupLost?: (reason: string) => void;
  /** Constrained decoding and reasoning budgets (the process's grammar compiler). */
  constraints: Constraints;
}

/** The KV cache's element type and one token's bytes, for Info. */
function kvOf(engine: Engine): { kvDtype: string; kvBytesPerToken: number } {
  const kv = engine.kvCapacity();
  return { kvDtype: kv.dtype, kvBytesPerToken: kv.bytesPerToken };
}

export class BatchEngine implements EnginePort {
  readonly ready = true;
  readonly notReadyReason = "";
  readonly #model: Model;
  readonly #engine: Engine;
  readonly #opts: BatchEngineOptions;
  readonly #full: BlockManager;
  readonly #sliding: BlockManager;
  readonly #waiting: Live[] = [];
  readonly #running: Live[] = [];
  readonly #byId = new Map<string, Live>();
  #looping = false;
  #draining = false;
  #generated = 0; // tokens generated since start (heartbeat load, autoscaling)
  #admissions = 0;
  #idle: Array<() => void> = [];
  #prefixQueried = 0;
  #prefixHit = 0;

  constructor(model: Model, engine: Engine, opts: BatchEngineOptions) {
    this.#model = model;
    this.#engine = engine;
    this.#opts = opts;
    this.#full = new BlockManager(engine.numFullBlocks);
    this.#sliding = new BlockManager(engine.numSlidingBlocks);
  }

  info() {
    const c = this.#model.config;
    return {
      model: {
        name: this.#opts.modelName,
        numHiddenLayers: c.numLayers,
        numExperts: c.numExperts,
        expertsPerToken: c.expertsPerToken,
        vocabSize: c.vocab,
        hiddenSize: c.hidden,
        contextLength: c.maxPositions,
        synthetic: this.#opts.synthetic,
      },
      capacity: {
        kvBlockSize: this.#engine.blockSize,
        kvBlocksTotal: this.#full.capacity,
        kvBlocksFree: this.#full.free,
        maxNumSeqs: this.#opts.maxNumSeqs,
        maxTokensPerStep: this.#opts.maxTokensPerStep,
        kvBlocksInUse: this.blocksInUse(),
        ...kvOf(this.#engine),
      },
      load: { running: this.#running.length, waiting: this.#waiting.length, generationTokensTotal: this.#generated },
      backend: this.#engine.backend,
    };
  }

  generate(given: GenerateRequest, signal: AbortSignal, trace?: SpanContext): AsyncIterable<EngineEvent> {
    const c = this.#model.config;
    const prompt = given.promptTokenIds;
    const room = Math.min(c.maxPositions, this.#full.capacity * this.#engine.blockSize) - prompt.length;
    const request = given.clampMaxTokens && room >= 1 ? { ...given, maxTokens: Math.min(given.maxTokens, room) } : given;
    if (this.#draining) throw workerErrors.create("not_ready", { reason: "draining for shutdown" }, { retryAfterMs: 1000 });
    if (prompt.length === 0) throw workerErrors.create("invalid_argument", { field: "prompt_token_ids", problem: "must not be empty" });
    const bad = prompt.findIndex((t) => t >= c.vocab);
    if (bad >= 0) {
      throw workerErrors.create("invalid_argument", {
        field: `prompt_token_ids[${bad}]`,
        problem: `${prompt[bad]} is not below the vocabulary size ${c.vocab}`,
      });
    }
    if (request.maxTokens <= 0) throw workerErrors.create("invalid_argument", { field: "max_tokens", problem: "must be at least 1" });
    if (prompt.length + request.maxTokens > c.maxPositions) {
      throw workerErrors.create("context_length_exceeded", { requested: prompt.length + request.maxTokens, limit: c.maxPositions });
    }
    // A sequence must fit the cache on its own, or preemption could never make room for it.
    if (this.#engine.blocksFor(prompt.length + request.maxTokens) > this.#full.capacity) {
      throw workerErrors.create("context_length_exceeded", {
        requested: prompt.length + request.maxTokens,
        limit: this.#full.capacity * this.#engine.blockSize,
      });
    }
    if (this.#byId.has(request.requestId))
      throw workerErrors.create("invalid_argument", { field: "request_id", problem: "is already in use" });
    if (this.#waiting.length >= this.#opts.maxWaiting) {
      throw workerErrors.create("queue_full", { waiting: this.#waiting.length }, { retryAfterMs: 1000 });
    }
    this.#opts.constraints.check(request);
    const live = newLive(request, c.eosTokenId, trace);
    signal.addEventListener(
      "abort",
      () => {
        live.aborted = true;
        this.#kick();
      },
      { once: true },
    );
    this.#waiting.push(live);
    this.#byId.set(request.requestId, live);
    this.#opts.metrics?.promptTokens.inc(this.#opts.metrics.labels, prompt.length);
    if (!live.opened) this.#open(live);
    this.#kick();
    return live.channel;
  }

  /** Compiles the request's constraint; the sequence is admitted once it is ready. */
  #open(live: Live): void {
    this.#opts.constraints.open(live.request, this.#model.config.vocab).then(
      (constraint) => {
        live.constraint = constraint;
        live.opened = true;
        if (!this.#waiting.includes(live)) constraint?.dispose(); // it ended while compiling
        this.#kick();
      },
      (err: unknown) => {
        if (this.#waiting.includes(live)) this.#finish(live, undefined, err);
      },
    );
  }

  abort(requestId: string): boolean {
    const live = this.#byId.get(requestId);
    if (!live) return false;
    live.aborted = true;
    this.#kick();
    return true;
  }

  /** Stops admitting new requests and resolves when every admitted one has finished. */
  drain(): Promise<void> {
    this.#draining = true;
    if (this.#running.length === 0 && this.#waiting.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /**
   * Stops for good: no more admissions, and every admitted request ends now with a retryable
   * not_ready error (the router retries those that had no token yet elsewhere).
   */
  stop(reason: string): void {
    this.#draining = true;
    const e = workerErrors.create("not_ready", { reason }, { retryAfterMs: 1000 });
    for (const live of [...this.#running, ...this.#waiting]) this.#finish(live, undefined, e);
  }

  /** KV blocks currently held by sequences (0 when idle: nothing leaks). */
  blocksInUse(): number {
    return this.#full.inUse + this.#sliding.inUse;
  }

  #kick(): void {
    if (this.#looping) return;
    this.#looping = true;
    setImmediate(() => {
      this.#loop()
        .catch((err: unknown) => this.#failAll(err))
        .finally(() => {
          this.#looping = false;
          if (this.#running.length > 0 || this.#waiting.some((l) => l.opened)) this.#kick();
          else if (this.#waiting.length === 0) for (const resolve of this.#idle.splice(0)) resolve();
        });
    });
  }

  #failAll(err: unknown): void {
    // A communicator failure (a peer rank died or hung) is the group's failure, not the request's:
    // retryable, and the group is re-formed.
    const groupLost = err instanceof NativeError && err.statusName === "communicator_error";
    const detail = err instanceof Error ? err.message : String(err);
    const e = groupLost
      ? workerErrors.create("not_ready", { reason: `the expert-parallel group failed: ${detail}` }, { retryAfterMs: 1000 })
      : workerErrors.create("engine_failure", { detail });
    if (groupLost) this.#opts.onGroupLost?.(detail);
    for (const live of [...this.#running, ...this.#waiting]) this.#finish(live, undefined, e);
  }

  #release(live: Live): void {
    this.#full.release(live.fullBlocks.splice(0));
    this.#sliding.release(live.slidingBlocks.splice(0));
    live.hashes = [];
    live.registered = 0;
  }

  #finish(live: Live, reason: FinishReason | undefined, error?: unknown): void {
    const r = this.#running.indexOf(live);
    if (r >= 0) this.#running.splice(r, 1);
    const w = this.#waiting.indexOf(live);
    if (w >= 0) this.#waiting.splice(w, 1);
    this.#byId.delete(live.request.requestId);
    this.#release(live);
    live.constraint?.dispose();
    // Now, not at the next step: after a cancel there may be no next step until another request comes.
    this.#updateGauges();
    if (error !== undefined) {
      live.channel.close(error);
      return;
    }
    const now = performance.now();
    this.#opts.metrics?.e2e.observe(this.#opts.metrics.labels, (now - live.enqueued) / 1000);
    live.channel.push({
      kind: "finished",
      finished: {
        reason: reason ?? FinishReason.FINISH_REASON_STOP,
        usage: { promptTokens: live.promptLength, completionTokens: live.output.length, cachedPromptTokens: live.cachedTokens },
        timings: {
          queueSeconds: ((live.started || now) - live.enqueued) / 1000,
          firstTokenSeconds: live.firstToken ? (live.firstToken - live.enqueued) / 1000 : 0,
        },
        reasoningTruncated: live.constraint?.truncated ?? false,
      },
    });
    live.channel.close();
  }

  /** Removes aborted and expired sequences before a step. */
  #reap(): void {
    const now = Date.now();
    for (const live of [...this.#waiting, ...this.#running]) {
      if (live.aborted) this.#finish(live, FinishReason.FINISH_REASON_ABORTED);
      else if (live.deadline > 0 && now >= live.deadline) {
        this.#finish(live, undefined, workerErrors.create("deadline_exceeded", { deadlineMs: live.deadline }));
      }
    }
  }

  /** Effective class for admission: BATCH requests age into ONLINE after starvation_ms. */
  #isOnline(live: Live, now: number): boolean {
    return !live.batch || now - live.waitingSince >= (this.#opts.starvationMs ?? 30_000);
  }

  /** Admits waiting requests, online first, oldest first, while their prompt blocks fit. */
  #admit(): void {
    const now = performance.now();
    const order = [...this.#waiting].sort(
      (a, b) => Number(this.#isOnline(b, now)) - Number(this.#isOnline(a, now)) || a.waitingSince - b.waitingSince,
    );
    for (const live of order) {
      if (!live.opened) continue;
      if (this.#running.length >= this.#opts.maxNumSeqs) return;
      // Reuse the longest cached prefix; the first chunk after it must fit in free blocks.
      const bs = this.#engine.blockSize;
      const hit = this.#prefixMatch(live);
      const firstLive = this.#engine.firstLiveSlidingBlock(hit * bs);
      const chunkEnd = Math.min(live.prompt.length, hit * bs + this.#opts.maxTokensPerStep);
      const want = this.#engine.blocksFor(chunkEnd + 1);
      live.fullBlocks = [];
      live.slidingBlocks = [];
      // Acquired first: a cached block nobody references counts as free until it is taken.
      for (let i = 0; i < hit; i++) {
        live.fullBlocks.push(this.#full.acquire(live.hashes[i] as string));
        live.slidingBlocks.push(i < firstLive ? -1 : this.#sliding.acquire(live.hashes[i] as string));
      }
      if (this.#full.free < want - hit || this.#sliding.free < want - hit) {
        this.#release(live);
        return; // no overtaking
      }
      for (const b of this.#full.allocate(want - hit) as number[]) live.fullBlocks.push(b);
      for (const b of this.#sliding.allocate(want - hit) as number[]) live.slidingBlocks.push(b);
      live.fed = hit * bs;
      live.registered = hit;
      live.hashes.length = hit;
      if (!live.queried) {
        live.queried = true;
        live.cachedTokens = hit * bs;
        this.#prefixQueried += live.promptLength;
        this.#prefixHit += hit * bs;
        const m = this.#opts.metrics;
        m?.prefixQueries.inc(m.labels, live.promptLength);
        m?.prefixHits.inc(m.labels, hit * bs);
        m?.prefixHitRate.set(m.labels, this.#prefixHit / this.#prefixQueried);
      }
      if (!live.started) {
        live.started = performance.now();
        this.#opts.metrics?.queue.observe(this.#opts.metrics.labels, (live.started - live.enqueued) / 1000);
      }
      live.admittedSeq = ++this.#admissions;
      this.#waiting.splice(this.#waiting.indexOf(live), 1);
      this.#running.push(live);
    }
  }

  /** Preempts by recompute: the victim returns to the waiting queue with its output folded into its prompt. */
  #preempt(victim: Live): void {
    this.#running.splice(this.#running.indexOf(victim), 1);
    this.#release(victim);
    victim.prompt = [...victim.prompt.slice(0, victim.promptLength), ...victim.output];
    victim.fed = 0;
    victim.unfed = 0;
    victim.waitingSince = performance.now();
    this.#waiting.unshift(victim);
    this.#opts.metrics?.preemptions.inc(this.#opts.metrics.labels);
  }

  /** Makes sure `live` has blocks for positions up to `end`, preempting others (never `live`) if needed. */
  #ensureBlocks(live: Live, end: number): boolean {
    const want = this.#engine.blocksFor(end);
    const need = want - live.fullBlocks.length;
    const needSliding = want - live.slidingBlocks.length;
    if (need <= 0 && needSliding <= 0) return true;
    while (this.#full.free < need || this.#sliding.free < needSliding) {
      const victims = this.#running.filter((v) => v !== live);
      if (victims.length === 0) return false;
      // Lowest priority first, then the most recently admitted.
      victims.sort((a, b) => Number(b.batch) - Number(a.batch) || b.admittedSeq - a.admittedSeq);
      const v = victims[0] as Live;
      if (!v.batch && live.batch) return false; // a batch sequence never evicts an online one
      this.#preempt(v);
    }
    if (need > 0) for (const b of this.#full.allocate(need) as number[]) live.fullBlocks.push(b);
    if (needSliding > 0) for (const b of this.#sliding.allocate(needSliding) as number[]) live.slidingBlocks.push(b);
    return true;
  }

  /** The sequence's tokens in position order: its prompt, then what it generated. */
  #tokens(live: Live): number[] {
    return live.prompt.length === live.promptLength
      ? [...live.prompt, ...live.output]
      : [...live.prompt.slice(0, live.promptLength), ...live.output];
  }

  /** Chain hash of block i given the hash of block i − 1. */
  #hash(prev: string, tokens: number[], i: number): string {
    const bs = this.#engine.blockSize;
    return createHash("sha1")
      .update(prev)
      .update(Buffer.from(Int32Array.from(tokens.slice(i * bs, (i + 1) * bs)).buffer))
      .digest("base64");
  }

  /** How many leading blocks of the prompt can be reused (full and, within the window, sliding). */
  #prefixMatch(live: Live): number {
    const bs = this.#engine.blockSize;
    const maxBlocks = Math.floor((live.prompt.length - 1) / bs); // at least one token is computed for logits
    live.hashes = [];
    let k = 0;
    while (k < maxBlocks) {
      const h = this.#hash(k === 0 ? "" : (live.hashes[k - 1] as string), live.prompt, k);
      if (this.#full.peek(h) === undefined) break;
      live.hashes.push(h);
      k++;
    }
    for (; k > 0; k--) {
      const firstLive = this.#engine.firstLiveSlidingBlock(k * bs);
      let ok = true;
      for (let i = firstLive; i < k && ok; i++) ok = this.#sliding.peek(live.hashes[i] as string) !== undefined;
      if (ok) break;
    }
    return k;
  }

  /** Registers the sequence's newly completed token blocks with the prefix cache. */
  #register(live: Live, computed: number): void {
    const bs = this.#engine.blockSize;
    const complete = Math.floor(computed / bs);
    if (complete <= live.registered) return;
    const tokens = this.#tokens(live);
    for (let i = live.registered; i < complete; i++) {
      const h = live.hashes[i] ?? this.#hash(i === 0 ? "" : (live.hashes[i - 1] as string), tokens, i);
      live.hashes[i] = h;
      this.#full.register(live.fullBlocks[i] as number, h);
      const s = live.slidingBlocks[i] as number;
      if (s >= 0) this.#sliding.register(s, h);
    }
    live.registered = complete;
  }

  /** Frees the sliding blocks that lie wholly before the window of the sequence's next step. */
  #trimSliding(live: Live, nextPos: number): void {
    const firstLive = this.#engine.firstLiveSlidingBlock(nextPos);
    for (let i = 0; i < firstLive && i < live.slidingBlocks.length; i++) {
      const b = live.slidingBlocks[i] as number;
      if (b >= 0) {
        this.#sliding.release([b]);
        live.slidingBlocks[i] = -1;
      }
    }
  }

  async #loop(): Promise<void> {
    const t0 = performance.now();
    this.#reap();
    this.#admit();
    if (this.#running.length === 0) return;
    let budget = this.#opts.maxTokensPerStep;
    const batch: Array<{ live: Live; entry: StepSequence; sample: boolean; rows: number; decode: boolean }> = [];
    // Decode rows first: one per sequence past its prompt. Online before batch when blocks are short.
    const byPriority = [...this.#running].sort((a, b) => Number(a.batch) - Number(b.batch) || a.admittedSeq - b.admittedSeq);
    // While an online request is still in its prompt, batch rows sit this step out: its first token
    // should cost a step of online rows only (batch work resumes a step later, its KV kept).
    const onlinePrefill = byPriority.some((l) => !l.batch && l.fed < l.prompt.length);
    for (const live of byPriority) {
      if (onlinePrefill && live.batch) continue;
      if (!this.#running.includes(live) || live.fed < live.prompt.length || budget <= 0) continue;
      if (!this.#ensureBlocks(live, live.promptLength + live.output.length)) continue;
      // The last sampled token, and any forced after it (fed like a prompt chunk when they do not all fit).
      const rows = Math.min(live.unfed, budget);
      const tokens = live.output.slice(live.output.length - live.unfed, live.output.length - live.unfed + rows);
      batch.push({ live, entry: this.#entry(live, tokens, rows === live.unfed), sample: rows === live.unfed, rows, decode: true });
      budget -= rows;
    }
    for (const live of byPriority) {
      if (onlinePrefill && live.batch) continue;
      if (!this.#running.includes(live) || live.fed >= live.prompt.length || budget <= 0) continue;
      const chunk = live.prompt.slice(live.fed, live.fed + budget);
      if (!this.#ensureBlocks(live, live.fed + chunk.length)) continue;
      const completes = live.fed + chunk.length === live.prompt.length;
      batch.push({ live, entry: this.#entry(live, chunk, completes), sample: completes, rows: chunk.length, decode: false });
      budget -= chunk.length;
    }
    // A preemption above may have evicted a sequence already placed in this step.
    const plan = batch.filter((b) => this.#running.includes(b.live));
    this.#updateGauges();
    if (plan.length === 0) return;
    const m = this.#opts.metrics;
    await this.#masks(plan);
    const t1 = performance.now();
    const rows = plan.reduce((n, b) => n + b.rows, 0);
    const span = stepSpan(
      this.#opts.rank ?? 0,
      plan.length,
      rows,
      plan.flatMap((b) => (b.live.trace ? [{ context: b.live.trace }] : [])),
    );
    let results: Awaited<ReturnType<Engine["step"]>>;
    try {
      results = await this.#engine.step(plan.map((b) => b.entry));
    } catch (err) {
      // NaN/Inf logits (broken weights or config) end this step's requests with a typed error; the
      // ones waiting never ran on them, and the process keeps serving.
      if (!(err instanceof NativeError && err.statusName === "numeric_error")) throw err;
      const e = workerErrors.create("engine_failure", { detail: err.message });
      for (const b of plan) this.#finish(b.live, undefined, e);
      return;
    } finally {
      span.end();
    }
    const t2 = performance.now();
    m?.stepSeconds.observe(m.labels, (t2 - t1) / 1000);
    m?.stepTokens.observe(
      m.labels,
      plan.reduce((n, b) => n + b.rows, 0),
    );
    for (const [i, b] of plan.entries()) {
      const live = b.live;
      if (b.decode) live.unfed -= b.rows;
      else live.fed += b.rows;
      this.#register(live, b.entry.posBegin + b.rows);
      this.#trimSliding(live, b.entry.posBegin + b.rows);
      const r = results[i];
      if (b.sample && this.#running.includes(live) && r?.token !== undefined) await this.#take(live, r, t2);
    }
    this.#updateGauges();
    m?.schedulerSeconds.observe(m.labels, (t1 - t0 + (performance.now() - t2)) / 1000);
  }

  /** The allowed-token masks of this step's constrained samples, computed together. */
  async #masks(plan: ReadonlyArray<{ live: Live; entry: StepSequence; sample: boolean }>): Promise<void> {
    const constrained = plan.filter((b) => b.sample && b.live.constraint && b.entry.sampling);
    if (constrained.length === 0) return;
    const started = performance.now();
    await Promise.all(
      constrained.map(async (b) => {
        const mask = await b.live.constraint?.nextMask();
        if (mask && b.entry.sampling) b.entry.sampling.allowedTokens = mask;
      }),
    );
    this.#opts.metrics?.grammarMaskSeconds.observe(this.#opts.metrics.labels, (performance.now() - started) / 1000);
  }

  /**
   * Takes a sampled token into the sequence's output, with the tokens its constraint forces after it,
   * streams them as one batch and ends the sequence at a stop token, the grammar's end or max_tokens.
   */
  async #take(live: Live, r: StepResult, now: number): Promise<void> {
    const m = this.#opts.metrics;
    if (!live.firstToken) {
      live.firstToken = now;
      m?.ttft.observe(m.labels, (now - live.enqueued) / 1000);
    } else if (live.lastToken) {
      m?.itl.observe(m.labels, (now - live.lastToken) / 1000);
    }
    live.lastToken = now;
    const sampled = r.token as number;
    const tokens: GeneratedToken[] = [
      {
        tokenId: sampled,
        logprob: r.logprob ?? 0,
        topLogprobs: (r.topLogprobs ?? []).map((t) => ({ tokenId: t.token, logprob: t.logprob })),
        forced: false,
      },
    ];
    let forced: number[] = [];
    if (live.constraint && !live.stops.has(sampled)) {
      try {
        forced = await live.constraint.advance(sampled);
      } catch (err) {
        this.#finish(live, undefined, err);
        return;
      }
    }
    // Forced tokens fit in max_tokens and end at a stop token, like sampled ones.
    forced = forced.slice(0, live.request.maxTokens - live.output.length - 1);
    const stop = forced.findIndex((t) => live.stops.has(t));
    if (stop >= 0) forced = forced.slice(0, stop + 1);
    for (const t of forced) tokens.push({ tokenId: t, logprob: 0, topLogprobs: [], forced: true });
    live.output.push(sampled, ...forced);
    live.unfed = 1 + forced.length;
    this.#generated += tokens.length;
    m?.generationTokens.inc(m.labels, tokens.length);
    live.channel.push({ kind: "tokens", tokens: { tokens } });
    const last = live.output[live.output.length - 1] as number;
    if (live.stops.has(last) || live.constraint?.terminated) this.#finish(live, FinishReason.FINISH_REASON_STOP);
    else if (live.output.length >= live.request.maxTokens) this.#finish(live, FinishReason.FINISH_REASON_LENGTH);
  }

  #updateGauges(): void {
    const m = this.#opts.metrics;
    if (!m) return;
    m.running.set(m.labels, this.#running.length);
    m.waiting.set(m.labels, this.#waiting.length);
    m.kvUsage.set(m.labels, 1 - this.#full.free / this.#full.capacity);
  }

  #entry(live: Live, tokens: number[], sample: boolean): StepSequence {
    // Past the prompt, the rows fed are the output tokens not in the cache yet (see Live.unfed).
    const posBegin = live.fed < live.prompt.length ? live.fed : live.promptLength + live.output.length - live.unfed;
    return {
      tokens,
      posBegin,
      fullBlocks: live.fullBlocks,
      slidingBlocks: live.slidingBlocks,
      returnLogits: false,
      ...(sample
        ? {
            sampling: {
              ...live.sampling,
              counter: live.output.length,
              promptTokens: live.sampling.repetitionPenalty !== 1 ? live.prompt.slice(0, live.promptLength) : [],
              outputTokens: live.output,
            },
          }
        : {}),
    };
  }
}
