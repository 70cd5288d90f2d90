/**
 * JsonBodyParser on a worker thread (http/json-body.ts): a large request body's chunks go to the thread
 * as they arrive, the thread gathers, decodes and parses it, and only the value comes back (a structured
 * clone, mostly copies of strings). A body of megabytes then costs the event loop a few milliseconds
 * instead of tens. One thread, bodies parsed in the order they end, at the render threads' priority. A
 * thread that dies fails the bodies it held (a server error) and is replaced.
 */
import { Worker } from "node:worker_threads";
import { InvalidJsonBody, type JsonBodyParser, type JsonBodySink } from "../http/json-body.ts";
import type { ThreadData } from "./prompt-thread-protocol.ts";

const ENTRY = new URL("./json-thread-main.ts", import.meta.url);

/** To the thread: a body's next chunk, its end, or its abandonment. */
export type JsonThreadMessage = { id: number; chunk: Uint8Array } | { id: number; end: true } | { id: number; abort: true };

export type JsonThreadResult = { id: number; ok: true; value: unknown } | { id: number; ok: false; invalid: boolean; message: string };

interface Pending {
  resolve(value: unknown): void;
  reject(err: unknown): void;
}

export class ThreadJsonParser implements JsonBodyParser {
  readonly #data: ThreadData;
  readonly #pending = new Map<number, Pending>();
  #worker: Worker;
  #nextId = 0;
  #closed = false;

  constructor(o: { nice?: number } = {}) {
    this.#data = { nice: o.nice ?? 0 };
    this.#worker = this.#spawn();
  }

  open(): JsonBodySink {
    const id = ++this.#nextId;
    const worker = this.#worker;
    const send = (m: JsonThreadMessage, transfer: ArrayBuffer[] = []) => worker.postMessage(m, transfer);
    return {
      // A socket's chunk may be a view of a larger buffer: the thread gets a copy of its own.
      write: (chunk) => {
        const own = new Uint8Array(chunk);
        send({ id, chunk: own }, [own.buffer]);
      },
      end: () =>
        new Promise((resolve, reject) => {
          if (worker !== this.#worker) return reject(new Error("the JSON thread was replaced while the body arrived"));
          this.#pending.set(id, { resolve, reject });
          send({ id, end: true });
        }),
      abort: () => send({ id, abort: true }),
    };
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#worker.terminate();
  }

  #spawn(): Worker {
    const worker = new Worker(ENTRY, { workerData: this.#data });
    worker.on("message", (r: JsonThreadResult) => this.#settle(r));
    worker.on("error", (err) => this.#lost(worker, err));
    worker.on("exit", (code) => this.#lost(worker, new Error(`JSON thread exited with code ${code}`)));
    worker.unref();
    return worker;
  }

  #settle(r: JsonThreadResult): void {
    const p = this.#pending.get(r.id);
    if (!p) return;
    this.#pending.delete(r.id);
    if (r.ok) p.resolve(r.value);
    else p.reject(r.invalid ? new InvalidJsonBody(r.message) : new Error(r.message));
  }

  #lost(worker: Worker, err: unknown): void {
    if (worker !== this.#worker) return;
    for (const p of this.#pending.values()) p.reject(err instanceof Error ? err : new Error(String(err)));
    this.#pending.clear();
    if (!this.#closed) this.#worker = this.#spawn();
  }
}
