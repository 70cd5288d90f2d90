/**
 * The engine a grouped worker serves through: the gRPC service holds this one object while the group
 * agent swaps what is behind it (waiting → the group's engine → waiting again when the group breaks).
 */
import type { GenerateRequest } from "@expertmesh/proto/worker";
import type { SpanContext } from "@opentelemetry/api";
import type { EngineEvent, EnginePort } from "../engine/engine-port.ts";

export class SwitchableEngine implements EnginePort {
  #current: EnginePort;

  constructor(initial: EnginePort) {
    this.#current = initial;
  }

  get current(): EnginePort {
    return this.#current;
  }

  set(engine: EnginePort): void {
    this.#current = engine;
  }

  get ready(): boolean {
    return this.#current.ready;
  }

  get notReadyReason(): string {
    return this.#current.notReadyReason;
  }

  info() {
    return this.#current.info();
  }

  generate(request: GenerateRequest, signal: AbortSignal, trace?: SpanContext): AsyncIterable<EngineEvent> {
    return this.#current.generate(request, signal, trace);
  }

  abort(requestId: string): boolean {
    return this.#current.abort(requestId);
  }

  prefixSummary() {
    return (
      this.#current.prefixSummary?.() ?? { blockSize: 0, salt: "", bloom: Buffer.alloc(0), blocks: 0, pinnedBlocks: 0, pinnedLoops: 0 }
    );
  }

  drain(): Promise<void> {
    return this.#current.drain?.() ?? Promise.resolve();
  }
}
