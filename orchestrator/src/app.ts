/**
 * Wires the orchestrator: Redis → membership and group stores → gRPC Membership + health, and the
 * timer that prunes expired leases and (re-)forms expert-parallel groups; with batch.enabled, a batch
 * runner (BullMQ) and the Prometheus listener for the autoscaling signals (batches/batch-metrics.ts).
 */
import { createMetricsRegistry, type Logger, startMetricsServer } from "@expertmesh/common";
import { MembershipService } from "@expertmesh/proto/cluster";
import { Server, ServerCredentials } from "@grpc/grpc-js";
import { HealthImplementation } from "grpc-health-check";
import { Redis } from "ioredis";
import { RedisGroupStore } from "./adapters/redis-group-store.ts";
import { RedisMembershipStore } from "./adapters/redis-membership-store.ts";
import { startConfiguredRunner } from "./batches/runner-from-config.ts";
import type { OrchestratorConfig } from "./config.ts";
import { GroupFormer } from "./groups/group-former.ts";
import { registerGroupMetrics } from "./groups/group-metrics.ts";
import { createMembershipService } from "./transport/membership-service.ts";

export interface RunningOrchestrator {
  address: string;
  close(): Promise<void>;
}

export async function startOrchestrator(config: OrchestratorConfig, log: Logger): Promise<RunningOrchestrator> {
  const redis = new Redis(config.redis.url, { maxRetriesPerRequest: 2, lazyConnect: true });
  redis.on("error", (err) => log.warn({ err: err.message }, "redis connection error"));
  await redis.connect();
  const store = new RedisMembershipStore(redis, config.redis.key_prefix);
  const groups = new RedisGroupStore(redis, config.redis.key_prefix);
  const rendezvousBase = config.groups.rendezvous_redis_url ?? config.redis.url;
  const former = new GroupFormer(
    store,
    groups,
    {
      worldSize: (model) => config.groups.world_size_by_model[model] ?? config.groups.world_size,
      rendezvous: (groupId) => {
        const url = new URL(rendezvousBase);
        url.searchParams.set("prefix", `${config.redis.key_prefix}rdzv:${groupId}:`);
        return url.toString();
      },
    },
    config.instance_id,
    config.membership.prune_interval_ms * 3,
    log,
  );

  const server = new Server();
  server.addService(MembershipService, createMembershipService(store, groups, config.membership.lease_ttl_ms, log));
  const health = new HealthImplementation({ "": "SERVING", "expertmesh.cluster.v1.Membership": "SERVING" });
  health.addToServer(server);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${config.grpc.host}:${config.grpc.port}`, ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  const address = `${config.grpc.host}:${port}`;

  const pruner = setInterval(() => {
    store
      .prune()
      .then((gone) => {
        if (gone.length > 0) log.warn({ workers: gone }, "leases expired; workers removed from the roster");
        return former.tick();
      })
      .catch((err: Error) => log.warn({ err: err.message }, "prune / group formation failed"));
  }, config.membership.prune_interval_ms);
  pruner.unref();
  const registry = createMetricsRegistry("orchestrator");
  registerGroupMetrics(registry, store, groups);
  const runner = config.batch.enabled ? await startConfiguredRunner(config, log, registry) : undefined;
  // The autoscaling signals (per-group load; batch queues when the runner is hosted here).
  const metrics =
    config.batch.metrics_port > 0 ? await startMetricsServer(registry, config.grpc.host, config.batch.metrics_port) : undefined;
  log.info({ address, redis: config.redis.url, batchRunner: Boolean(runner) }, "orchestrator listening");

  return {
    address,
    async close() {
      clearInterval(pruner);
      metrics?.close();
      await runner?.close();
      health.setStatus("", "NOT_SERVING");
      await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
      await redis.quit();
    },
  };
}
