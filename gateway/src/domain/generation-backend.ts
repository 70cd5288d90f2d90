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

/**
 * Where a piped stream's events go: called synchronously, from the code that receives them (on the
 * worker pool, the gRPC message handler), with no promise between the receipt and the consumer.
 * Neither method may throw. After the consumer called the iterator's return(), neither is called again
 * except that end() may still come once (ignore it).
 */
export interface EventSink<T> {
  event(e: T): void;
  /** The stream is over: undefined when it finished, else its error. */
  end(error: unknown): void;
}

/**
 * An iterator that can also push: after pipe(sink) (called between next() calls, with none pending) it
 * hands the rest of its events to the sink instead, and next() must not be called again; return() still
 * closes it. The per-token path uses it so that a token crosses the whole decorator chain in one
 * synchronous call chain — per layer one function call instead of one promise reaction. Iterators
 * without pipe() work too (pipeTo pumps them).
 */
export interface PipeableIterator<T> extends AsyncIterator<T> {
  pipe?(sink: EventSink<T>): void;
}

/** Hands an iterator's remaining events to a sink: by its pipe() where it has one, else by pulling. */
export function pipeTo<T>(it: PipeableIterator<T>, sink: EventSink<T>): void {
  if (it.pipe) {
    it.pipe(sink);
    return;
  }
  const pull = (): void => {
    it.next().then(
      (r) => {
        if (r.done) sink.end(undefined);
        else {
          sink.event(r.value);
          pull();
        }
      },
      (error: unknown) => sink.end(error),
    );
  };
  pull();
}

/**
 * Reads a started stream to its end: `first` (what the caller's first next() gave), then the rest piped.
 * `onEvent` returns false to stop early (the iterator is then closed). Resolves when the stream finished
 * or was stopped, rejects with the stream's error or with what `onEvent` threw (the iterator closed too).
 */
export function consume<T>(it: PipeableIterator<T>, first: IteratorResult<T>, onEvent: (e: T) => boolean): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let settled = false;
    const settle = (error: unknown, close: boolean) => {
      if (settled) return;
      settled = true;
      // Stopped or failed here: let the chain run its cleanup (slot, outstanding tokens) now.
      if (close) it.return?.(undefined)?.catch(() => {});
      if (error === undefined) resolve();
      else reject(error);
    };
    const event = (e: T) => {
      if (settled) return;
      let more: boolean;
      try {
        more = onEvent(e);
      } catch (error) {
        settle(error, true);
        return;
      }
      if (!more) settle(undefined, true);
    };
    if (first.done) return settle(undefined, false);
    event(first.value);
    if (!settled) pipeTo(it, { event, end: (error) => settle(error, false) });
  });
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

class Relay<T> implements PipeableIterator<T> {
  readonly #open: () => AsyncIterator<T> | Promise<AsyncIterator<T>>;
  readonly #hooks: RelayHooks<T>;
  #inner: PipeableIterator<T> | null = null;
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

  pipe(sink: EventSink<T>): void {
    const inner = this.#inner;
    if (this.#ended || !inner) {
      pipeTo({ next: () => this.next() }, sink); // not open yet (or over): nothing to bypass
      return;
    }
    const onEvent = this.#hooks.onEvent;
    pipeTo(inner, {
      event: onEvent
        ? (e) => {
            onEvent(e);
            sink.event(e);
          }
        : (e) => sink.event(e),
      end: (error) => {
        this.#end(error);
        sink.end(error);
      },
    });
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
