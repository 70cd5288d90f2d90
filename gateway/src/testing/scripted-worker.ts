/**
 * A scripted token source: a real gRPC server speaking expertmesh.worker.v1.Worker that streams given
 * token ids instead of running a model (a test double for the layer above the worker: the gateway's
 * Harmony handling is tested against exact model outputs). Each generation (a Generate, or a start on a
 * GenerateStream) takes the next script.
 * It also serves grpc.health.v1 ("" and the Worker service) with a status the test flips, can fail
 * Generate on cue (a typed refusal before the first token, or a crash mid-stream), and can be killed
 * (every connection dropped at once, as when the process dies). It can mark tokens `forced` and report
 * `reasoning_truncated`, as a worker enforcing a reasoning budget does. It never runs a model.
 */
import {
  type HealthCheckRequest,
  type HealthCheckResponse,
  HealthCheckResponse_ServingStatus,
  type HealthServer,
  HealthService,
} from "@expertmesh/proto/health";
import {
  ErrorDetail,
  type ErrorKind,
  FinishReason,
  type GenerateRequest,
  GenerateResponse,
  type GenerateStreamRequest,
  type GenerateStreamResponse,
  type GenerationEvent,
  InfoResponse,
  type WorkerServer,
  WorkerService,
} from "@expertmesh/proto/worker";
import { Metadata, Server, ServerCredentials, type ServerDuplexStream, type ServerWritableStream, status } from "@grpc/grpc-js";
import { WORKER_HEALTH_SERVICE } from "../adapters/worker-health.ts";

export type HealthStatus = "SERVING" | "NOT_SERVING";

export interface ScriptedWorker {
  address: string;
  requests: GenerateRequest[];
  /** The traceparent metadata of each Generate ("" when none came). */
  traceparents: string[];
  /** The request ids of the generations the client cancelled (or dropped with their stream). */
  cancelled: string[];
  /** How many GenerateStream calls were opened on it so far. */
  streamsOpened(): number;
  /** How many grpc.health.v1 Watch streams are open on it now. */
  watches(): number;
  /** Sets the grpc.health.v1 status of "" and the Worker service; open Watch streams see it at once. */
  setHealth(s: HealthStatus): void;
  /** Drops every connection and stream at once (forceShutdown): a worker that crashed. */
  kill(): void;
  close(): Promise<void>;
}

export interface ScriptedFailure {
  /** Tokens written before failing (0: the worker refuses the request outright). */
  afterTokens: number;
  /** gRPC status (default UNAVAILABLE). */
  code?: status;
  /** Typed ErrorDetail kind sent in metadata (default: none, like a dropped connection). */
  kind?: ErrorKind;
  retryAfterMs?: number;
}

export interface ScriptOptions {
  /** Delay between tokens (a worker decoding at a fixed rate); 0 writes them at once. */
  tokenIntervalMs?: number;
  /**
   * Step every generation on one shared clock, as a batching engine does (one token for every running
   * sequence per step, a new one joining at the next step), instead of each on its own timer.
   */
  lockstep?: boolean;
  /** Played when the scripts run out (default: nothing). */
  fallback?: number[];
  /** Fail every Generate as described instead of finishing it. */
  fail?: ScriptedFailure;
  /** Serve grpc.health.v1 (default true; SERVING until setHealth). */
  health?: boolean;
  /** Listen on this loopback port (default: any free one), e.g. to restart a killed worker in place. */
  port?: number;
  /** Positions (0-based, in every script) whose tokens are sent `forced`, as tokens the worker appended. */
  forcedPositions?: readonly number[];
  /** Every generation finishes with `reasoning_truncated` (as one whose reasoning budget cut the analysis). */
  reasoningTruncated?: boolean;
}

const servingStatus: Record<HealthStatus, HealthCheckResponse_ServingStatus> = {
  SERVING: HealthCheckResponse_ServingStatus.SERVING,
  NOT_SERVING: HealthCheckResponse_ServingStatus.NOT_SERVING,
};

/** A scripted failure's status code, message and typed detail (none: like a dropped connection). */
function failureOf(f: ScriptedFailure): { code: status; message: string; detail?: ErrorDetail } {
  const message = `scripted failure after ${f.afterTokens} tokens`;
  const detail = f.kind === undefined ? undefined : { kind: f.kind, message, retryAfterMs: f.retryAfterMs ?? 0 };
  return { code: f.code ?? status.UNAVAILABLE, message, detail };
}

/** A scripted failure as Generate ends with it: a status, the detail in "expertmesh-error-bin". */
function failureStatus(f: ScriptedFailure) {
  const { code, message, detail } = failureOf(f);
  const metadata = new Metadata();
  if (detail) metadata.set("expertmesh-error-bin", Buffer.from(ErrorDetail.encode(detail).finish()));
  return { code, details: message, metadata };
}

/** Where one scripted generation goes: a Generate call, or one handle of a GenerateStream. */
interface Playback {
  write(event: GenerateResponse): void;
  cancelled(): boolean;
  fail(f: ScriptedFailure): void;
  end(): void;
}

export async function startScriptedWorker(scripts: number[][], options: ScriptOptions = {}): Promise<ScriptedWorker> {
  const requests: GenerateRequest[] = [];
  const traceparents: string[] = [];
  const cancelled: string[] = [];
  const interval = options.tokenIntervalMs ?? 0;
  const forced = new Set(options.forcedPositions ?? []);
  // lockstep: one timer for all; each waiting generation resumes at the next step.
  let stepWaiters: Array<() => void> = [];
  let stepTimer: NodeJS.Timeout | null = null;
  const nextStep = () =>
    new Promise<void>((resolve) => {
      stepWaiters.push(resolve);
      stepTimer ??= setInterval(() => {
        const due = stepWaiters;
        stepWaiters = [];
        for (const r of due) r();
        // Nobody was waiting for this step: the clock stops until the next generation.
        if (due.length === 0 && stepTimer) {
          clearInterval(stepTimer);
          stepTimer = null;
        }
      }, interval);
    });
  const pause = () => (options.lockstep ? nextStep() : new Promise((r) => setTimeout(r, interval)));
  let streamsOpened = 0;
  const play = async (request: GenerateRequest, traceparent: string, out: Playback) => {
    requests.push(request);
    traceparents.push(traceparent);
    const tokens = scripts.shift() ?? options.fallback ?? [];
    const stops = new Set(request.stopTokenIds);
    const fail = options.fail;
    let n = 0;
    for (const t of tokens) {
      if (n >= request.maxTokens || out.cancelled() || (fail && n >= fail.afterTokens)) break;
      if (interval > 0) await pause();
      if (out.cancelled()) break;
      out.write(GenerateResponse.fromPartial({ tokens: { tokens: [{ tokenId: t, logprob: 0, topLogprobs: [], forced: forced.has(n) }] } }));
      n++;
      if (stops.has(t)) break;
    }
    if (out.cancelled()) return;
    if (fail) {
      out.fail(fail);
      return;
    }
    const stopped = n > 0 && stops.has(tokens[n - 1] as number);
    out.write(
      GenerateResponse.fromPartial({
        finished: {
          reason: stopped ? FinishReason.FINISH_REASON_STOP : FinishReason.FINISH_REASON_LENGTH,
          usage: { promptTokens: request.promptTokenIds.length, completionTokens: n, cachedPromptTokens: 0 },
          reasoningTruncated: options.reasoningTruncated ?? false,
        },
      }),
    );
    out.end();
  };
  const impl: WorkerServer = {
    async generate(call: ServerWritableStream<GenerateRequest, GenerateResponse>) {
      call.on("cancelled", () => cancelled.push(call.request.requestId));
      await play(call.request, String(call.metadata.get("traceparent")[0] ?? ""), {
        write: (e) => call.write(e),
        cancelled: () => call.cancelled,
        fail: (f) => call.emit("error", failureStatus(f)),
        end: () => call.end(),
      });
    },
    // As the worker does: an event-loop turn's events leave as one message; a cancel stops that handle only.
    generateStream(call: ServerDuplexStream<GenerateStreamRequest, GenerateStreamResponse>) {
      streamsOpened++;
      const open = new Map<number, GenerateRequest>();
      let outbox: GenerationEvent[] = [];
      let halfClosed = false;
      let gone = false;
      const maybeEnd = () => {
        if (halfClosed && open.size === 0 && outbox.length === 0 && !gone) call.end();
      };
      const send = (e: GenerationEvent) => {
        if (outbox.push(e) > 1) return;
        setImmediate(() => {
          const events = outbox;
          outbox = [];
          if (!gone) call.write({ events });
          maybeEnd();
        });
      };
      call.on("data", (m: GenerateStreamRequest) => {
        if (m.cancel) {
          const r = open.get(m.cancel.handle);
          if (r) cancelled.push(r.requestId);
          open.delete(m.cancel.handle);
          maybeEnd();
        }
        if (!m.start?.request) return;
        const { handle, request } = m.start;
        open.set(handle, request);
        const live = () => !gone && open.get(handle) === request;
        void play(request, m.start.traceContext.traceparent ?? "", {
          write: (e) => send({ handle, ...e }),
          cancelled: () => !live(),
          fail: (f) => {
            open.delete(handle);
            const { code, detail } = failureOf(f);
            send({ handle, error: { code, detail } });
          },
          end: () => {
            open.delete(handle);
            maybeEnd();
          },
        });
      });
      call.on("end", () => {
        halfClosed = true;
        maybeEnd();
      });
      const abandon = () => {
        if (gone) return;
        gone = true;
        for (const r of open.values()) cancelled.push(r.requestId);
        open.clear();
      };
      call.on("cancelled", abandon);
      call.on("error", abandon);
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

  let health: HealthStatus = "SERVING";
  const watchers = new Set<ServerWritableStream<HealthCheckRequest, HealthCheckResponse>>();
  const statusOf = (service: string) =>
    service === "" || service === WORKER_HEALTH_SERVICE ? servingStatus[health] : HealthCheckResponse_ServingStatus.SERVICE_UNKNOWN;
  if (options.health ?? true) {
    const healthImpl: HealthServer = {
      check(call, cb) {
        cb(null, { status: statusOf(call.request.service) });
      },
      watch(call: ServerWritableStream<HealthCheckRequest, HealthCheckResponse>) {
        watchers.add(call);
        call.on("cancelled", () => watchers.delete(call));
        call.write({ status: statusOf(call.request.service) });
      },
    };
    server.addService(HealthService, healthImpl);
  }

  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${options.port ?? 0}`, ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  const endWatches = () => {
    for (const w of watchers) w.end();
    watchers.clear();
  };
  return {
    address: `127.0.0.1:${port}`,
    requests,
    traceparents,
    cancelled,
    streamsOpened: () => streamsOpened,
    watches: () => watchers.size,
    setHealth(s) {
      health = s;
      for (const w of watchers) w.write({ status: statusOf(w.request.service) });
    },
    kill() {
      watchers.clear();
      server.forceShutdown();
    },
    close: () =>
      new Promise((resolve) => {
        // Watch streams never end on their own: end them so that a graceful shutdown can finish.
        endWatches();
        server.tryShutdown(() => resolve());
      }),
  };
}
