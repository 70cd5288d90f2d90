/** Starts a batch runner from the orchestrator's config (the orchestrator process and runner-main share it). */
import type { Logger, Registry } from "@expertmesh/common";
import type { OrchestratorConfig } from "../config.ts";
import { HttpLineExecutor } from "./line-executor.ts";
import { LocalFileStorage } from "./local-file-storage.ts";
import { type BatchRunner, startBatchRunner } from "./runner.ts";

export function startConfiguredRunner(config: OrchestratorConfig, log: Logger, registry?: Registry): Promise<BatchRunner> {
  const b = config.batch;
  return startBatchRunner({
    redisUrl: config.redis.url,
    keyPrefix: config.redis.key_prefix,
    storage: new LocalFileStorage(b.files_dir),
    executor: new HttpLineExecutor(b.gateway_url),
    log: log.child({ component: "batch-runner" }),
    concurrency: b.concurrency,
    lineAttempts: b.line_attempts,
    lineTimeoutMs: b.line_timeout_ms,
    lockDurationMs: b.lock_duration_ms,
    maxStalledCount: b.max_stalled_count,
    sweepIntervalMs: b.sweep_interval_ms,
    repairAfterMs: b.repair_after_ms,
    ...(registry ? { registry } : {}),
  });
}
