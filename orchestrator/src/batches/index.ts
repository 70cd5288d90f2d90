/**
 * @expertmesh/orchestrator/batches — the durable Batch API's state and execution, shared by the gateway
 * (HTTP routes: BatchService, createBatchService) and the orchestrator's batch runners (startBatchRunner).
 */
import { Queue, type RedisOptions } from "bullmq";
import { BullMQOtel } from "bullmq-otel";
import type { Redis } from "ioredis";
import { BatchService } from "./batch-service.ts";
import { RedisBatchStore } from "./batch-store.ts";
import type { FileStorage } from "./file-storage.ts";
import { RedisFileStore } from "./file-store.ts";
import { bullPrefix, CONTROL_QUEUE } from "./jobs.ts";

export { batchErrors } from "./batch-errors.ts";
export { BatchService, type CreateBatchInput, checkFilename, checkPurpose, type Upload } from "./batch-service.ts";
export { RedisBatchStore, type StoredBatch } from "./batch-store.ts";
export { type FileSource, type FileStorage, MemoryFileStorage } from "./file-storage.ts";
export { type ListOptions, RedisFileStore } from "./file-store.ts";
export { bullPrefix } from "./jobs.ts";
export { HttpLineExecutor, type LineExecutor } from "./line-executor.ts";
export { LocalFileStorage } from "./local-file-storage.ts";
export { type BatchRunner, type BatchRunnerOptions, startBatchRunner } from "./runner.ts";
export * from "./types.ts";

export interface BatchServiceOptions {
  /** A connection for the stores (shared with the caller's other Redis users). */
  redis: Redis;
  /** BullMQ opens its own connections. */
  redisUrl: string;
  /** Options for the control queue's connection: the gateway passes its fail-fast ones (no offline queue). */
  queueRedisOptions?: RedisOptions;
  keyPrefix?: string;
  storage: FileStorage;
}

export interface BatchApi {
  service: BatchService;
  batches: RedisBatchStore;
  close(): Promise<void>;
}

/** The gateway's side: stores plus the control queue, with trace context carried into the jobs. */
export function createBatchService(o: BatchServiceOptions): BatchApi {
  const keyPrefix = o.keyPrefix ?? "em:";
  const control = new Queue(CONTROL_QUEUE, {
    connection: { url: o.redisUrl, maxRetriesPerRequest: 2, ...o.queueRedisOptions },
    prefix: bullPrefix(keyPrefix),
    telemetry: new BullMQOtel({ tracerName: "expertmesh-batches" }),
  });
  const batches = new RedisBatchStore(o.redis, keyPrefix);
  const service = new BatchService({
    files: new RedisFileStore(o.redis, keyPrefix),
    batches,
    storage: o.storage,
    control,
    redis: o.redis,
    keyPrefix,
  });
  return { service, batches, close: () => control.close() };
}
