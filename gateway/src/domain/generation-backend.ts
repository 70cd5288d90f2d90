/**
 * The port the gateway's domain uses to run a generation on some engine group. The worker-pool adapter
 * routes over gRPC; tests can use a scripted token source behind the same contract.
 */
import type { GenerateRequest, GenerateResponse } from "@expertmesh/proto/worker";
import type { Context } from "@opentelemetry/api";

export interface GenerationBackend {
  /**
   * Streams the worker's events; aborting the signal cancels the remote stream. Throws AppError.
   * `parent` is the caller's context: its trace (from its traceparent header) and, once it authenticated,
   * who it is (domain/caller.ts). Decorators pass it on unchanged.
   */
  generate(model: string, request: GenerateRequest, signal: AbortSignal, parent?: Context): AsyncIterable<GenerateResponse>;
  /** Models some ready engine group serves. */
  models(): string[];
}

export interface RelayHooks<T> {
  /** Each event, before the consumer sees it. */
  onEvent?(event: T): void;
  /** Once, when the stream ends: finished (no error), failed (the error), or closed early by the consumer. */
  onEnd?(error: unknown): void;
}

/**
 * What decorators of a GenerationBackend return: the events of the iterator `open()` gives (opened on
 * the first next(), so that nothing runs for a stream nobody reads), with hooks for each event and for
 * the end. Per event it costs one promise reaction where an async-generator relay costs several promises
 * and result objects — with a few decorators stacked on the per-token path, a measurable share of the
 * gateway's CPU and allocation per token.
 */
export function relay<T>(open: () => AsyncIterator<T> | Promise<AsyncIterator<T>>, hooks: RelayHooks<T>): AsyncIterable<T> {
  return { [Symbol.asyncIterator]: () => new Relay(open, hooks) };
}

class Relay<T> implements AsyncIterator<T> {
  readonly #open: () => AsyncIterator<T> | Promise<AsyncIterator<T>>;
  readonly #hooks: RelayHooks<T>;
  #inner: AsyncIterator<T> | null = null;
  #opening: Promise<AsyncIterator<T>> | null = null;
  #ended = false;

  constructor(open: () => AsyncIterator<T> | Promise<AsyncIterator<T>>, hooks: RelayHooks<T>) {
    this.#open = open;
    this.#hooks = hooks;
  }

  next(): Promise<IteratorResult<T>> {
    if (this.#ended) return Promise.resolve({ done: true, value: undefined });
    const inner = this.#inner;
    if (inner) return inner.next().then(this.#result, this.#failed);
    this.#opening ??= Promise.resolve()
      .then(this.#open)
      .then((it) => {
        this.#inner = it;
        return it;
      });
    return this.#opening.then((it) => it.next()).then(this.#result, this.#failed);
  }

  async return(value?: unknown): Promise<IteratorResult<T>> {
    if (!this.#ended) {
      try {
        // Closed while still opening: wait for it, so that the hooks see what opening set up (a slot).
        const inner = this.#inner ?? (await this.#opening?.catch(() => null));
        await inner?.return?.();
      } finally {
        this.#end(undefined);
      }
    }
    return { done: true, value };
  }

  readonly #result = (r: IteratorResult<T>): IteratorResult<T> => {
    if (r.done) this.#end(undefined);
    else this.#hooks.onEvent?.(r.value);
    return r;
  };

  readonly #failed = (error: unknown): never => {
    this.#end(error);
    throw error;
  };

  #end(error: unknown): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#hooks.onEnd?.(error);
  }
}
