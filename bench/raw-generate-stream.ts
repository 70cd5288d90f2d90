/**
 * The worker's GenerateStream from bench code without grpc-js: node:http2 with gRPC's length-prefixed
 * framing and the generated codec. The bench's direct client and its minimal relay use it, so that
 * neither pays grpc-js's per-message call stack (several times this path's cost) in the figures.
 */
import { connect as connectHttp2 } from "node:http2";
import { type GenerateRequest, GenerateStreamRequest, GenerateStreamResponse } from "@expertmesh/proto/worker";

export interface RawGenerateStream {
  /** Starts a generation under `handle` on the stream. */
  start(handle: number, request: GenerateRequest): void;
  close(): void;
}

/** Opens one GenerateStream to `address`; every message the worker sends goes to `onMessage` with its arrival time. */
export function openRawGenerateStream(address: string, onMessage: (m: GenerateStreamResponse, now: number) => void): RawGenerateStream {
  const session = connectHttp2(`http://${address}`);
  const stream = session.request({
    ":method": "POST",
    ":path": "/expertmesh.worker.v1.Worker/GenerateStream",
    "content-type": "application/grpc",
    te: "trailers",
  });
  let pending: Buffer = Buffer.alloc(0);
  stream.on("data", (chunk: Buffer) => {
    const now = performance.now();
    pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    while (pending.length >= 5) {
      const len = pending.readUInt32BE(1);
      if (pending.length < 5 + len) break;
      const m = GenerateStreamResponse.decode(pending.subarray(5, 5 + len));
      pending = pending.subarray(5 + len);
      onMessage(m, now);
    }
  });
  stream.on("error", (err) => {
    throw err;
  });
  return {
    start(handle, request) {
      const message = GenerateStreamRequest.encode({ start: { handle, request, traceContext: {} } }).finish();
      const frame = Buffer.alloc(5 + message.length);
      frame.writeUInt32BE(message.length, 1);
      frame.set(message, 5);
      stream.write(frame);
    },
    close() {
      stream.close();
      session.close();
    },
  };
}
