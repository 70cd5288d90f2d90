/**
 * The batch job catalog: queue names, job names → zod schemas, and the options each kind runs with.
 * Two queues so that control work (expanding a batch into lines, finalizing it) never waits behind
 * thousands of lines. Job ids make every add idempotent: a line's id is its batch id plus a digest of
 * its custom_id, so re-adding a line (a retried expansion, a repair after a Redis crash) never
 * duplicates it while the job exists; the result hash dedups the rest (batch-store.ts).
 */
import { createHash } from "node:crypto";
import type { JobsOptions } from "bullmq";
import { z } from "zod";
import { BATCH_ENDPOINTS } from "./types.ts";

export const CONTROL_QUEUE = "batch-control";
export const LINES_QUEUE = "batch-lines";

export const ExpandJob = z.object({ batchId: z.string() });
export const FinalizeJob = z.object({ batchId: z.string() });
export const LineJob = z.object({
  batchId: z.string(),
  /** 0-based position in the input file (output files keep input order). */
  index: z.number().int().min(0),
  custom_id: z.string(),
  url: z.enum(BATCH_ENDPOINTS),
  body: z.record(z.string(), z.unknown()),
  /** Times the gateway has put this line off for want of capacity (runner.ts: deferLine). */
  deferrals: z.number().int().min(0).optional(),
});
export type ExpandJob = z.infer<typeof ExpandJob>;
export type FinalizeJob = z.infer<typeof FinalizeJob>;
export type LineJob = z.infer<typeof LineJob>;

export const catalog = {
  expand: { queue: CONTROL_QUEUE, schema: ExpandJob },
  finalize: { queue: CONTROL_QUEUE, schema: FinalizeJob },
  line: { queue: LINES_QUEUE, schema: LineJob },
} as const;
export type JobName = keyof typeof catalog;

/** BullMQ's key prefix for a deployment's Redis key prefix ("em:" → "em:bull"). */
export function bullPrefix(keyPrefix: string): string {
  return `${keyPrefix.replace(/:$/, "")}:bull`;
}

const DAY_S = 24 * 3600;

/** Completed and failed jobs are kept a day: their ids keep re-adds idempotent while a batch can run. */
const keep = { removeOnComplete: { age: DAY_S }, removeOnFail: { age: DAY_S } } as const;

export function expandJobOptions(batchId: string): JobsOptions {
  return { jobId: `expand-${batchId}`, attempts: 10, backoff: { type: "exponential", delay: 500 }, ...keep };
}

/** Finalize jobs get a fresh id per request: finalizing is idempotent and may be asked for again. */
export function finalizeJobOptions(batchId: string, delayMs = 0): JobsOptions {
  return {
    jobId: `finalize-${batchId}-${Date.now()}`,
    delay: delayMs,
    attempts: 10,
    backoff: { type: "exponential", delay: 500 },
    ...keep,
  };
}

export function lineJobId(batchId: string, customId: string): string {
  return `${batchId}-${createHash("sha256").update(customId).digest("hex").slice(0, 32)}`;
}

export function lineJobOptions(batchId: string, customId: string, attempts: number): JobsOptions {
  return { jobId: lineJobId(batchId, customId), attempts, backoff: { type: "exponential", delay: 1000 }, ...keep };
}
