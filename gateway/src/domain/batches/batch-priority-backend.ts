/**
 * A GenerationBackend decorator: generations of batch lines (callers holding a batch credential) go to
 * the worker at PRIORITY_BATCH, so the worker's scheduler ranks every online request above them, and
 * pass the BatchGate, which holds them back while online generations run (batch-gate.ts). Online
 * generations pass through unchanged (they only register with the gate).
 */
import { type GenerateRequest, type GenerateResponse, Priority } from "@expertmesh/proto/worker";
import type { Context } from "@opentelemetry/api";
import { callerOf } from "../caller.ts";
import { type GenerationBackend, relay } from "../generation-backend.ts";
import type { BatchGate } from "./batch-gate.ts";
import { isBatchLine } from "./batch-line-keys.ts";

export class BatchPriorityBackend implements GenerationBackend {
  readonly #inner: GenerationBackend;
  readonly #gate: BatchGate | undefined;

  constructor(inner: GenerationBackend, gate?: BatchGate) {
    this.#inner = inner;
    this.#gate = gate;
  }

  generate(model: string, request: GenerateRequest, signal: AbortSignal, parent?: Context): AsyncIterable<GenerateResponse> {
    const batch = isBatchLine(callerOf(parent)?.key);
    let release: (() => void) | undefined;
    return relay(
      async () => {
        release = batch ? await this.#gate?.enterBatch(signal) : this.#gate?.enterOnline();
        return this.#inner
          .generate(model, batch ? { ...request, priority: Priority.PRIORITY_BATCH } : request, signal, parent)
          [Symbol.asyncIterator]();
      },
      { onEnd: () => release?.() },
    );
  }

  models(): string[] {
    return this.#inner.models();
  }
}
