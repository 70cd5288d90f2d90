/**
 * The gateway's side of GenerateStream: every generation the pool runs on one worker shares one bidi
 * stream, so that a worker step that advances many sequences reaches the gateway as one message (one
 * gRPC message and HTTP/2 read per step instead of one per sequence and token: on the per-token path
 * that is a large share of the gateway's CPU and of its allocation, hence of its GC pauses).
 * A generation is a handle on the stream; its events come out of an EventQueue. The stream opens on
 * the first generation and again after it broke; when it breaks (worker gone, connection lost) every
 * generation still open on it fails with the stream's error (the pool retries it elsewhere when no event
 * was delivered yet), except that one which had no event yet is first sent once more on a new stream.
 */
import type {
  ErrorDetail,
  GenerateRequest,
  GenerateResponse,
  GenerateStreamRequest,
  GenerateStreamResponse,
  GenerationError,
  StartGeneration,
  WorkerClient,
} from "@expertmesh/proto/worker";
import { type ClientDuplexStream, Metadata, type ServiceError, status } from "@grpc/grpc-js";

export type Step = { event: GenerateResponse } | { done: true } | { error: ServiceError; detail?: ErrorDetail };

const DONE: Step = { done: true };

/**
 * One generation's events: a pull queue (a plain array and at most one waiting reader) until pipe()
 * makes it push them to a sink as they are put, synchronously. Steps put while the sink runs (it may
 * cancel the generation, which finishes this queue) are handed over after it returns, in order.
 */
export class EventQueue {
  readonly #queue: Step[] = [];
  #head = 0;
  #waiter: ((s: Step) => void) | null = null;
  #sink: ((s: Step) => void) | null = null;
  #delivering = false;
  #finished = false;

  get finished(): boolean {
    return this.#finished;
  }

  next(): Promise<Step> {
    if (this.#head < this.#queue.length) {
      const s = this.#queue[this.#head++] as Step;
      if (this.#head === this.#queue.length) {
        this.#queue.length = 0;
        this.#head = 0;
      }
      return Promise.resolve(s);
    }
    if (this.#finished) return Promise.resolve(DONE);
    return new Promise((resolve) => {
      this.#waiter = resolve;
    });
  }

  /**
   * From now on every step goes to `sink` as it is put (what is queued, at once); next() is not called
   * again. The sink must not throw: if it does, the queue closes and the sink gets an INTERNAL error as
   * its last step.
   */
  pipe(sink: (s: Step) => void): void {
    this.#sink = sink;
    if (this.#finished && this.#head === this.#queue.length) this.#queue.push(DONE); // over before piped
    this.#deliver();
  }

  put(s: Step): void {
    if (!this.#finished) this.#add(s);
  }

  /** The generation's last step (done or an error); anything put later is dropped. */
  finish(s: Step): void {
    if (this.#finished) return;
    this.#finished = true; // before a piped sink sees the step: it may release the generation at once
    this.#add(s);
  }

  /** The reader is gone: drop what is queued, push nothing more. */
  close(): void {
    this.#finished = true;
    this.#sink = null;
    this.#queue.length = 0;
    this.#head = 0;
  }

  #add(s: Step): void {
    const w = this.#waiter;
    if (w) {
      this.#waiter = null;
      w(s);
      return;
    }
    const sink = this.#sink;
    if (sink !== null && !this.#delivering && this.#head === this.#queue.length) {
      // Piped and idle (the per-token case): straight to the sink, no array slot.
      this.#delivering = true;
      try {
        sink(s);
      } catch (err) {
        this.#failed(sink, err);
      } finally {
        this.#delivering = false;
      }
      if (this.#head < this.#queue.length) this.#deliver(); // what the sink's own call put meanwhile
      return;
    }
    this.#queue.push(s);
    if (sink !== null) this.#deliver();
  }

  /** The sink threw: the queue closes and the sink gets an INTERNAL error as its last step. */
  #failed(sink: (s: Step) => void, err: unknown): void {
    this.close();
    try {
      sink({ error: streamError(status.INTERNAL, `the generation's consumer failed: ${(err as Error)?.message ?? err}`) });
    } catch {
      // it failed twice: nothing more to tell it
    }
  }

  #deliver(): void {
    if (this.#delivering) return; // the sink is running further up the stack: it hands this over next
    this.#delivering = true;
    let sink = this.#sink;
    try {
      while (sink !== null && this.#head < this.#queue.length) {
        const s = this.#queue[this.#head++] as Step;
        sink(s);
        sink = this.#sink;
      }
    } catch (err) {
      if (sink !== null) this.#failed(sink, err);
    } finally {
      this.#delivering = false;
      if (this.#head === this.#queue.length) {
        this.#queue.length = 0;
        this.#head = 0;
      }
    }
  }
}

/** A generation open on the stream: what it was started with, for the one restart it may get. */
interface Open {
  readonly events: EventQueue;
  readonly start: StartGeneration;
  /** Some event of it reached the queue. */
  delivered: boolean;
  /** It was sent again on a new stream after the one it started on broke. */
  restarted: boolean;
}

export class GenerationMux {
  readonly #client: WorkerClient;
  #call: ClientDuplexStream<GenerateStreamRequest, GenerateStreamResponse> | null = null;
  readonly #open = new Map<number, Open>();
  #nextHandle = 1;
  #closed = false;

  constructor(client: WorkerClient) {
    this.#client = client;
  }

  /** Starts a generation; `traceContext` is the caller's W3C trace context (traceparent, tracestate). */
  start(request: GenerateRequest, traceContext: Record<string, string>): { handle: number; events: EventQueue } {
    const handle = this.#nextHandle++;
    const events = new EventQueue();
    if (this.#closed) {
      events.finish({ error: streamError(status.UNAVAILABLE, "the worker's connection is closed") });
      return { handle, events };
    }
    const start = { handle, request, traceContext };
    this.#open.set(handle, { events, start, delivered: false, restarted: false });
    this.#stream().write({ start });
    return { handle, events };
  }

  /** Stops a generation (the worker frees its sequence); its queue gets `reason` as the last step. */
  cancel(handle: number, reason: ServiceError): void {
    const g = this.#open.get(handle);
    if (!g) return;
    this.#open.delete(handle);
    g.events.finish({ error: reason });
    this.#call?.write({ cancel: { handle } });
  }

  /** Ends the stream: generations still open fail as cancelled. */
  close(): void {
    this.#closed = true;
    const call = this.#call;
    this.#call = null;
    this.#failAll(streamError(status.CANCELLED, "the gateway closed the worker's connection"));
    call?.cancel();
  }

  #stream(): ClientDuplexStream<GenerateStreamRequest, GenerateStreamResponse> {
    if (this.#call) return this.#call;
    const call = this.#client.generateStream();
    this.#call = call;
    call.on("data", (m: GenerateStreamResponse) => this.#deliver(m));
    // The stream broke or the worker ended it: the worker dropped whatever was open on it.
    const broken = (error: ServiceError) => {
      if (this.#call !== call) return;
      this.#call = null;
      this.#broken(error);
    };
    call.on("error", broken);
    call.on("end", () => broken(streamError(status.UNAVAILABLE, "the worker ended the generation stream")));
    return call;
  }

  #deliver(m: GenerateStreamResponse): void {
    for (const e of m.events) {
      const g = this.#open.get(e.handle);
      if (!g) continue; // cancelled here; the worker had sent it already
      g.delivered = true;
      if (e.tokens) g.events.put({ event: e });
      else if (e.finished) {
        this.#open.delete(e.handle);
        g.events.put({ event: e });
        g.events.finish(DONE);
      } else if (e.error) {
        this.#open.delete(e.handle);
        g.events.finish(generationError(e.error));
      }
    }
  }

  /**
   * A generation that got nothing yet may have been started on a stream already dead without our knowing
   * (the worker restarted, the connection was lost): it is sent once more on a new stream. Whatever had
   * events, or was sent again already, fails with the stream's error (the pool decides about retrying).
   */
  #broken(error: ServiceError): void {
    const open = [...this.#open.values()];
    this.#open.clear();
    for (const g of open) {
      if (g.delivered || g.restarted || this.#closed) g.events.finish({ error });
      else {
        g.restarted = true;
        this.#open.set(g.start.handle, g);
        this.#stream().write({ start: g.start });
      }
    }
  }

  #failAll(error: ServiceError): void {
    const open = [...this.#open.values()];
    this.#open.clear();
    for (const g of open) g.events.finish({ error });
  }
}

/** A ServiceError as grpc-js reports a failed call, for failures that are not one call's status. */
export function streamError(code: status, details: string): ServiceError {
  return Object.assign(new Error(`${code} ${status[code]}: ${details}`), { code, details, metadata: new Metadata() });
}

function generationError(e: GenerationError): Step {
  const message = e.detail?.message || `the worker failed the generation (status ${e.code})`;
  return { error: streamError(e.code, message), detail: e.detail };
}
