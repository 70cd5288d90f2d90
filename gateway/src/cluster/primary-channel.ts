/**
 * Calls from a gateway child to its primary over the cluster's IPC channel: what the processes share
 * when there is no Redis (rate-limit windows, stored responses) and the aggregated /metrics. One request
 * message, one reply, matched by id. A call the primary does not answer within `timeoutMs` (it is busy
 * or gone) fails as `store_unavailable` (503 with retry-after), as a Redis that does not answer does.
 * The transport is a Port so that tests can run both ends in one process; it knows nothing of the ops.
 */
import type { AppError } from "@expertmesh/common";
import { storeUnavailable } from "../adapters/redis-errors.ts";

export interface CallMessage {
  kind: "expertmesh:call";
  id: number;
  op: string;
  args: unknown[];
}
export type ReplyMessage =
  | { kind: "expertmesh:reply"; id: number; ok: true; value: unknown }
  | { kind: "expertmesh:reply"; id: number; ok: false; message: string };

/** One end of an IPC channel: process (a child) or a cluster Worker (the primary's view of a child). */
export interface Port {
  send(message: unknown): unknown;
  on(event: "message", listener: (message: unknown) => void): unknown;
}

export interface ChannelOptions {
  timeoutMs: number;
  retryAfterMs: number;
}

/** The child's end. */
export class PrimaryChannel {
  readonly #port: Port;
  readonly #o: ChannelOptions;
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  #nextId = 1;

  constructor(port: Port, o: ChannelOptions) {
    this.#port = port;
    this.#o = o;
    port.on("message", (m) => {
      if (!isReply(m)) return;
      const p = this.#pending.get(m.id);
      if (!p) return; // it timed out already
      this.#pending.delete(m.id);
      clearTimeout(p.timer);
      if (m.ok) p.resolve(m.value);
      else p.reject(new Error(`the gateway's primary process failed ${m.message}`));
    });
  }

  call<T>(op: string, ...args: unknown[]): Promise<T> {
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(this.#unavailable());
      }, this.#o.timeoutMs);
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      try {
        this.#port.send({ kind: "expertmesh:call", id, op, args } satisfies CallMessage);
      } catch {
        // The channel is closed (the primary is gone; this process is about to exit with it).
        this.#pending.delete(id);
        clearTimeout(timer);
        reject(this.#unavailable());
      }
    });
  }

  #unavailable(): AppError {
    return storeUnavailable("the gateway's primary process", this.#o.retryAfterMs);
  }
}

export type Handlers = Record<string, (...args: never[]) => Promise<unknown>>;

/** The primary's end for one child: answers its calls with `handlers`. */
export function answerCalls(port: Port, handlers: Handlers): void {
  port.on("message", (m) => {
    if (!isCall(m)) return;
    const handler = handlers[m.op] as ((...args: unknown[]) => Promise<unknown>) | undefined;
    const reply = (r: { ok: true; value: unknown } | { ok: false; message: string }) => {
      try {
        port.send({ kind: "expertmesh:reply", id: m.id, ...r } satisfies ReplyMessage);
      } catch {
        // the child is gone
      }
    };
    if (!handler) return reply({ ok: false, message: `${m.op}: no such operation` });
    handler(...m.args).then(
      (value) => reply({ ok: true, value }),
      (err: Error) => reply({ ok: false, message: `${m.op}: ${err?.message ?? err}` }),
    );
  });
}

function isCall(m: unknown): m is CallMessage {
  return typeof m === "object" && m !== null && (m as { kind?: unknown }).kind === "expertmesh:call";
}
function isReply(m: unknown): m is ReplyMessage {
  return typeof m === "object" && m !== null && (m as { kind?: unknown }).kind === "expertmesh:reply";
}
