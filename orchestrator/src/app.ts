/**
 * Wires the orchestrator: Redis → membership store → gRPC Membership + health, and the prune timer.
 * Expert-parallel group formation, BullMQ batch jobs and autoscaling signals attach here later.
 */
import type { Logger } from "@expertmesh/common";
import { MembershipService } from "@expertmesh/proto/cluster";
import { Server, ServerCredentials } from "@grpc/grpc-js";
import { HealthImplementation } from "grpc-health-check";
import { Redis } from "ioredis";
import { RedisMembershipStore } from "./adapters/redis-membership-store.ts";
import type { OrchestratorConfig } from "./config.ts";
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

  const server = new Server();
  server.addService(MembershipService, createMembershipService(store, config.membership.lease_ttl_ms, log));
  const health = new HealthImplementation({ "": "SERVING", "expertmesh.cluster.v1.Membership": "SERVING" });
  health.addToServer(server);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${config.grpc.host}:${config.grpc.port}`, ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  const address = `${config.grpc.host}:${port}`;

  const pruner = setInterval(() => {
    store.prune().then(
      (gone) => gone.length > 0 && log.warn({ workers: gone }, "leases expired; workers removed from the roster"),
      (err: Error) => log.warn({ err: err.message }, "prune failed"),
    );
  }, config.membership.prune_interval_ms);
  pruner.unref();
  log.info({ address, redis: config.redis.url }, "orchestrator listening");

  return {
    address,
    async close() {
      clearInterval(pruner);
      health.setStatus("", "NOT_SERVING");
      await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
      await redis.quit();
    },
  };
}
