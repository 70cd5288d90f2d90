/**
 * gRPC handlers for expertmesh.worker.v1.Worker. Transport only: decode, hand to the EnginePort,
 * stream events back, map errors. A client cancel or expired deadline aborts the engine request.
 */
import type { Logger } from "@expertmesh/common";
import { GenerateResponse, type WorkerServer } from "@expertmesh/proto/worker";
import type { ServerWritableStream } from "@grpc/grpc-js";
import type { EnginePort } from "../engine/engine-port.ts";
import { workerErrors } from "../errors.ts";
import { toGrpcError } from "./grpc-errors.ts";

export interface WorkerIdentity {
  workerId: string;
  rank: number;
  worldSize: number;
}

export function createWorkerService(engine: EnginePort, identity: WorkerIdentity, log: Logger): WorkerServer {
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
      void (async () => {
        try {
          if (!request.requestId) throw workerErrors.create("invalid_argument", { field: "request_id", problem: "must not be empty" });
          for await (const event of engine.generate(request, controller.signal)) {
            if (controller.signal.aborted) break;
            call.write(
              event.kind === "tokens"
                ? GenerateResponse.fromPartial({ tokens: event.tokens })
                : GenerateResponse.fromPartial({ finished: event.finished }),
            );
          }
          call.end();
        } catch (err) {
          reqLog.debug({ err }, "generate failed");
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
