/**
 * gRPC handlers for expertmesh.worker.v1.Worker. Transport only: decode, hand to the EnginePort,
 * stream events back, map errors. A client cancel or expired deadline aborts the engine request.
 */
import type { Logger } from "@expertmesh/common";
import { type Finished, FinishReason, GenerateResponse, type WorkerServer } from "@expertmesh/proto/worker";
import type { ServerWritableStream } from "@grpc/grpc-js";
import type { EnginePort } from "../engine/engine-port.ts";
import { workerErrors } from "../errors.ts";
import { toGrpcError } from "./grpc-errors.ts";
import { endGenerateSpan, startGenerateSpan } from "./tracing.ts";

export interface WorkerIdentity {
  workerId: string;
  rank: number;
  worldSize: number;
}

export function createWorkerService(engine: EnginePort, identity: WorkerIdentity, log: Logger, modelName: string): WorkerServer {
  return {
    generate(call: ServerWritableStream<import("@expertmesh/proto/worker").GenerateRequest, GenerateResponse>) {
      // The gRPC deadline, when the client set one, bounds the request like deadline_unix_ms does.
      const grpcDeadline = call.getDeadline();
      const grpcMs = grpcDeadline instanceof Date ? grpcDeadline.getTime() : Number.isFinite(grpcDeadline) ? Number(grpcDeadline) : 0;
      const request =
        grpcMs > 0 && (call.request.deadlineUnixMs === 0 || grpcMs < call.request.deadlineUnixMs)
          ? { ...call.request, deadlineUnixMs: grpcMs }
          : call.request;
      const reqLog = log.child({ reqId: request.requestId });
      const controller = new AbortController();
      call.on("cancelled", () => controller.abort());
      const span = startGenerateSpan(call.metadata, request, modelName, identity.rank);
      void (async () => {
        let finished: Finished | undefined;
        try {
          if (!request.requestId) throw workerErrors.create("invalid_argument", { field: "request_id", problem: "must not be empty" });
          for await (const event of engine.generate(request, controller.signal, span.spanContext())) {
            if (controller.signal.aborted) break;
            if (event.kind === "finished") finished = event.finished;
            call.write(
              event.kind === "tokens"
                ? GenerateResponse.fromPartial({ tokens: event.tokens })
                : GenerateResponse.fromPartial({ finished: event.finished }),
            );
          }
          call.end();
          endGenerateSpan(span, finished?.usage, controller.signal.aborted ? FinishReason.FINISH_REASON_ABORTED : finished?.reason);
        } catch (err) {
          reqLog.debug({ err }, "generate failed");
          endGenerateSpan(span, undefined, undefined, err instanceof Error ? err : new Error(String(err)));
          if (!controller.signal.aborted) call.emit("error", toGrpcError(err));
        }
      })();
    },

    abort(call, callback) {
      callback(null, { found: engine.abort(call.request.requestId) });
    },

    info(_call, callback) {
      callback(null, { ...engine.info(), ...identity });
    },
  };
}
