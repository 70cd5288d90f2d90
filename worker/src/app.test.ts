import { createLogger } from "@expertmesh/common";
import { HealthCheckResponse_ServingStatus, HealthClient } from "@expertmesh/proto/health";
import {
  ErrorKind,
  GenerateRequest,
  type GenerateStreamResponse,
  type GenerationEvent,
  Priority,
  WorkerClient,
} from "@expertmesh/proto/worker";
import { credentials, Metadata, type ServiceError, status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningWorker, startWorker, WORKER_SERVICE_NAME } from "./app.ts";
import { loadWorkerConfig } from "./config.ts";
import { errorDetailOf } from "./transport/grpc-errors.ts";

let worker: RunningWorker;

beforeAll(async () => {
  const config = loadWorkerConfig({
    WORKER_PORT: "0",
    WORKER_METRICS_PORT: "0",
    WORKER_ID: "w-test",
    WORKER_KV_NUM_BLOCKS: "128",
    WORKER_DEVICE: "cuda-emu",
  });
  worker = await startWorker(config, createLogger("worker-test", "silent"));
});
afterAll(async () => {
  await worker.close();
});

describe("worker without a model, over real gRPC", () => {
  it("answers Info with its identity, capacity and device", async () => {
    const client = new WorkerClient(worker.address, credentials.createInsecure());
    const info = await new Promise((resolve, reject) => client.info({}, (err, res) => (err ? reject(err) : resolve(res))));
    expect(info).toMatchObject({ workerId: "w-test", rank: 0, worldSize: 1, capacity: { kvBlocksTotal: 128, kvBlocksFree: 128 } });
    expect(info).toMatchObject({ backend: "cuda-emu" }); // the configured device, before any engine exists
    client.close();
  });

  it("reports the process SERVING and the Worker service NOT_SERVING in grpc.health.v1", async () => {
    const health = new HealthClient(worker.address, credentials.createInsecure());
    const check = (service: string) =>
      new Promise<number>((resolve, reject) => health.check({ service }, (err, res) => (err ? reject(err) : resolve(res.status))));
    expect(await check("")).toBe(HealthCheckResponse_ServingStatus.SERVING);
    expect(await check(WORKER_SERVICE_NAME)).toBe(HealthCheckResponse_ServingStatus.NOT_SERVING);
    health.close();
  });

  it("rejects Generate with UNAVAILABLE and a typed NOT_READY detail carrying a retry hint", async () => {
    const client = new WorkerClient(worker.address, credentials.createInsecure());
    const err = await new Promise<ServiceError>((resolve) => {
      const stream = client.generate(
        {
          requestId: "r1",
          promptTokenIds: [1, 2],
          stopTokenIds: [],
          maxTokens: 4,
          priority: 1,
          deadlineUnixMs: 0,
          clampMaxTokens: false,
          maxReasoningTokens: 0,
        },
        new Metadata(),
      );
      stream.on("data", () => {});
      stream.on("error", resolve);
    });
    expect(err.code).toBe(status.UNAVAILABLE);
    expect(errorDetailOf(err)).toMatchObject({ kind: ErrorKind.ERROR_KIND_NOT_READY, retryAfterMs: 5000 });
    client.close();
  });

  it("fails a GenerateStream generation with UNAVAILABLE and a typed NOT_READY detail, the stream staying usable", async () => {
    const client = new WorkerClient(worker.address, credentials.createInsecure());
    const call = client.generateStream();
    const events: GenerationEvent[] = [];
    const ended = new Promise<number>((resolve) => call.on("status", (s) => resolve(s.code)));
    call.on("data", (m: GenerateStreamResponse) => events.push(...m.events));
    const request = GenerateRequest.fromPartial({
      requestId: "s1",
      promptTokenIds: [1, 2],
      maxTokens: 4,
      priority: Priority.PRIORITY_ONLINE,
    });
    call.write({ start: { handle: 7, request, traceContext: {} } });
    call.write({ start: { handle: 8, request: { ...request, requestId: "s2" }, traceContext: {} } });
    call.end();
    expect(await ended).toBe(status.OK);
    expect(events.map((e) => e.handle).sort()).toEqual([7, 8]);
    for (const e of events) {
      expect(e.error?.code).toBe(status.UNAVAILABLE);
      expect(e.error?.detail).toMatchObject({ kind: ErrorKind.ERROR_KIND_NOT_READY, retryAfterMs: 5000 });
    }
    client.close();
  });

  it("serves Prometheus metrics", async () => {
    const body = await (await fetch(`http://${worker.metricsAddress}/metrics`)).text();
    expect(body).toMatch(/expertmesh_worker_ready\{service="worker",rank="0"\} 0/);
  });

  it("refuses rank >= world_size at startup", () => {
    expect(() => loadWorkerConfig({ WORKER_RANK: "2", WORKER_WORLD_SIZE: "2" })).toThrow(/rank 2 must be < world_size 2/);
  });

  it("refuses a drain notice that the grace period would cut short", () => {
    expect(() => loadWorkerConfig({ WORKER_SHUTDOWN_NOTICE_MS: "5000", WORKER_SHUTDOWN_GRACE_MS: "5000" })).toThrow(
      /shutdown_notice_ms 5000 must be < shutdown_grace_ms 5000/,
    );
    expect(loadWorkerConfig({ WORKER_SHUTDOWN_NOTICE_MS: "4000", WORKER_SHUTDOWN_GRACE_MS: "5000" }).shutdown_notice_ms).toBe(4000);
  });
});
