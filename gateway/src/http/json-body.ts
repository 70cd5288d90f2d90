/**
 * The JSON body reader. A body of megabytes costs the event loop tens of milliseconds to gather, decode
 * and parse: time every open stream waits for its next token (R23). A body declared (or grown) past
 * `offThreadBytes` goes chunk by chunk, as it arrives, to a `JsonBodyParser` (adapters/json-threads.ts),
 * and only its value comes back. Smaller ones are parsed here. Either way with Fastify's own rules and
 * errors: the body limit (413 through body-limit.ts), content-length checks, and `__proto__` /
 * `constructor.prototype` keys refused.
 */
import type { Readable } from "node:stream";
import { errorCodes, type FastifyInstance } from "fastify";
import secureJson from "secure-json-parse";

/** One body being received by a JsonBodyParser. */
export interface JsonBodySink {
  write(chunk: Uint8Array): void;
  /** Resolves with the parsed body; rejects with InvalidJsonBody when it is not JSON (or is poisoned). */
  end(): Promise<unknown>;
  abort(): void;
}

/** Parses bodies elsewhere than on the event loop. */
export interface JsonBodyParser {
  open(): JsonBodySink;
}

export class InvalidJsonBody extends Error {}

const POISONING = { protoAction: "error", constructorAction: "error" } as const;

/** Parses on the calling thread; throws InvalidJsonBody. */
export function parseJsonBody(body: Buffer): unknown {
  try {
    return secureJson.parse(body, null, POISONING);
  } catch {
    throw new InvalidJsonBody("the body is not valid JSON");
  }
}

interface ReadOptions {
  limit: number;
  parser?: JsonBodyParser;
  offThreadBytes: number;
}

export function registerJsonBody(app: FastifyInstance, o: ReadOptions): void {
  app.addContentTypeParser("application/json", (request, payload, done) => {
    readJsonBody(payload, Number(request.headers["content-length"]), o).then(
      (value) => done(null, value),
      (err: Error) => done(err, undefined),
    );
  });
}

function invalid(err: unknown): Error {
  return err instanceof InvalidJsonBody ? new errorCodes.FST_ERR_CTP_INVALID_JSON_BODY() : (err as Error);
}

function readJsonBody(payload: Readable, declared: number, o: ReadOptions): Promise<unknown> {
  if (declared > o.limit) return Promise.reject(new errorCodes.FST_ERR_CTP_BODY_TOO_LARGE());
  return new Promise((resolve, reject) => {
    let received = 0;
    let chunks: Buffer[] = [];
    let sink: JsonBodySink | undefined;
    const offThread = (parser: JsonBodyParser) => {
      sink = parser.open();
      for (const c of chunks) sink.write(c);
      chunks = [];
    };
    const stop = (err: Error) => {
      detach();
      sink?.abort();
      reject(err);
    };
    const onData = (chunk: Buffer) => {
      received += chunk.length;
      if (received > o.limit) return stop(new errorCodes.FST_ERR_CTP_BODY_TOO_LARGE());
      if (sink) return sink.write(chunk);
      chunks.push(chunk);
      if (o.parser && received >= o.offThreadBytes) offThread(o.parser);
    };
    const onEnd = (err?: Error & { statusCode?: number }) => {
      if (err) {
        if (!(typeof err.statusCode === "number" && err.statusCode >= 400)) err.statusCode = 400;
        return stop(err);
      }
      if (!Number.isNaN(declared) && received !== declared) return stop(new errorCodes.FST_ERR_CTP_INVALID_CONTENT_LENGTH());
      if (received === 0) return stop(new errorCodes.FST_ERR_CTP_EMPTY_JSON_BODY());
      detach();
      if (sink) return void sink.end().then(resolve, (e: unknown) => reject(invalid(e)));
      try {
        resolve(parseJsonBody(chunks.length === 1 && chunks[0] ? chunks[0] : Buffer.concat(chunks, received)));
      } catch (e) {
        reject(invalid(e));
      }
    };
    const detach = () => {
      payload.removeListener("data", onData);
      payload.removeListener("end", onEnd);
      payload.removeListener("error", onEnd);
    };
    if (o.parser && declared >= o.offThreadBytes) offThread(o.parser);
    payload.on("data", onData);
    payload.on("end", onEnd);
    payload.on("error", onEnd);
    payload.resume();
  });
}
