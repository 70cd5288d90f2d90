/**
 * PromptPreparer on worker threads (GATEWAY_RENDER_THREADS): each thread holds its own tokenizer and
 * runs one job at a time, so a megabyte of adversarial text costs a thread, not the event loop that
 * serves /health and every stream. Jobs go to the thread with the fewest; at most `maxQueued` wait in
 * all (beyond: 429 overloaded). A job's budget starts when its thread starts it; a job whose signal fires
 * is stopped through a shared flag the thread's budget reads, and the thread moves on to the next.
 * Threads run at a lower priority (`nice`) with budgets of their own CPU time (prompt-thread-main.ts).
 */
import { setImmediate } from "node:timers/promises";
import { Worker } from "node:worker_threads";
import { Counter, Gauge, Histogram, type Registry } from "@expertmesh/common";
import type { HarmonyMessage, RenderOptions } from "../domain/harmony/types.ts";
import { type PreparedPrompt, type PrepareJob, type PromptPreparer, promptTooComplex, promptTooLong } from "../domain/prompt-preparer.ts";
import { gatewayErrors } from "../errors.ts";
import { slices, takeLargeStrings } from "./large-strings.ts";
import type { ThreadData, ThreadJob, ThreadResult, ThreadSlice } from "./prompt-thread-protocol.ts";

const ENTRY = new URL("./prompt-thread-main.ts", import.meta.url);
/** Strings of this many characters or more cross to a thread in slices of this size. */
const SLICE = 256 * 1024;

export interface PromptThreadsOptions {
  threads: number;
  /** Jobs waiting (not yet started) across all threads. */
  maxQueued: number;
  retryAfterMs: number;
  /** The threads' nice value (0–19; 0: the process's own priority). */
  nice?: number;
  metrics?: { seconds: Histogram<"outcome">; stopped: Counter<"reason">; inFlight: Gauge<"state"> };
}

interface Pending {
  job: PrepareJob;
  resolve(r: PreparedPrompt): void;
  reject(e: unknown): void;
  started: number;
  unlisten(): void;
}

class Thread {
  worker: Worker;
  readonly pending = new Map<number, Pending>();
  constructor(data: ThreadData, onResult: (t: Thread, r: ThreadResult) => void, onExit: (t: Thread, err: unknown) => void) {
    this.worker = new Worker(ENTRY, { workerData: data });
    this.worker.on("message", (r: ThreadResult) => onResult(this, r));
    this.worker.on("error", (err) => onExit(this, err));
    this.worker.on("exit", (code) => onExit(this, new Error(`prompt thread exited with code ${code}`)));
    this.worker.unref();
  }
}

/** The pool's metrics: job time by outcome, jobs stopped by reason, jobs running and waiting. */
export function promptThreadMetrics(registry: Registry): NonNullable<PromptThreadsOptions["metrics"]> {
  return {
    seconds: new Histogram({
      name: "expertmesh_gateway_prompt_prepare_seconds",
      help: "Time to render and tokenize a prompt on a prompt thread, by outcome (ok, budget, cancelled, too_long, error)",
      labelNames: ["outcome"] as const,
      buckets: [0.001, 0.005, 0.02, 0.1, 0.5, 1, 2, 5],
      registers: [registry],
    }),
    stopped: new Counter({
      name: "expertmesh_gateway_prompt_prepare_stopped_total",
      help: "Prompt preparations stopped before the end: budget (GATEWAY_RENDER_BUDGET_MS spent) or cancelled (the client went away)",
      labelNames: ["reason"] as const,
      registers: [registry],
    }),
    inFlight: new Gauge({
      name: "expertmesh_gateway_prompt_prepare_jobs",
      help: "Prompt preparations on the prompt threads: running (one per busy thread) and waiting (beyond, GATEWAY_RENDER_MAX_QUEUED: 429)",
      labelNames: ["state"] as const,
      registers: [registry],
    }),
  };
}

export class ThreadPromptPreparer implements PromptPreparer {
  readonly #threads: Thread[] = [];
  readonly #o: PromptThreadsOptions;
  #nextId = 0;
  #closed = false;

  constructor(o: PromptThreadsOptions) {
    this.#o = o;
    for (let i = 0; i < o.threads; i++) this.#threads.push(this.#spawn());
  }

  async render(messages: readonly HarmonyMessage[], options: RenderOptions, job: PrepareJob): Promise<PreparedPrompt> {
    return this.#submit(job, (base) => ({ ...base, kind: "render", messages, options }));
  }

  async encodeWithSpecials(text: string, job: PrepareJob): Promise<number[]> {
    return (await this.#submit(job, (base) => ({ ...base, kind: "encode", text }))).tokens;
  }

  /** Jobs waiting or running on the threads. */
  get inFlight(): number {
    return this.#threads.reduce((n, t) => n + t.pending.size, 0);
  }

  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all(this.#threads.map((t) => t.worker.terminate()));
  }

  #submit(job: PrepareJob, build: (base: { id: number; budgetMs: number; maxTokens?: number; cancel: SharedArrayBuffer }) => ThreadJob) {
    job.signal?.throwIfAborted();
    if (this.inFlight - this.#threads.length >= this.#o.maxQueued)
      throw gatewayErrors.create(
        "overloaded",
        { reason: "too many prompts waiting to be prepared" },
        { retryAfterMs: this.#o.retryAfterMs },
      );
    const thread = this.#threads.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
    const id = ++this.#nextId;
    const cancel = new SharedArrayBuffer(4);
    const stop = () => Atomics.store(new Int32Array(cancel), 0, 1);
    job.signal?.addEventListener("abort", stop, { once: true });
    return new Promise<PreparedPrompt>((resolve, reject) => {
      thread.pending.set(id, {
        job,
        resolve,
        reject,
        started: performance.now(),
        unlisten: () => job.signal?.removeEventListener("abort", stop),
      });
      const limit = job.maxTokens === undefined ? {} : { maxTokens: job.maxTokens };
      void this.#post(thread, build({ id, budgetMs: job.budgetMs, ...limit, cancel }), job.signal);
      this.#gauge();
    });
  }

  /** Posts a job; its strings of SLICE or more characters follow in slices, one per event-loop turn. */
  async #post(thread: Thread, job: ThreadJob, signal: AbortSignal | undefined): Promise<void> {
    const { skeleton, large } = takeLargeStrings(job, SLICE);
    if (large.length === 0) return thread.worker.postMessage(job);
    thread.worker.postMessage({ ...skeleton, large: large.map((l) => ({ path: l.path, length: l.text.length })) });
    for (const slice of slices(large, SLICE)) {
      await setImmediate();
      const m: ThreadSlice = signal?.aborted ? { id: job.id, drop: true } : { id: job.id, slice };
      thread.worker.postMessage(m);
      if (signal?.aborted) return;
    }
  }

  #gauge(): void {
    const running = this.#threads.filter((t) => t.pending.size > 0).length;
    this.#o.metrics?.inFlight.set({ state: "running" }, running);
    this.#o.metrics?.inFlight.set({ state: "waiting" }, this.inFlight - running);
  }

  #spawn(): Thread {
    return new Thread(
      { nice: this.#o.nice ?? 0 },
      (t, r) => this.#settle(t, r),
      (t, err) => this.#lost(t, err),
    );
  }

  #settle(t: Thread, r: ThreadResult): void {
    const p = t.pending.get(r.id);
    if (!p) return;
    t.pending.delete(r.id);
    this.#gauge();
    p.unlisten();
    const outcome = r.ok ? "ok" : r.reason;
    this.#o.metrics?.seconds.observe({ outcome }, (performance.now() - p.started) / 1000);
    if (r.ok) p.resolve({ tokens: Array.from(r.tokens) });
    else {
      if (r.reason === "budget" || r.reason === "cancelled") this.#o.metrics?.stopped.inc({ reason: r.reason });
      p.reject(this.#failure(p.job, r));
    }
  }

  #failure(job: PrepareJob, r: Extract<ThreadResult, { ok: false }>): unknown {
    const { reason, message } = r;
    if (reason === "budget") return promptTooComplex(job);
    if (reason === "too_long") return promptTooLong(job, r.count ?? 0);
    if (reason === "cancelled") return job.signal?.reason ?? new Error("the client went away");
    return new Error(message);
  }

  /** A thread that died fails its jobs (a server error: nothing of theirs is wrong) and is replaced. */
  #lost(t: Thread, err: unknown): void {
    const i = this.#threads.indexOf(t);
    if (i < 0) return;
    this.#threads.splice(i, 1);
    for (const p of t.pending.values()) {
      p.unlisten();
      p.reject(err instanceof Error ? err : new Error(String(err)));
    }
    t.pending.clear();
    this.#gauge();
    if (!this.#closed) this.#threads.push(this.#spawn());
  }
}
