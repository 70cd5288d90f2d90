/**
 * BatchEngine: continuous batching over the native Engine. Every step packs the decode token of each
 * running sequence plus prefill chunks of newly admitted ones, up to max_tokens_per_step; sequences join
 * and leave between steps. Admission reserves KV blocks for prompt + max_tokens, so a running sequence
 * never runs out (preemption and prefix caching come with the scheduler issue).
 * Cancellation: an aborted signal or Abort(request_id) ends the sequence at the next step and frees its
 * blocks.
 */
import { randomBytes } from "node:crypto";
import type { Engine, Model, SamplingOptions, StepSequence } from "@expertmesh/kernels";
import { BlockPool } from "@expertmesh/kernels";
import { FinishReason, type GeneratedToken, type GenerateRequest } from "@expertmesh/proto/worker";
import { workerErrors } from "../errors.ts";
import { Channel } from "./channel.ts";
import type { EngineEvent, EnginePort } from "./engine-port.ts";

export interface BatchEngineOptions {
  modelName: string;
  synthetic: boolean;
  maxNumSeqs: number;
  maxTokensPerStep: number;
  maxWaiting: number;
}

interface Live {
  request: GenerateRequest;
  prompt: number[];
  output: number[];
  fed: number; // prompt tokens already in the KV cache
  fullBlocks: number[];
  ringBlocks: number[];
  channel: Channel<EngineEvent>;
  signal: AbortSignal;
  aborted: boolean;
  sampling: SamplingOptions;
  stops: Set<number>;
  enqueued: number;
  started: number;
  firstToken: number;
}

export class BatchEngine implements EnginePort {
  readonly ready = true;
  readonly notReadyReason = "";
  readonly #model: Model;
  readonly #engine: Engine;
  readonly #opts: BatchEngineOptions;
  readonly #full: BlockPool;
  readonly #ring: BlockPool;
  readonly #waiting: Live[] = [];
  readonly #running: Live[] = [];
  readonly #byId = new Map<string, Live>();
  #looping = false;

  constructor(model: Model, engine: Engine, opts: BatchEngineOptions) {
    this.#model = model;
    this.#engine = engine;
    this.#opts = opts;
    this.#full = new BlockPool(engine.numFullBlocks);
    this.#ring = new BlockPool(engine.numRingBlocks);
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
      },
      load: { running: this.#running.length, waiting: this.#waiting.length },
      backend: "cpu",
    };
  }

  generate(request: GenerateRequest, signal: AbortSignal): AsyncIterable<EngineEvent> {
    const c = this.#model.config;
    const prompt = request.promptTokenIds;
    if (prompt.length === 0) throw workerErrors.create("invalid_argument", { field: "prompt_token_ids", problem: "must not be empty" });
    const bad = prompt.findIndex((t) => t >= c.vocab);
    if (bad >= 0)
      throw workerErrors.create("invalid_argument", {
        field: `prompt_token_ids[${bad}]`,
        problem: `${prompt[bad]} is not below the vocabulary size ${c.vocab}`,
      });
    if (request.maxTokens <= 0) throw workerErrors.create("invalid_argument", { field: "max_tokens", problem: "must be at least 1" });
    if (prompt.length + request.maxTokens > c.maxPositions) {
      throw workerErrors.create("context_length_exceeded", { requested: prompt.length + request.maxTokens, limit: c.maxPositions });
    }
    if (this.#byId.has(request.requestId))
      throw workerErrors.create("invalid_argument", { field: "request_id", problem: "is already in use" });
    if (this.#waiting.length >= this.#opts.maxWaiting) {
      throw workerErrors.create("queue_full", { waiting: this.#waiting.length }, { retryAfterMs: 1000 });
    }
    const s = request.sampling;
    const live: Live = {
      request,
      prompt: [...prompt],
      output: [],
      fed: 0,
      fullBlocks: [],
      ringBlocks: [],
      channel: new Channel<EngineEvent>(),
      signal,
      aborted: false,
      sampling: {
        temperature: s?.temperature ?? 0,
        topP: s?.topP ? s.topP : 1,
        topK: s?.topK ?? 0,
        minP: s?.minP ?? 0,
        presencePenalty: s?.presencePenalty ?? 0,
        frequencyPenalty: s?.frequencyPenalty ?? 0,
        repetitionPenalty: s?.repetitionPenalty ? s.repetitionPenalty : 1,
        seed: s?.seed !== undefined ? BigInt(s.seed) : randomBytes(8).readBigUInt64LE(),
        topLogprobs: s?.topLogprobs ?? 0,
        logitBias: new Map(Object.entries(s?.logitBias ?? {}).map(([k, v]) => [Number(k), v])),
      },
      stops: new Set(request.stopTokenIds.length > 0 ? request.stopTokenIds : [c.eosTokenId]),
      enqueued: performance.now(),
      started: 0,
      firstToken: 0,
    };
    signal.addEventListener("abort", () => this.#abortLive(live), { once: true });
    this.#waiting.push(live);
    this.#byId.set(request.requestId, live);
    this.#kick();
    return live.channel;
  }

  abort(requestId: string): boolean {
    const live = this.#byId.get(requestId);
    if (!live) return false;
    this.#abortLive(live);
    return true;
  }

  #abortLive(live: Live): void {
    live.aborted = true;
    this.#kick();
  }

  #kick(): void {
    if (this.#looping) return;
    this.#looping = true;
    setImmediate(() => {
      this.#loop()
        .catch((err: unknown) => this.#failAll(err))
        .finally(() => {
          this.#looping = false;
          if (this.#waiting.length > 0 || this.#running.length > 0) this.#kick();
        });
    });
  }

  #failAll(err: unknown): void {
    const e = workerErrors.create("engine_failure", { detail: err instanceof Error ? err.message : String(err) });
    for (const live of [...this.#running, ...this.#waiting]) this.#finish(live, undefined, e);
  }

  #finish(live: Live, reason: FinishReason | undefined, error?: unknown): void {
    this.#running.splice(this.#running.indexOf(live) >>> 0, this.#running.includes(live) ? 1 : 0);
    this.#waiting.splice(this.#waiting.indexOf(live) >>> 0, this.#waiting.includes(live) ? 1 : 0);
    this.#byId.delete(live.request.requestId);
    this.#full.release(live.fullBlocks.splice(0));
    this.#ring.release(live.ringBlocks.splice(0));
    if (error !== undefined) {
      live.channel.close(error);
      return;
    }
    const now = performance.now();
    live.channel.push({
      kind: "finished",
      finished: {
        reason: reason ?? FinishReason.FINISH_REASON_STOP,
        usage: { promptTokens: live.prompt.length, completionTokens: live.output.length, cachedPromptTokens: 0 },
        timings: {
          queueSeconds: ((live.started || now) - live.enqueued) / 1000,
          firstTokenSeconds: live.firstToken ? (live.firstToken - live.enqueued) / 1000 : 0,
        },
      },
    });
    live.channel.close();
  }

  /** Admits waiting requests whose blocks fit, oldest first. */
  #admit(): void {
    while (this.#waiting.length > 0 && this.#running.length < this.#opts.maxNumSeqs) {
      const live = this.#waiting[0] as Live;
      const need = this.#engine.blocksFor(live.prompt.length + live.request.maxTokens);
      if (this.#full.free < need || this.#ring.free < this.#engine.ringBlocksPerSeq) return;
      live.fullBlocks = this.#full.allocate(need) as number[];
      live.ringBlocks = this.#ring.allocate(this.#engine.ringBlocksPerSeq) as number[];
      live.started = performance.now();
      this.#waiting.shift();
      this.#running.push(live);
    }
  }

  async #loop(): Promise<void> {
    for (const live of [...this.#waiting, ...this.#running]) if (live.aborted) this.#finish(live, FinishReason.FINISH_REASON_ABORTED);
    this.#admit();
    if (this.#running.length === 0) return;
    // Decode rows first (one per sequence past its prompt), then prefill chunks within the token budget.
    let budget = this.#opts.maxTokensPerStep;
    const batch: Array<{ live: Live; entry: StepSequence; sample: boolean; rows: number }> = [];
    for (const live of this.#running) {
      if (live.fed < live.prompt.length || budget <= 0) continue;
      const last = live.output[live.output.length - 1] as number;
      batch.push({ live, entry: this.#entry(live, [last], true), sample: true, rows: 1 });
      budget -= 1;
    }
    for (const live of this.#running) {
      if (live.fed >= live.prompt.length || budget <= 0) continue;
      const chunk = live.prompt.slice(live.fed, live.fed + budget);
      const completes = live.fed + chunk.length === live.prompt.length;
      batch.push({ live, entry: this.#entry(live, chunk, completes), sample: completes, rows: chunk.length });
      budget -= chunk.length;
    }
    if (batch.length === 0) return;
    const results = await this.#engine.step(batch.map((b) => b.entry));
    const now = performance.now();
    batch.forEach((b, i) => {
      const live = b.live;
      if (live.fed < live.prompt.length) live.fed += b.rows;
      if (!b.sample) return;
      const r = results[i];
      if (!r || r.token === undefined) return;
      if (!live.firstToken) live.firstToken = now;
      live.output.push(r.token);
      const token: GeneratedToken = {
        tokenId: r.token,
        logprob: r.logprob ?? 0,
        topLogprobs: (r.topLogprobs ?? []).map((t) => ({ tokenId: t.token, logprob: t.logprob })),
      };
      live.channel.push({ kind: "tokens", tokens: { tokens: [token] } });
      if (live.stops.has(r.token)) this.#finish(live, FinishReason.FINISH_REASON_STOP);
      else if (live.output.length >= live.request.maxTokens) this.#finish(live, FinishReason.FINISH_REASON_LENGTH);
    });
  }

  #entry(live: Live, tokens: number[], sample: boolean): StepSequence {
    const posBegin = live.fed < live.prompt.length ? live.fed : live.prompt.length + live.output.length - 1;
    return {
      tokens,
      posBegin,
      fullBlocks: live.fullBlocks,
      ringBlocks: live.ringBlocks,
      returnLogits: false,
      ...(sample
        ? {
            sampling: {
              ...live.sampling,
              counter: live.output.length,
              promptTokens: live.sampling.repetitionPenalty !== 1 ? live.prompt : [],
              outputTokens: live.output,
            },
          }
        : {}),
    };
  }
}
