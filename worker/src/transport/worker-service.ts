/**
 * gRPC handlers for expertmesh.worker.v1.Worker. Transport only: decode, hand to the EnginePort,
 * stream events back, map errors. A client cancel or expired deadline aborts the engine request.
 * GenerateStream runs many generations over one stream and sends the events of one event-loop turn (an
 * engine step's tokens for every sequence of the stream) as one message.
 */
import type { Logger } from "@expertmesh/common";
import {
  type Finished,
  FinishReason,
  type GenerateRequest,
  GenerateResponse,
  type GenerateStreamRequest,
  type GenerateStreamResponse,
  type GenerationEvent,
  type StartGeneration,
  type WorkerServer,
} from "@expertmesh/proto/worker";
import type { ServerDuplexStream, ServerWritableStream } from "@grpc/grpc-js";
import type { Span } from "@opentelemetry/api";
import type { EngineEvent, EnginePort } from "../engine/engine-port.ts";
import { workerErrors } from "../errors.ts";
import { toErrorDetail, toGrpcError } from "./grpc-errors.ts";
import { callerContext, endGenerateSpan, startGenerateSpan } from "./tracing.ts";

export interface WorkerIdentity {
  workerId: string;
  rank: number;
  worldSize: number;
}

export function createWorkerService(engine: EnginePort, identity: WorkerIdentity, log: Logger, modelName: string): WorkerServer {
  /**
   * Runs one generation on the engine, handing its events to `write` until it ends or `signal` aborts;
   * resolves with the error it failed with (undefined when it finished or was aborted).
   */
  const run = async (request: GenerateRequest, signal: AbortSignal, span: Span, write: (e: EngineEvent) => void): Promise<unknown> => {
    let finished: Finished | undefined;
    try {
      if (!request.requestId) throw workerErrors.create("invalid_argument", { field: "request_id", problem: "must not be empty" });
      for await (const event of engine.generate(request, signal, span.spanContext())) {
        if (signal.aborted) break;
        if (event.kind === "finished") finished = event.finished;
        write(event);
      }
      endGenerateSpan(span, finished?.usage, signal.aborted ? FinishReason.FINISH_REASON_ABORTED : finished?.reason);
      return undefined;
    } catch (err) {
      log.child({ reqId: request.requestId }).debug({ err }, "generate failed");
      endGenerateSpan(span, undefined, undefined, err instanceof Error ? err : new Error(String(err)));
      return signal.aborted ? undefined : err;
    }
  };

  return {
    generate(call: ServerWritableStream<GenerateRequest, GenerateResponse>) {
      // The gRPC deadline, when the client set one, bounds the request like deadline_unix_ms does.
      const grpcDeadline = call.getDeadline();
      const grpcMs = grpcDeadline instanceof Date ? grpcDeadline.getTime() : Number.isFinite(grpcDeadline) ? Number(grpcDeadline) : 0;
      const request =
        grpcMs > 0 && (call.request.deadlineUnixMs === 0 || grpcMs < call.request.deadlineUnixMs)
          ? { ...call.request, deadlineUnixMs: grpcMs }
          : call.request;
      const controller = new AbortController();
      call.on("cancelled", () => controller.abort());
      const span = startGenerateSpan(callerContext(call.metadata), request, modelName, identity.rank);
      void run(request, controller.signal, span, (event) =>
        call.write(
          event.kind === "tokens"
            ? GenerateResponse.fromPartial({ tokens: event.tokens })
            : GenerateResponse.fromPartial({ finished: event.finished }),
        ),
      ).then((err) => {
        if (err === undefined) call.end();
        else call.emit("error", toGrpcError(err));
      });
    },

    generateStream(call: ServerDuplexStream<GenerateStreamRequest, GenerateStreamResponse>) {
      const open = new Map<number, AbortController>();
      let outbox: GenerationEvent[] = [];
      let flushDue = false;
      let halfClosed = false;
      let gone = false;
      let ended = false;
      // The client half-closed and every generation's last event is out: the stream ends.
      const maybeEnd = () => {
        if (!halfClosed || open.size > 0 || outbox.length > 0 || ended || gone) return;
        ended = true;
        call.end();
      };
      const flush = () => {
        flushDue = false;
        const events = outbox;
        outbox = [];
        if (!gone && events.length > 0) call.write({ events });
        maybeEnd();
      };
      // Everything sent in one turn of the event loop (an engine step resumes every sequence it advanced
      // in the same one) leaves as one message: setImmediate runs once this turn's callbacks, promise
      // reactions and ticks are done, where a nextTick would flush after each timer or I/O callback.
      const send = (event: GenerationEvent) => {
        outbox.push(event);
        if (flushDue) return;
        flushDue = true;
        setImmediate(flush);
      };
      const fail = (handle: number, err: unknown) => {
        const { code, detail } = toErrorDetail(err);
        send({ handle, error: { code, detail } });
      };
      const start = (s: StartGeneration) => {
        const handle = s.handle;
        if (open.has(handle)) {
          fail(handle, workerErrors.create("invalid_argument", { field: "handle", problem: `${handle} is already open on this stream` }));
          return;
        }
        if (!s.request) {
          fail(handle, workerErrors.create("invalid_argument", { field: "request", problem: "is required" }));
          return;
        }
        const request = s.request;
        const controller = new AbortController();
        open.set(handle, controller);
        const span = startGenerateSpan(callerContext(s.traceContext), request, modelName, identity.rank);
        void run(request, controller.signal, span, (event) =>
          send(event.kind === "tokens" ? { handle, tokens: event.tokens } : { handle, finished: event.finished }),
        ).then((err) => {
          if (open.get(handle) === controller) open.delete(handle);
          if (err !== undefined) fail(handle, err);
          else maybeEnd();
        });
      };
      call.on("data", (m: GenerateStreamRequest) => {
        if (m.start) start(m.start);
        else if (m.cancel) {
          open.get(m.cancel.handle)?.abort();
          open.delete(m.cancel.handle);
          maybeEnd();
        }
      });
      call.on("end", () => {
        halfClosed = true;
        maybeEnd();
      });
      // The client went away (or the stream broke): every generation on it is aborted.
      const abandon = () => {
        gone = true;
        for (const c of open.values()) c.abort();
        open.clear();
      };
      call.on("cancelled", abandon);
      call.on("error", abandon);
    },

    abort(call, callback) {
      callback(null, { found: engine.abort(call.request.requestId) });
    },

    info(_call, callback) {
      callback(null, { ...engine.info(), ...identity });
    },
  };
}
