/** Orchestrator configuration, validated once at startup (ORCHESTRATOR_CONFIG_FILE, then env). */
import { hostname } from "node:os";
import { loadConfig } from "@expertmesh/common";
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
} as const;

export function loadOrchestratorConfig(env: NodeJS.ProcessEnv = process.env): OrchestratorConfig {
  return loadConfig(
    { service: "orchestrator", schema: OrchestratorConfigSchema, fileEnv: "ORCHESTRATOR_CONFIG_FILE", env: orchestratorEnv },
    env,
  );
}
