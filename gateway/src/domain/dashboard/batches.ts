/**
 * The batch queue as the dashboard shows it: the caller's recent batches (the tenant's, as GET /v1/batches
 * lists them: a dashboard never shows another tenant's batches) with their progress and lines per second
 * (lines done over the time the batch has been running, or ran).
 */
import type { BatchObject } from "@expertmesh/orchestrator/batches";
import type { BatchView } from "@expertmesh/ui/dashboard-state";

export function batchView(b: BatchObject, nowMs: number): BatchView {
  const { total, completed, failed } = b.request_counts;
  const end = b.finalizing_at ?? b.completed_at ?? b.failed_at ?? b.cancelled_at ?? b.expired_at ?? nowMs / 1000;
  const seconds = b.in_progress_at === null ? 0 : end - b.in_progress_at;
  return {
    id: b.id,
    status: b.status,
    total,
    completed,
    failed,
    createdAt: b.created_at,
    linesPerS: seconds > 0 ? (completed + failed) / seconds : null,
  };
}
