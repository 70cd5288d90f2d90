/**
 * BatchEngine: the step runner of continuous batching over the native Engine, and the EnginePort the
 * transport calls. Each step it removes cancelled and expired sequences, asks the Scheduler
 * (scheduler.ts) which waiting ones start and what the step computes, applies that to the KvCache
 * (kv-cache.ts over two PrefixCaches), runs the native step and streams the sampled tokens.
 *
 * Preemption is by recompute: the victim frees its blocks and waits again with prompt + generated tokens
 * as its new prompt, and its output continues exactly where it stopped (sampling is keyed by seed and
 * token index, and steps are batch-invariant). Cancellation and deadlines: an aborted signal,
 * Abort(request_id) or an expired deadline removes the sequence before the next step and frees its
 * blocks. drain() stops admission and waits for the rest. Metrics and step spans go out through the
 * ports of engine-observer.ts.
 *
 * Tool loops (tool-pins.ts): a request with tool_loop.pin_ttl_ms that ends on one of its pin tokens pins its blocks
 * for the TTL; a later request naming it in tool_loop.follows ends that pin once it holds the blocks.
 * Pins also end at their TTL (checked at each step and each summary) and under memory pressure, oldest
 * first: when a waiting request cannot start for lack of blocks, or a step would otherwise preempt a
 * running sequence; so a request may use the whole pool. When a sequence ends, the sliding blocks of the
 * window where its next turn would resume are kept (kv-cache.ts). prefixSummary() is what the worker
 * publishes of its cache for routing.
 */

import { PrefixSummary as Bloom, summaryBits } from "@expertmesh/common/prefix";
import { type Engine, type Model, NativeError, type StepResult, type StepSequence } from "@expertmesh/kernels";
import type { PrefixSummary } from "@expertmesh/proto/cluster";
import { FinishReason, type GeneratedToken, type GenerateRequest } from "@expertmesh/proto/worker";
import type { SpanContext } from "@opentelemetry/api";
import { workerErrors } from "../errors.ts";
import type { Constraints } from "./constraints.ts";
import { type EngineObserver, type PinRelease, type StepTracer, silentObserver, silentTracer } from "./engine-observer.ts";
import type { EngineEvent, EnginePort } from "./engine-port.ts";
import { KvCache } from "./kv-cache.ts";
import { admit, countPrefixLookup, type PlannedRows, type Pool, type PrefixStats, planStep, type SchedulerPolicy } from "./scheduler.ts";
import { finishedOf, foldForRecompute, type Live, newLive, stepEntry, tokensOf } from "./sequence.ts";
import { ToolPins } from "./tool-pins.ts";

export interface BatchEngineOptions {
  modelName: string;
  synthetic: boolean;
  maxNumSeqs: number;
  maxTokensPerStep: number;
  maxWaiting: number;
  /** A BATCH request waiting longer than this is admitted like an ONLINE one (no starvation). */
  starvationMs?: number;
  observer?: EngineObserver;
  tracer?: StepTracer;
  /** This worker's rank in its expert-parallel group (span attribute). */
  rank?: number;
  /** Called when a step failed because the expert-parallel group broke (a peer rank died or hung). */
  onGroupLost?: (reason: string) => void;
  /** Constrained decoding and reasoning budgets (the process's grammar compiler). */
  constraints: Constraints;
  /** The prefix hash chain's root: model name, precision and KV dtype (default: the model name alone). */
  prefixSalt?: string;
  /** The clock of tool-loop pins, Unix ms (default Date.now). */
  now?: () => number;
}

/** The KV cache's element type and one token's bytes, for Info. */
function kvOf(engine: Engine): { kvDtype: string; kvBytesPerToken: number } {
  const kv = engine.kvCapacity();
  return { kvDtype: kv.dtype, kvBytesPerToken: kv.bytesPerToken };
}

/** A planned row with its native step entry. */
type Row = PlannedRows<Live> & { entry: StepSequence };

export class BatchEngine implements EnginePort {
  readonly ready = true;
  readonly notReadyReason = "";
  readonly #model: Model;
  readonly #engine: Engine;
  readonly #opts: BatchEngineOptions;
  readonly #policy: SchedulerPolicy;
  readonly #kv: KvCache;
  readonly #pins: ToolPins;
  readonly #salt: string;
  readonly #now: () => number;
  readonly #observer: EngineObserver;
  readonly #tracer: StepTracer;
  readonly #waiting: Live[] = [];
  readonly #running: Live[] = [];
  readonly #byId = new Map<string, Live>();
  #looping = false;
  #draining = false;
  #generated = 0; // tokens generated since start (heartbeat load, autoscaling)
  #admissions = 0;
  #idle: Array<() => void> = [];
  #prefix: PrefixStats = { queried: 0, hit: 0 };

  constructor(model: Model, engine: Engine, opts: BatchEngineOptions) {
    this.#model = model;
    this.#engine = engine;
    this.#opts = opts;
    this.#policy = {
      maxNumSeqs: opts.maxNumSeqs,
      maxTokensPerStep: opts.maxTokensPerStep,
      starvationMs: opts.starvationMs ?? 30_000,
      geometry: engine,
    };
    this.#salt = opts.prefixSalt ?? opts.modelName;
    this.#kv = new KvCache(engine, { salt: this.#salt });
    this.#pins = new ToolPins({ full: this.#kv.full, sliding: this.#kv.sliding, windowStart: (b) => this.#kv.windowStart(b) });
    this.#now = opts.now ?? Date.now;
    this.#observer = opts.observer ?? silentObserver;
    this.#tracer = opts.tracer ?? silentTracer;
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
        kvBlocksTotal: this.#kv.full.capacity,
        kvBlocksFree: this.#kv.full.free,
        maxNumSeqs: this.#opts.maxNumSeqs,
        maxTokensPerStep: this.#opts.maxTokensPerStep,
        kvBlocksInUse: this.blocksInUse(),
        kvBlocksMaxPinned: this.#kv.full.maxPinned,
        kvSlidingBlocksTotal: this.#kv.sliding.capacity,
        ...kvOf(this.#engine),
      },
      load: { running: this.#running.length, waiting: this.#waiting.length, generationTokensTotal: this.#generated },
      backend: this.#engine.backend,
    };
  }

  generate(given: GenerateRequest, signal: AbortSignal, trace?: SpanContext): AsyncIterable<EngineEvent> {
    const request = this.#checked(given);
    const live = newLive(request, this.#model.config.eosTokenId, trace);
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
    this.#observer.queued(request.promptTokenIds.length);
    if (!live.opened) this.#open(live);
    this.#kick();
    return live.channel;
  }

  /** The request as it will run (max_tokens clamped when asked), or the AppError that refuses it. */
  #checked(given: GenerateRequest): GenerateRequest {
    const c = this.#model.config;
    const prompt = given.promptTokenIds;
    // Pins end under pressure before a live request is refused: a request may take the whole pool.
    const cacheTokens = this.#kv.full.capacity * this.#engine.blockSize;
    const room = Math.min(c.maxPositions, cacheTokens) - prompt.length;
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
    const requested = prompt.length + request.maxTokens;
    if (requested > c.maxPositions) throw workerErrors.create("context_length_exceeded", { requested, limit: c.maxPositions });
    // A sequence must fit the cache on its own, or preemption could never make room for it.
    if (this.#engine.blocksFor(requested) > this.#kv.full.capacity)
      throw workerErrors.create("context_length_exceeded", { requested, limit: cacheTokens });
    if (this.#byId.has(request.requestId))
      throw workerErrors.create("invalid_argument", { field: "request_id", problem: "is already in use" });
    if (this.#waiting.length >= this.#opts.maxWaiting) {
      throw workerErrors.create("queue_full", { waiting: this.#waiting.length }, { retryAfterMs: 1000 });
    }
    this.#opts.constraints.check(request);
    return request;
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

  /** What the worker publishes of its prefix cache (heartbeats): a Bloom filter of the full pool's block hashes, sized from how many. */
  prefixSummary(): PrefixSummary {
    this.#expirePins();
    const full = this.#kv.full;
    const bloom = Bloom.of(full.hashes(), summaryBits(full.cached));
    return {
      blockSize: this.#engine.blockSize,
      salt: this.#salt,
      bloom: Buffer.from(bloom.bits),
      blocks: full.cached,
      pinnedBlocks: full.pinned,
      pinnedLoops: this.#pins.size,
    };
  }

  /** Tool-loop pins held now (keys). */
  get toolPins(): number {
    return this.#pins.size;
  }

  /** KV blocks currently held by sequences (0 when idle: nothing leaks). */
  blocksInUse(): number {
    return this.#kv.inUse;
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

  #finish(live: Live, reason: FinishReason | undefined, error?: unknown): void {
    const r = this.#running.indexOf(live);
    if (r >= 0) this.#running.splice(r, 1);
    const w = this.#waiting.indexOf(live);
    if (w >= 0) this.#waiting.splice(w, 1);
    this.#byId.delete(live.request.requestId);
    const pinned = error === undefined ? this.#pinToolCall(live, reason) : 0;
    // The next turn resends this prompt plus what follows: where it resumes lies between the prompt's end and ours.
    this.#kv.keepWindow(live.blocks, this.#promptBlocks(live), live.blocks.registered);
    this.#kv.release(live.blocks);
    live.constraint?.dispose();
    // Now, not at the next step: after a cancel there may be no next step until another request comes.
    this.#updateGauges();
    if (error !== undefined) {
      live.channel.close(error);
      return;
    }
    const now = performance.now();
    this.#observer.finished((now - live.enqueued) / 1000);
    live.channel.push({ kind: "finished", finished: finishedOf(live, reason, now, pinned) });
    live.channel.close();
  }

  /** Pins a finished sequence's blocks when it asked for it and ended on one of its pin tokens (a tool call); returns how many. */
  #pinToolCall(live: Live, reason: FinishReason | undefined): number {
    const loop = live.request.toolLoop;
    if (!loop || loop.pinTtlMs <= 0 || reason !== FinishReason.FINISH_REASON_STOP) return 0;
    if (!loop.pinOnTokenIds.includes(live.output[live.output.length - 1] ?? -1)) return 0;
    const hashes = live.blocks.hashes.slice(0, live.blocks.registered);
    const n = this.#pins.pin(live.request.requestId, hashes, this.#now() + loop.pinTtlMs, this.#promptBlocks(live));
    this.#observer.pins(this.#kv.full.pinned);
    return n;
  }

  /** The complete blocks of a sequence's original prompt. */
  #promptBlocks(live: Live): number {
    return Math.floor(live.promptLength / this.#engine.blockSize);
  }

  /** Ends pins: `count` of them for `reason`, reported. */
  #released(reason: PinRelease, count: number): void {
    if (count > 0) this.#observer.pins(this.#kv.full.pinned, { reason, count });
  }

  #expirePins(): void {
    if (this.#pins.size > 0) this.#released("expired", this.#pins.expire(this.#now()));
  }

  /** Memory pressure while planning a step: ends the oldest pin; what it freed in each pool, or undefined when no pin is left. */
  #reclaimPin(): Record<Pool, number> | undefined {
    const before = { ...this.#kv.ledger().free };
    if (!this.#pins.releaseOldest()) return undefined;
    this.#released("pressure", 1);
    const after = this.#kv.ledger().free;
    return { full: after.full - before.full, sliding: after.sliding - before.sliding };
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

  /**
   * Starts the waiting sequences the Scheduler admits, each after its longest cached prefix. When one
   * that could run is left waiting for lack of blocks, the oldest pins end and admission runs again.
   */
  #admit(): void {
    let released = 0;
    for (;;) {
      const held = this.#admitOnce();
      // Held back for a block in flight is not short of blocks: no pin has to go for it.
      const blocked = this.#running.length < this.#opts.maxNumSeqs && this.#waiting.some((l) => l.opened && !held.has(l));
      if (!blocked || !this.#pins.releaseOldest()) break;
      released++;
    }
    this.#released("pressure", released);
  }

  /** One admission pass; returns the sequences held back for a block in flight. */
  #admitOnce(): Set<Live> {
    const held = new Set<Live>();
    admit(this.#waiting, this.#running.length, performance.now(), this.#policy, {
      takePrefix: (live) => {
        const hit = this.#kv.match(live.blocks, live.prompt);
        this.#kv.takePrefix(live.blocks, hit);
        return hit;
      },
      free: () => this.#kv.ledger().free,
      putBack: (live) => this.#kv.release(live.blocks),
      inFlight: (live, hit) => {
        const waits = this.#inFlight(live, hit);
        if (waits) held.add(live);
        return waits;
      },
      start: (live, hit, blocks) => this.#start(live, hit, blocks),
    });
    return held;
  }

  /** Whether a running sequence still in its prompt is computing `live`'s block `hit` (it will be cached after that step). */
  #inFlight(live: Live, hit: number): boolean {
    const next = this.#kv.nextHash(live.blocks, live.prompt, hit);
    if (next === undefined) return false;
    const bs = this.#engine.blockSize;
    return this.#running.some((r) => {
      if (r.fed >= r.prompt.length) return false;
      r.promptChain ??= this.#kv.chainOf(r.prompt);
      return r.promptChain.indexOf(next, Math.floor(r.fed / bs)) >= 0;
    });
  }

  #start(live: Live, hit: number, blocks: number): void {
    this.#kv.grow(live.blocks, blocks, blocks);
    // A prefix matched once is likely matched again (the shared instructions of a family of conversations).
    this.#kv.keepWindow(live.blocks, hit);
    const cached = hit * this.#engine.blockSize;
    live.fed = cached;
    if (!live.queried) {
      live.queried = true;
      live.cachedTokens = cached;
      const stats = countPrefixLookup(this.#prefix, live.promptLength, cached);
      this.#prefix = stats;
      this.#observer.prefixLookup(live.promptLength, cached, stats.hitRate);
    }
    if (!live.started) {
      live.started = performance.now();
      this.#observer.started((live.started - live.enqueued) / 1000);
    }
    live.admittedSeq = ++this.#admissions;
    // It holds its prefix now: the pins kept for it (the turns it follows) can go.
    let followed = 0;
    for (const key of live.request.toolLoop?.follows ?? []) if (this.#pins.release(key)) followed++;
    this.#released("follow_up", followed);
    this.#waiting.splice(this.#waiting.indexOf(live), 1);
    this.#running.push(live);
  }

  /** Preempts by recompute: the victim returns to the front of the queue with its output folded into its prompt. */
  #preempt(victim: Live): void {
    this.#running.splice(this.#running.indexOf(victim), 1);
    this.#kv.keepWindow(victim.blocks, victim.blocks.registered); // where it resumes
    this.#kv.release(victim.blocks);
    foldForRecompute(victim, performance.now());
    this.#waiting.unshift(victim);
    this.#observer.preempted();
  }

  /** Applies the Scheduler's plan for this step to the KV cache; returns its rows with their entries. */
  #plan(): Row[] {
    const plan = planStep(this.#running, { ...this.#kv.ledger(), reclaim: () => this.#reclaimPin() }, this.#policy);
    for (const a of plan.kv) {
      if (a.kind === "preempt") this.#preempt(a.seq);
      else this.#kv.grow(a.seq.blocks, a.full, a.sliding);
    }
    return plan.rows.map((r) => {
      const live = r.seq;
      const from = r.decode ? live.output.length - live.unfed : live.fed;
      const tokens = (r.decode ? live.output : live.prompt).slice(from, from + r.rows);
      return { ...r, entry: stepEntry(live, tokens, r.sample) };
    });
  }

  async #loop(): Promise<void> {
    const t0 = performance.now();
    this.#reap();
    this.#expirePins();
    this.#admit();
    if (this.#running.length === 0) return;
    const plan = this.#plan();
    this.#updateGauges();
    if (plan.length === 0) return;
    await this.#masks(plan);
    const t1 = performance.now();
    const results = await this.#step(plan);
    if (!results) return;
    const t2 = performance.now();
    this.#observer.stepped(
      (t2 - t1) / 1000,
      plan.reduce((n, b) => n + b.rows, 0),
    );
    for (const [i, b] of plan.entries()) {
      const live = b.seq;
      if (b.decode) live.unfed -= b.rows;
      else live.fed += b.rows;
      const computed = b.entry.posBegin + b.rows;
      this.#kv.register(live.blocks, computed, () => tokensOf(live));
      this.#kv.trim(live.blocks, computed);
      const r = results[i];
      if (b.sample && this.#running.includes(live) && r?.token !== undefined) await this.#take(live, r, t2);
    }
    this.#updateGauges();
    this.#observer.scheduled((t1 - t0 + (performance.now() - t2)) / 1000);
  }

  /** Runs the native step in a span; undefined when it failed on non-finite logits (its requests are ended). */
  async #step(plan: readonly Row[]): Promise<StepResult[] | undefined> {
    const span = this.#tracer.startStep({
      rank: this.#opts.rank ?? 0,
      sequences: plan.length,
      rows: plan.reduce((n, b) => n + b.rows, 0),
      links: plan.flatMap((b) => (b.seq.trace ? [b.seq.trace] : [])),
    });
    try {
      return await this.#engine.step(plan.map((b) => b.entry));
    } catch (err) {
      // NaN/Inf logits (broken weights or config) end this step's requests with a typed error; the
      // ones waiting never ran on them, and the process keeps serving.
      if (!(err instanceof NativeError && err.statusName === "numeric_error")) throw err;
      const e = workerErrors.create("engine_failure", { detail: err.message });
      for (const b of plan) this.#finish(b.seq, undefined, e);
      return undefined;
    } finally {
      span.end();
    }
  }

  /** The allowed-token masks of this step's constrained samples, computed together. */
  async #masks(plan: readonly Row[]): Promise<void> {
    const constrained = plan.filter((b) => b.sample && b.seq.constraint && b.entry.sampling);
    if (constrained.length === 0) return;
    const started = performance.now();
    await Promise.all(
      constrained.map(async (b) => {
        const mask = await b.seq.constraint?.nextMask();
        if (mask && b.entry.sampling) b.entry.sampling.allowedTokens = mask;
      }),
    );
    this.#observer.masked((performance.now() - started) / 1000);
  }

  /**
   * Takes a sampled token into the sequence's output, with the tokens its constraint forces after it,
   * streams them as one batch and ends the sequence at a stop token, the grammar's end or max_tokens.
   */
  async #take(live: Live, r: StepResult, now: number): Promise<void> {
    if (!live.firstToken) {
      live.firstToken = now;
      this.#observer.firstToken((now - live.enqueued) / 1000);
    } else if (live.lastToken) {
      this.#observer.interToken((now - live.lastToken) / 1000);
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
    this.#observer.generated(tokens.length);
    live.channel.push({ kind: "tokens", tokens: { tokens } });
    const last = live.output[live.output.length - 1] as number;
    if (live.stops.has(last) || live.constraint?.terminated) this.#finish(live, FinishReason.FINISH_REASON_STOP);
    else if (live.output.length >= live.request.maxTokens) this.#finish(live, FinishReason.FINISH_REASON_LENGTH);
  }

  #updateGauges(): void {
    this.#observer.load(this.#running.length, this.#waiting.length, this.#kv.usage);
  }
}
