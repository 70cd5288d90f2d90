/**
 * Gateway admission control (reliability R1): at most `maxConcurrent` generations in flight, at most
 * `maxQueued` waiting for a slot; anything beyond is rejected at once with 429 `overloaded` and a
 * retry-after, so overload costs microseconds instead of memory. A queued request that waits longer
 * than `queueTimeoutMs` gets 503. AdmittingBackend applies it to any GenerationBackend.
 */
import type { GenerateRequest, GenerateResponse } from "@expertmesh/proto/worker";
import type { Context } from "@opentelemetry/api";
import { gatewayErrors } from "../errors.ts";
import { type GenerationBackend, relay } from "./generation-backend.ts";

export interface AdmissionOptions {
  maxConcurrent: number;
  maxQueued: number;
  queueTimeoutMs: number;
  retryAfterMs: number;
}

export class Admission {
  readonly #o: AdmissionOptions;
  #running = 0;
  readonly #waiting: Array<() => void> = [];
  /** Highest queue depth seen (for tests and the gauge). */
  peakQueued = 0;

  constructor(o: AdmissionOptions) {
    this.#o = o;
  }

  get running(): number {
    return this.#running;
  }
  get queued(): number {
    return this.#waiting.length;
  }

  /** Resolves with a release function once a slot is free; throws overloaded / service_unavailable. */
  async acquire(signal: AbortSignal): Promise<() => void> {
    if (this.#running < this.#o.maxConcurrent && this.#waiting.length === 0) {
      this.#running++;
      return this.#slot(signal);
    }
    if (this.#waiting.length >= this.#o.maxQueued)
      throw gatewayErrors.create(
        "overloaded",
        { reason: `${this.#running} generations running and ${this.#waiting.length} queued` },
        { retryAfterMs: this.#o.retryAfterMs },
      );
    await new Promise<void>((resolve, reject) => {
      const wake = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", onAbort);
        resolve();
      };
      const leave = () => {
        const i = this.#waiting.indexOf(wake);
        if (i >= 0) this.#waiting.splice(i, 1);
      };
      const timer = setTimeout(() => {
        leave();
        reject(
          gatewayErrors.create(
            "service_unavailable",
            { reason: `no generation slot became free within ${this.#o.queueTimeoutMs} ms` },
            { retryAfterMs: this.#o.retryAfterMs },
          ),
        );
      }, this.#o.queueTimeoutMs);
      const onAbort = () => {
        clearTimeout(timer);
        leave();
        reject(signal.reason);
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.#waiting.push(wake);
      this.peakQueued = Math.max(this.peakQueued, this.#waiting.length);
    });
    return this.#slot(signal); // the releasing request handed its slot over: #running already counts it
  }

  #slot(signal: AbortSignal): () => void {
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      signal.removeEventListener("abort", release);
      const next = this.#waiting.shift();
      if (next) next();
      else this.#running--;
    };
    // A route that stops reading (stop string, client gone) aborts: that frees the slot too.
    signal.addEventListener("abort", release, { once: true });
    return release;
  }
}

export class AdmittingBackend implements GenerationBackend {
  readonly #inner: GenerationBackend;
  readonly #admission: Admission;

  constructor(inner: GenerationBackend, admission: Admission) {
    this.#inner = inner;
    this.#admission = admission;
  }

  generate(model: string, request: GenerateRequest, signal: AbortSignal, parent?: Context): AsyncIterable<GenerateResponse> {
    let release: (() => void) | undefined;
    return relay(
      async () => {
        release = await this.#admission.acquire(signal);
        return this.#inner.generate(model, request, signal, parent)[Symbol.asyncIterator]();
      },
      { onEnd: () => release?.() },
    );
  }

  models(): string[] {
    return this.#inner.models();
  }
}
