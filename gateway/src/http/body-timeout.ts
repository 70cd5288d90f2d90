/**
 * Bounds the time to receive a request body (#20 item 5): a body must arrive within a total deadline,
 * with no gap between bytes longer than an idle limit; otherwise the client gets an OpenAI-shaped 408
 * (when no answer has started) and the connection is closed, and the timeout is counted. Without it a
 * client sending a byte a second held a connection, a request and its buffers for as long as it liked
 * (Fastify's requestTimeout is 0). Only receiving is bounded: a request whose body is complete (every
 * GET, any streamed answer) is not watched, so long generations are untouched.
 *
 * It watches the socket's byte count from one shared timer, never the body stream itself (a 'data'
 * listener would start the body flowing before the route reads it).
 */
import type { Socket } from "node:net";
import { Counter, Gauge, type Registry } from "@expertmesh/common";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { gatewayErrors } from "../errors.ts";

export interface BodyTimeoutOptions {
  /** Most time to receive a whole body. */
  totalMs: number;
  /** Most time without a byte of it. */
  idleMs: number;
  registry: Registry;
}

interface Receiving {
  request: FastifyRequest;
  reply: FastifyReply;
  socket: Socket;
  startedAt: number;
  bytesRead: number;
  lastByteAt: number;
}

/** Checks per second at most: a timeout fires within a tick of its limit. */
const MAX_TICK_MS = 1_000;

export function boundBodyTime(app: FastifyInstance, o: BodyTimeoutOptions): void {
  const receiving = new Set<Receiving>();
  const timeouts = new Counter({
    name: "expertmesh_gateway_body_timeouts_total",
    help: "Requests whose body did not arrive in time (kind: total, over the deadline; idle, a gap between bytes), answered 408 and closed",
    labelNames: ["kind"] as const,
    registers: [o.registry],
  });
  new Gauge({
    name: "expertmesh_gateway_bodies_receiving",
    help: "Requests whose body is still arriving",
    registers: [o.registry],
    collect() {
      this.set(receiving.size);
    },
  });
  const tickMs = Math.max(10, Math.min(MAX_TICK_MS, Math.floor(Math.min(o.totalMs, o.idleMs) / 4)));
  let timer: NodeJS.Timeout | undefined;

  const check = () => {
    const now = Date.now();
    for (const r of receiving) {
      if (r.request.raw.complete || r.socket.destroyed) {
        receiving.delete(r);
        continue;
      }
      if (r.socket.bytesRead !== r.bytesRead) {
        r.bytesRead = r.socket.bytesRead;
        r.lastByteAt = now;
      }
      const kind = now - r.startedAt > o.totalMs ? "total" : now - r.lastByteAt > o.idleMs ? "idle" : undefined;
      if (!kind) continue;
      receiving.delete(r);
      timeouts.inc({ kind });
      timeOut(r, kind === "total" ? `over ${o.totalMs} ms in all` : `no byte for ${o.idleMs} ms`);
    }
    if (receiving.size === 0) {
      clearInterval(timer);
      timer = undefined;
    }
  };

  app.addHook("onRequest", async (request, reply) => {
    if (request.raw.complete) return;
    const socket = request.raw.socket;
    const now = Date.now();
    receiving.add({ request, reply, socket, startedAt: now, bytesRead: socket.bytesRead, lastByteAt: now });
    timer ??= setInterval(check, tickMs).unref();
  });
  app.addHook("onClose", async () => clearInterval(timer));
}

/** Answers 408 when no answer has started (Fastify is told to leave the reply alone), then closes. */
function timeOut(r: Receiving, detail: string): void {
  const res = r.reply.raw;
  if (res.headersSent) {
    r.socket.destroy();
    return;
  }
  r.reply.hijack();
  const body = JSON.stringify(gatewayErrors.create("request_timeout", { detail }).toOpenAi());
  // connection: close makes Node close the socket once the answer is written.
  res.writeHead(408, {
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(body),
    connection: "close",
    "x-request-id": r.request.id,
  });
  res.end(body);
}
