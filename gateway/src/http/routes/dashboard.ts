/**
 * GET /dashboard/api/state: what the dashboard page shows, behind the API's auth (the page sends the key
 * it asked for as a Bearer token; EventSource cannot send one, so the page polls). Engine groups from the
 * orchestrator's roster, the caller's batches, and the gateway's traffic read from its own /metrics
 * exposition (domain/dashboard/traffic.ts).
 */
import type { BatchService } from "@expertmesh/orchestrator/batches";
import type { DashboardState } from "@expertmesh/ui/dashboard-state";
import type { FastifyInstance } from "fastify";
import { batchView } from "../../domain/dashboard/batches.ts";
import { groupViews } from "../../domain/dashboard/groups.ts";
import { TrafficHistory } from "../../domain/dashboard/traffic.ts";
import type { WorkerDirectory } from "../../domain/worker-directory.ts";
import { tenantOf } from "../tenant.ts";

export interface DashboardOptions {
  directory: WorkerDirectory;
  /** The exposition GET /metrics answers. */
  metrics: () => Promise<string>;
  batches?: BatchService;
  sampleMs: number;
  historyMs: number;
}

/** The batches listed: the most recent ones. */
const BATCHES_SHOWN = 20;
/** Sampling stops this long after the last dashboard read. */
const IDLE_MS = 5 * 60_000;

export function registerDashboardApi(app: FastifyInstance, o: DashboardOptions): void {
  const traffic = new TrafficHistory({
    metrics: o.metrics,
    members: () => o.directory.members(),
    sampleMs: o.sampleMs,
    keepMs: o.historyMs,
    idleMs: IDLE_MS,
    onError: (err) => app.log.warn({ err }, "dashboard: reading the metrics failed"),
  });
  app.addHook("onClose", async () => traffic.close());

  app.get("/dashboard/api/state", async (request): Promise<DashboardState> => {
    await traffic.watch();
    const now = Date.now();
    const batches = o.batches ? (await o.batches.listBatches(tenantOf(request), { limit: BATCHES_SHOWN })).data : null;
    return {
      now,
      sampleMs: o.sampleMs,
      discoveryHealthy: o.directory.healthy(),
      groups: groupViews(o.directory.members(), (id) => traffic.tokensPerS(id)),
      batches: batches?.map((b) => batchView(b, now)) ?? null,
      traffic: traffic.points(),
    };
  });
}
