/**
 * The gateway's Redis-backed ports, built on one fail-fast client and each behind the outage mapping
 * (redis-errors.ts). Per dependency: stored responses, background responses, files and batches answer 503 store_unavailable;
 * Redis API keys fail closed (503, never 401); rate limits fail open (logged), so chat keeps serving.
 */
import type { Logger } from "@expertmesh/common";
import { type BatchApi, createBatchService, LocalFileStorage } from "@expertmesh/orchestrator/batches";
import { Redis } from "ioredis";
import type { GatewayConfig } from "../config.ts";
import type { RateLimiter } from "../domain/rate-limiter.ts";
import type { BackgroundQueue } from "../domain/responses/background.ts";
import type { ResponseStore } from "../domain/responses/store.ts";
import { BullBackgroundQueue } from "./bullmq-background-queue.ts";
import { RedisApiKeys } from "./redis-api-keys.ts";
import { FailOpenRateLimiter, guardRedis, redisOptions } from "./redis-errors.ts";
import { RedisRateLimiter } from "./redis-rate-limiter.ts";
import { RedisResponseStore } from "./redis-response-store.ts";

export interface RedisPorts {
  redis: Redis;
  limiter: RateLimiter;
  responses: ResponseStore;
  /** Present with api_keys_store "redis". */
  keys?: RedisApiKeys;
  batches: BatchApi;
  /** Background responses on BullMQ; its worker starts when the Responses routes start it. */
  background: BackgroundQueue;
}

export function createRedisPorts(config: GatewayConfig, log: Logger): RedisPorts {
  const timeoutMs = config.redis_timeout_ms;
  const redis = new Redis(config.redis_url, redisOptions(timeoutMs));
  // Without a listener ioredis prints every failed reconnect; one line per outage is enough.
  let down = false;
  redis.on("error", (err) => {
    if (!down) log.warn({ err: err.message }, "redis unavailable");
    down = true;
  });
  redis.on("ready", () => {
    down = false;
  });
  const guard = <T extends object>(target: T, what: string, unbounded: string[] = []): T =>
    guardRedis(target, { what, timeoutMs, retryAfterMs: timeoutMs, unbounded });
  const limiter = new FailOpenRateLimiter(guard(new RedisRateLimiter(redis), "The rate limiter"), timeoutMs, (err) =>
    log.warn({ err: (err as Error).message }, "rate limits not applied: redis unavailable"),
  );
  const api = createBatchService({
    redis,
    redisUrl: config.redis_url,
    // BullMQ needs its offline queue (its connection setup and close go through it); the command timeout
    // fails a hung add on the queue's own connection too, instead of leaving it pending until Redis resumes.
    queueRedisOptions: { commandTimeout: timeoutMs },
    keyPrefix: config.batches.key_prefix,
    storage: new LocalFileStorage(config.batches.files_dir),
  });
  const batches: BatchApi = {
    service: guard(api.service, "The files and batches store", ["receiveFile", "createFile"]),
    batches: guard(api.batches, "The batch store"),
    close: () => api.close(),
  };
  return {
    redis,
    limiter,
    responses: guard(new RedisResponseStore(redis, config.response_retention_ms), "The response store"),
    ...(config.api_keys_store === "redis"
      ? { keys: guard(new RedisApiKeys(redis, { cacheMs: config.api_keys_cache_ms }), "The API key store") }
      : {}),
    batches,
    background: guard(
      new BullBackgroundQueue({
        redisUrl: config.redis_url,
        redis,
        keyPrefix: config.batches.key_prefix,
        concurrency: config.background.concurrency,
        lockDurationMs: config.background.lock_duration_ms,
        maxStalledCount: config.background.max_stalled_count,
        log,
        queueRedisOptions: { commandTimeout: timeoutMs },
      }),
      "The background response queue",
      ["close"],
    ),
  };
}
