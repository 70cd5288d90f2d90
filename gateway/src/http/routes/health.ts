/**
 * Liveness (/health: the process answers) and readiness (/ready: this gateway can serve now).
 *
 * Ready means: a roster was obtained at least once, and from the last known roster some model has a ready
 * rank 0 the router may choose (its health watch does not say otherwise) — or, with parking on, requests
 * wait for a group to come up (scale from zero, domain/parking.ts). Degraded discovery (the orchestrator
 * unreachable) and a Redis outage do not make a gateway unready: the last roster keeps routing, so pulling
 * every replica out of the Service at once would turn a partial outage into a full one. Discovery shows in
 * the body and in expertmesh_gateway_discovery_healthy / expertmesh_gateway_roster_age_seconds.
 */
import { Gauge, type Registry } from "@expertmesh/common";
import { MemberState } from "@expertmesh/proto/cluster";
import type { FastifyInstance } from "fastify";
import type { GenerationBackend } from "../../domain/generation-backend.ts";
import type { WorkerDirectory } from "../../domain/worker-directory.ts";

export interface HealthOptions {
  /** Generations wait for a group to come up (scale from zero): ready without a ready worker. */
  parking?: boolean;
  /** The router: which models it can reach now (ready and routable workers of the last roster). */
  backend?: Pick<GenerationBackend, "models">;
  registry?: Registry;
}

export function registerHealthRoutes(app: FastifyInstance, directory: WorkerDirectory, options: HealthOptions = {}): void {
  if (options.registry) registerDiscoveryMetrics(options.registry, directory);
  app.get("/health", async () => ({ status: "ok" }));
  app.get("/ready", async (_request, reply) => {
    // Groups that take requests: a ready rank 0 (other ranks follow their leader).
    const ready = directory.members().filter((m) => m.state === MemberState.MEMBER_STATE_READY && m.rank === 0);
    const models = options.backend ? options.backend.models() : [...new Set(ready.map((m) => m.model))].sort();
    const age = directory.rosterAgeMs();
    const ok = age !== undefined && (models.length > 0 || options.parking === true);
    return reply.code(ok ? 200 : 503).send({
      status: ok ? "ready" : "not_ready",
      discovery: directory.healthy() ? "ok" : "failing",
      roster_age_ms: age ?? null,
      ready_workers: ready.length,
      workers: directory.members().length,
      models,
      ...(options.parking ? { parking: "on" } : {}),
    });
  });
}

function registerDiscoveryMetrics(registry: Registry, directory: WorkerDirectory): void {
  new Gauge({
    name: "expertmesh_gateway_discovery_healthy",
    help: "1 when the last worker discovery refresh succeeded, 0 while the gateway routes on its last known roster",
    registers: [registry],
    collect() {
      this.set(directory.healthy() ? 1 : 0);
    },
  });
  new Gauge({
    name: "expertmesh_gateway_roster_age_seconds",
    help: "Seconds since the worker roster was last refreshed (-1 before the first refresh)",
    registers: [registry],
    collect() {
      const age = directory.rosterAgeMs();
      this.set(age === undefined ? -1 : age / 1000);
    },
  });
}
