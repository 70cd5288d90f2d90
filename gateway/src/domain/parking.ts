/**
 * Scale from zero (issue #8): while no engine group serving a model is ready, a generation for it is
 * parked here instead of failing, and the number parked per model is the demand signal an autoscaler
 * (KEDA, through Prometheus: expertmesh_gateway_requests_parked) scales the model's engine groups on.
 * A parked generation continues on the inner backend as soon as it reports the model (a group came up),
 * and fails with 503 + retry-after when the park is full, or when no group came up within the timeout
 * (or before the request's own deadline). Cancelling the caller's signal leaves the park at once.
 *
 * What it parks: models it is told the cluster serves (`models`, e.g. every engine pool of the Helm
 * chart, which may all be at zero replicas) and models some live member lists while not ready
 * (`known`). Anything else goes straight to the inner backend (404 model_not_found there). It does not
 * admit or queue generations for free slots: that is admission.ts, around it.
 */
import type { GenerateRequest, GenerateResponse } from "@expertmesh/proto/worker";
import type { Context } from "@opentelemetry/api";
import { gatewayErrors } from "../errors.ts";
import { type GenerationBackend, relay } from "./generation-backend.ts";

export interface ParkingOptions {
  /** Generations parked at once across models; beyond it → 503 at once. 0 turns parking off. */
  maxParked: number;
  /** Longest a generation waits for a group of its model (its own deadline may cut it shorter). */
  timeoutMs: number;
  /** How often parked generations look for a ready group. */
  pollMs: number;
  /** retry-after sent with a refusal. */
  retryAfterMs: number;
  /** Models the cluster serves even when none of their groups exists (scaled to zero). */
  models: readonly string[];
}

export type ParkOutcome = "served" | "timeout" | "rejected" | "cancelled";

/** What the park reports to metrics (the gateway's gauge reads `parked`, the counter counts outcomes). */
export interface ParkingListener {
  onOutcome?(model: string, outcome: ParkOutcome): void;
}

interface Parked {
  readonly model: string;
  readonly wake: () => void;
}

export class ParkingBackend implements GenerationBackend {
  readonly #inner: GenerationBackend;
  readonly #o: ParkingOptions;
  readonly #known: () => Iterable<string>;
  readonly #listener: ParkingListener;
  readonly #parked = new Set<Parked>();
  #timer: NodeJS.Timeout | undefined;

  /** `known`: the models live members list in any state (a group may be forming for them). */
  constructor(inner: GenerationBackend, options: ParkingOptions, known: () => Iterable<string> = () => [], listener: ParkingListener = {}) {
    this.#inner = inner;
    this.#o = options;
    this.#known = known;
    this.#listener = listener;
  }

  /** Generations parked now, by model (for the demand gauge). */
  parked(): Map<string, number> {
    const byModel = new Map<string, number>(this.#o.models.map((m) => [m, 0]));
    for (const p of this.#parked) byModel.set(p.model, (byModel.get(p.model) ?? 0) + 1);
    return byModel;
  }

  generate(model: string, request: GenerateRequest, signal: AbortSignal, parent?: Context): AsyncIterable<GenerateResponse> {
    return relay(async () => {
      if (!this.#ready(model) && this.#parkable(model)) {
        await this.#park(model, request.deadlineUnixMs, signal);
        this.#listener.onOutcome?.(model, "served");
      }
      return this.#inner.generate(model, request, signal, parent)[Symbol.asyncIterator]();
    }, {});
  }

  /** Models some ready group serves (a parked model is not one until its group is up). */
  models(): string[] {
    return this.#inner.models();
  }

  close(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #ready(model: string): boolean {
    return this.#inner.models().includes(model);
  }

  #parkable(model: string): boolean {
    if (this.#o.maxParked <= 0) return false;
    if (this.#o.models.includes(model)) return true;
    for (const m of this.#known()) if (m === model) return true;
    return false;
  }

  /** Resolves once a group of `model` is ready; throws service_unavailable (full, timeout) or the abort reason. */
  #park(model: string, deadlineUnixMs: number, signal: AbortSignal): Promise<void> {
    if (this.#parked.size >= this.#o.maxParked) {
      this.#listener.onOutcome?.(model, "rejected");
      return Promise.reject(
        gatewayErrors.create(
          "service_unavailable",
          { reason: `no engine group serving '${model}' is ready and ${this.#parked.size} requests already wait for one` },
          { retryAfterMs: this.#o.retryAfterMs },
        ),
      );
    }
    const waitMs = Math.max(0, Math.min(this.#o.timeoutMs, deadlineUnixMs > 0 ? deadlineUnixMs - Date.now() : Number.POSITIVE_INFINITY));
    return new Promise<void>((resolve, reject) => {
      const leave = (outcome?: ParkOutcome) => {
        clearTimeout(timer);
        signal.removeEventListener("abort", onAbort);
        this.#parked.delete(entry);
        if (this.#parked.size === 0) this.close();
        if (outcome) this.#listener.onOutcome?.(model, outcome);
      };
      const entry: Parked = {
        model,
        wake: () => {
          leave();
          resolve();
        },
      };
      const timer = setTimeout(() => {
        leave("timeout");
        reject(
          gatewayErrors.create(
            "service_unavailable",
            { reason: `no engine group serving '${model}' became ready within ${waitMs} ms` },
            { retryAfterMs: this.#o.retryAfterMs },
          ),
        );
      }, waitMs);
      const onAbort = () => {
        leave("cancelled");
        reject(signal.reason);
      };
      if (signal.aborted) return onAbort();
      signal.addEventListener("abort", onAbort, { once: true });
      this.#parked.add(entry);
      this.#timer ??= setInterval(() => this.#poll(), this.#o.pollMs);
    });
  }

  /** Wakes every parked generation whose model has a ready group now (in arrival order). */
  #poll(): void {
    const ready = new Set(this.#inner.models());
    for (const p of [...this.#parked]) if (ready.has(p.model)) p.wake();
  }
}
