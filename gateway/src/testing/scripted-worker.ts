/**
 * A scripted token source: a real gRPC server speaking expertmesh.worker.v1.Worker that streams given
 * token ids instead of running a model (a test double for the layer above the worker: the gateway's
 * Harmony handling is tested against exact model outputs). Each Generate takes the next script.
 */
import {
  FinishReason,
  type GenerateRequest,
  GenerateResponse,
  InfoResponse,
  type WorkerServer,
  WorkerService,
} from "@expertmesh/proto/worker";
import { Server, ServerCredentials, type ServerWritableStream } from "@grpc/grpc-js";

export interface ScriptedWorker {
  address: string;
  requests: GenerateRequest[];
  /** The traceparent metadata of each Generate ("" when none came). */
  traceparents: string[];
  close(): Promise<void>;
}

export interface ScriptOptions {
  /** Delay between tokens (a worker decoding at a fixed rate); 0 writes them at once. */
  tokenIntervalMs?: number;
  /** Played when the scripts run out (default: nothing). */
  fallback?: number[];
}

export async function startScriptedWorker(scripts: number[][], options: ScriptOptions = {}): Promise<ScriptedWorker> {
  const requests: GenerateRequest[] = [];
  const traceparents: string[] = [];
  const interval = options.tokenIntervalMs ?? 0;
  const impl: WorkerServer = {
    async generate(call: ServerWritableStream<GenerateRequest, GenerateResponse>) {
      requests.push(call.request);
      traceparents.push(String(call.metadata.get("traceparent")[0] ?? ""));
      const tokens = scripts.shift() ?? options.fallback ?? [];
      const stops = new Set(call.request.stopTokenIds);
      let n = 0;
      for (const t of tokens) {
        if (n >= call.request.maxTokens || call.cancelled) break;
        if (interval > 0) await new Promise((r) => setTimeout(r, interval));
        if (call.cancelled) break;
        call.write(GenerateResponse.fromPartial({ tokens: { tokens: [{ tokenId: t, logprob: 0, topLogprobs: [] }] } }));
        n++;
        if (stops.has(t)) break;
      }
      if (call.cancelled) return;
      const stopped = n > 0 && stops.has(tokens[n - 1] as number);
      call.write(
        GenerateResponse.fromPartial({
          finished: {
            reason: stopped ? FinishReason.FINISH_REASON_STOP : FinishReason.FINISH_REASON_LENGTH,
            usage: { promptTokens: call.request.promptTokenIds.length, completionTokens: n, cachedPromptTokens: 0 },
          },
        }),
      );
      call.end();
    },
    abort(_call, cb) {
      cb(null, { found: false });
    },
    info(_call, cb) {
      cb(null, InfoResponse.fromPartial({ workerId: "scripted", backend: "scripted" }));
    },
  };
  const server = new Server();
  server.addService(WorkerService, impl);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return {
    address: `127.0.0.1:${port}`,
    requests,
    traceparents,
    close: () => new Promise((resolve) => server.tryShutdown(() => resolve())),
  };
}
