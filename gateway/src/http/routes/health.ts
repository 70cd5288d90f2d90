/**
 * Liveness (/health: the process answers) and readiness (/ready: discovery works and a worker is ready;
 * with parking on, discovery alone: requests wait for a group there, see domain/parking.ts).
 */
import { MemberState } from "@expertmesh/proto/cluster";
import type { FastifyInstance } from "fastify";
import type { WorkerDirectory } from "../../domain/worker-directory.ts";

export interface HealthOptions {
  /** Generations wait for a group to come up (scale from zero): ready without a ready worker. */
  parking?: boolean;
}

export function registerHealthRoutes(app: FastifyInstance, directory: WorkerDirectory, options: HealthOptions = {}): void {
  app.get("/health", async () => ({ status: "ok" }));
  app.get("/ready", async (_request, reply) => {
    // Groups that take requests: a ready rank 0 (other ranks follow their leader).
    const ready = directory.members().filter((m) => m.state === MemberState.MEMBER_STATE_READY && m.rank === 0).length;
    const ok = directory.healthy() && (ready > 0 || options.parking === true);
    return reply.code(ok ? 200 : 503).send({
      status: ok ? "ready" : "not_ready",
      discovery: directory.healthy() ? "ok" : "failing",
      ready_workers: ready,
      workers: directory.members().length,
      ...(options.parking ? { parking: "on" } : {}),
    });
  });
}
