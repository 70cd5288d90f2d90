/**
 * bench/gateway's "minimal relay" path: the least that any Node process standing between the worker and
 * an SSE client over HTTP/1.1 does per token, and nothing else — the floor under what a gateway can add
 * on a given machine. It reads the worker's GenerateStream (node:http2, gRPC framing, the generated
 * decoder: one read and decode per worker message, as the gateway's mux), and for every answer token
 * writes one pre-built SSE chunk, HTTP/1.1 chunked, to that stream's socket (one write per token per
 * socket, as the gateway). No Harmony parsing, detokenization, JSON, routing, auth, telemetry or
 * framework: a stream's request is read only up to its end, the response head is a constant.
 *
 * Its added latency against the direct path is what the machine charges for the extra process hop and
 * the per-socket writes; the gateway's own share is the gateway path's figure minus this one.
 */
import { createServer, type Socket } from "node:net";
import type { GenerateRequest } from "@expertmesh/proto/worker";
import { openRawGenerateStream } from "./raw-generate-stream.ts";

const HEAD =
  "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\ncache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n";
const chunk = (body: string) => `${Buffer.byteLength(body).toString(16)}\r\n${body}\r\n`;
// An answer token's event carries the marker the load client scans for (`"content":" word"`).
const TOKEN = chunk(
  'data: {"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":" word"},"finish_reason":null}]}\n\n',
);
const END = `${chunk("data: [DONE]\n\n")}0\r\n\r\n`;
const REQUEST_END = Buffer.from("\r\n\r\n");

export interface RelayOptions {
  /** The worker's address (host:port). */
  worker: string;
  /** Tokens before the first answer token (the Harmony header) and answer tokens per stream. */
  headerTokens: number;
  answerTokens: number;
  /** What each stream asks the worker for. */
  request: GenerateRequest;
}

/** Starts the relay; resolves with its URL (http://127.0.0.1:PORT). */
export async function startMinimalRelay(o: RelayOptions): Promise<string> {
  const open = new Map<number, { socket: Socket; seen: number }>();
  const mux = openRawGenerateStream(o.worker, (m) => {
    for (const e of m.events) {
      const g = open.get(e.handle);
      if (!g) continue;
      for (const _ of e.tokens?.tokens ?? []) {
        g.seen++;
        if (g.seen > o.headerTokens && g.seen <= o.headerTokens + o.answerTokens) g.socket.write(TOKEN);
      }
      if (e.finished || e.error) {
        open.delete(e.handle);
        g.socket.write(END);
      }
    }
  });
  let handles = 0;
  const start = (socket: Socket) => {
    const handle = ++handles;
    open.set(handle, { socket, seen: 0 });
    socket.write(HEAD);
    mux.start(handle, { ...o.request, requestId: `r${handle}` });
  };
  // Keep-alive connections, one request at a time each: a request is its head plus content-length bytes.
  const server = createServer((socket) => {
    socket.setNoDelay(true);
    let buf: Buffer = Buffer.alloc(0);
    socket.on("data", (data: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, data]) : data;
      for (;;) {
        const end = buf.indexOf(REQUEST_END);
        if (end < 0) return;
        const length = Number(/content-length: *(\d+)/i.exec(buf.subarray(0, end).toString("latin1"))?.[1] ?? 0);
        if (buf.length < end + 4 + length) return;
        buf = buf.subarray(end + 4 + length);
        start(socket);
      }
    });
    socket.on("error", () => socket.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address() as { port: number };
  return `http://127.0.0.1:${address.port}`;
}
