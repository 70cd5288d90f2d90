/** Liveness (/health: the process answers) and readiness (/ready: discovery works and a worker is ready). */
import { MemberState } from "@expertmesh/proto/cluster";
import type { FastifyInstance } from "fastify";
import type { WorkerDirectory } from "../../domain/worker-directory.ts";

export function registerHealthRoutes(app: FastifyInstance, directory: WorkerDirectory): void {
  app.get("/health", async () => ({ status: "ok" }));
  app.get("/ready", async (_request, reply) => {
    // Groups that take requests: a ready rank 0 (other ranks follow their leader).
    const ready = directory.members().filter((m) => m.state === MemberState.MEMBER_STATE_READY && m.rank === 0).length;
    const ok = directory.healthy() && ready > 0;
    return reply.code(ok ? 200 : 503).send({
      status: ok ? "ready" : "not_ready",
      discovery: directory.healthy() ? "ok" : "failing",
      ready_workers: ready,
      workers: directory.members().length,
    });
  });
}
