/**
 * The batch side of the autoscaling signals, read from Redis at scrape time (so every runner reports
 * the same cluster-wide figures): queue depth by priority and state, waiting batch requests, batches by
 * status. Online waiting requests are the workers' own num_requests_waiting (vLLM name) and the
 * gateways' expertmesh_gateway_generations_queued; a scaler combines them with these.
 */
import { Counter, Gauge, type Registry } from "@expertmesh/common";
import type { Queue } from "bullmq";
import type { RedisBatchStore } from "./batch-store.ts";

const STATES = ["waiting", "active", "delayed", "prioritized", "failed"] as const;

export interface BatchMetricSources {
  lines: Queue;
  control: Queue;
  batches: RedisBatchStore;
}

export interface BatchMetrics {
  /** Counts a line result written by this runner. */
  result(kind: "completed" | "failed"): void;
  /** Counts a line put back because the gateway had no capacity for it yet (429/503 with retry-after). */
  deferred(): void;
}

export function registerBatchMetrics(registry: Registry, s: BatchMetricSources): BatchMetrics {
  new Gauge({
    name: "expertmesh_queue_depth",
    help: "Jobs in the batch queues by priority (batch: request lines; control: expand/finalize) and state",
    labelNames: ["priority", "state"] as const,
    registers: [registry],
    async collect() {
      for (const [priority, q] of [
        ["batch", s.lines],
        ["control", s.control],
      ] as const) {
        const counts = await q.getJobCounts(...STATES);
        for (const state of STATES) this.set({ priority, state }, counts[state] ?? 0);
      }
    },
  });
  new Gauge({
    name: "expertmesh_batch_requests_waiting",
    help: "Batch request lines waiting to run (waiting + delayed + prioritized): the backlog a scaler sizes for",
    registers: [registry],
    async collect() {
      const c = await s.lines.getJobCounts("waiting", "delayed", "prioritized");
      this.set((c.waiting ?? 0) + (c.delayed ?? 0) + (c.prioritized ?? 0));
    },
  });
  new Gauge({
    name: "expertmesh_batches",
    help: "Batches not yet finished, by status",
    labelNames: ["status"] as const,
    registers: [registry],
    async collect() {
      this.reset();
      for (const id of await s.batches.active()) {
        const status = await s.batches.status(id);
        if (status) this.inc({ status });
      }
    },
  });
  const results = new Counter({
    name: "expertmesh_batch_requests_total",
    help: "Batch request lines finished by this runner, by result",
    labelNames: ["result"] as const,
    registers: [registry],
  });
  const deferrals = new Counter({
    name: "expertmesh_batch_line_deferrals_total",
    help: "Batch request lines this runner put back to wait because the gateway had no capacity for them yet",
    registers: [registry],
  });
  return { result: (kind) => results.inc({ result: kind }), deferred: () => deferrals.inc() };
}
