/** Orchestrator configuration, validated once at startup (ORCHESTRATOR_CONFIG_FILE, then env). */
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "@expertmesh/common/config"; // not the index: a CLI reading config loads no telemetry
import { z } from "zod";

const positive = z.coerce.number().int().positive();

export const OrchestratorConfigSchema = z.object({
  instance_id: z.string().min(1).default(`${hostname()}-${process.pid}`),
  log_level: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  redis: z
    .object({
      url: z.string().url().default("redis://127.0.0.1:6379"),
      key_prefix: z.string().min(1).default("em:"),
    })
    .prefault({}),
  grpc: z
    .object({ host: z.string().min(1).default("127.0.0.1"), port: z.coerce.number().int().min(0).max(65535).default(50050) })
    .prefault({}),
  membership: z
    .object({
      /** A worker that misses heartbeats for this long leaves the roster. */
      lease_ttl_ms: positive.default(6_000),
      prune_interval_ms: positive.default(2_000),
    })
    .prefault({}),
  groups: z
    .object({
      /** Ranks per expert-parallel group for workers that ask to be placed (wants_group). */
      world_size: positive.default(1),
      /** Per-model overrides of world_size, e.g. {"gpt-oss-120b": 4}. */
      world_size_by_model: z.record(z.string(), positive).default({}),
      /** Redis the ranks rendezvous through (Gloo's RedisStore); defaults to redis.url. */
      rendezvous_redis_url: z.string().url().optional(),
    })
    .prefault({}),
  shutdown_grace_ms: positive.default(10_000),
  /** Batch runners (the durable Batch API's executors): hosted by this process when enabled. */
  batch: z
    .object({
      enabled: z.preprocess((v) => (v === "false" || v === "0" ? false : v === "true" || v === "1" ? true : v), z.boolean()).default(false),
      /** The gateway the runners send lines to (any replica; lines run there at batch priority). */
      gateway_url: z.string().url().default("http://127.0.0.1:8080"),
      /** Shared with the gateway (EXPERTMESH_FILES_DIR): batch input and output files. */
      files_dir: z.string().min(1).default(join(tmpdir(), "expertmesh-files")),
      /** Lines in flight per runner. */
      concurrency: positive.default(8),
      /** Tries per line for retryable failures (5xx, no answer); a 429/503 with retry-after waits without spending one, until the batch expires. */
      line_attempts: positive.default(5),
      line_timeout_ms: positive.default(600_000),
      /** A runner that dies mid-line has its line handed to another runner after about this long. */
      lock_duration_ms: positive.default(30_000),
      max_stalled_count: positive.default(5),
      sweep_interval_ms: positive.default(2_000),
      /** An in-progress batch without progress for this long is checked for lines a Redis crash lost. */
      repair_after_ms: positive.default(15_000),
      /** Prometheus /metrics: per-group load always; queue depth and batches when the runner is hosted; 0 = no listener. */
      metrics_port: z.coerce.number().int().min(0).max(65535).default(9092),
    })
    .prefault({}),
});

export type OrchestratorConfig = z.infer<typeof OrchestratorConfigSchema>;

export const orchestratorEnv = {
  instance_id: "ORCHESTRATOR_INSTANCE_ID",
  log_level: "LOG_LEVEL",
  "redis.url": "REDIS_URL",
  "redis.key_prefix": "ORCHESTRATOR_REDIS_KEY_PREFIX",
  "grpc.host": "ORCHESTRATOR_HOST",
  "grpc.port": "ORCHESTRATOR_PORT",
  "membership.lease_ttl_ms": "ORCHESTRATOR_LEASE_TTL_MS",
  "membership.prune_interval_ms": "ORCHESTRATOR_PRUNE_INTERVAL_MS",
  "groups.world_size": "ORCHESTRATOR_GROUP_WORLD_SIZE",
  "groups.rendezvous_redis_url": "ORCHESTRATOR_RENDEZVOUS_REDIS_URL",
  shutdown_grace_ms: "ORCHESTRATOR_SHUTDOWN_GRACE_MS",
  "batch.enabled": "ORCHESTRATOR_BATCH_RUNNER",
  "batch.gateway_url": "ORCHESTRATOR_BATCH_GATEWAY_URL",
  "batch.files_dir": "EXPERTMESH_FILES_DIR",
  "batch.concurrency": "ORCHESTRATOR_BATCH_CONCURRENCY",
  "batch.line_attempts": "ORCHESTRATOR_BATCH_LINE_ATTEMPTS",
  "batch.line_timeout_ms": "ORCHESTRATOR_BATCH_LINE_TIMEOUT_MS",
  "batch.lock_duration_ms": "ORCHESTRATOR_BATCH_LOCK_DURATION_MS",
  "batch.max_stalled_count": "ORCHESTRATOR_BATCH_MAX_STALLED_COUNT",
  "batch.sweep_interval_ms": "ORCHESTRATOR_BATCH_SWEEP_INTERVAL_MS",
  "batch.repair_after_ms": "ORCHESTRATOR_BATCH_REPAIR_AFTER_MS",
  "batch.metrics_port": "ORCHESTRATOR_METRICS_PORT",
} as const;

export function loadOrchestratorConfig(env: NodeJS.ProcessEnv = process.env): OrchestratorConfig {
  return loadConfig(
    { service: "orchestrator", schema: OrchestratorConfigSchema, fileEnv: "ORCHESTRATOR_CONFIG_FILE", env: orchestratorEnv },
    env,
  );
}
