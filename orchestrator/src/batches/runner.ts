/**
 * The batch runner: BullMQ workers that expand batches into line jobs, send each line through a
 * LineExecutor (the gateway, at batch priority), record each result exactly once, and finalize
 * batches; plus a sweeper that repairs what a crash left behind. Any number of runners may share a
 * Redis: every step is idempotent, and a runner killed mid-line leaves a stalled job that BullMQ hands
 * to another runner. It does not render prompts or talk to workers itself.
 *
 * Delivery: BullMQ is at-least-once; the result hash (HSETNX, batch-store.ts) turns that into exactly
 * one result per custom_id. After a Redis crash (AOF everysec) a line whose job was lost is re-added by
 * the sweeper (same job id), and a line whose job failed outright is recorded failed — never missing.
 */
import type { Logger, Registry } from "@expertmesh/common";
import { DelayedError, type Job, Queue, Worker } from "bullmq";
import { BullMQOtel } from "bullmq-otel";
import { Redis } from "ioredis";
import { registerBatchMetrics } from "./batch-metrics.ts";
import { cancelChannel } from "./batch-service.ts";
import { RedisBatchStore, TERMINAL } from "./batch-store.ts";
import type { FileStorage } from "./file-storage.ts";
import { RedisFileStore } from "./file-store.ts";
import { batchLines, type FinalizeDeps, finalizeBatch, finalOutcome, resultLineId, unexecuted } from "./finalize.ts";
import {
  bullPrefix,
  CONTROL_QUEUE,
  ExpandJob,
  expandJobOptions,
  FinalizeJob,
  finalizeJobOptions,
  LINES_QUEUE,
  LineJob,
  lineJobId,
  lineJobOptions,
} from "./jobs.ts";
import { parseBatchInput } from "./jsonl.ts";
import type { LineExecutor } from "./line-executor.ts";
import { type ResultKind, type ResultLine, unixNow } from "./types.ts";

export interface BatchRunnerOptions {
  redisUrl: string;
  keyPrefix: string;
  storage: FileStorage;
  executor: LineExecutor;
  log: Logger;
  /** Lines in flight at this runner. */
  concurrency: number;
  /**
   * Tries per line for retryable failures (5xx, or 429, without retry-after; no answer), with exponential
   * backoff from 1 s. A 429 or 503 with retry-after spends none: the line waits (deferLine).
   */
  lineAttempts: number;
  lineTimeoutMs: number;
  /** A job whose runner stops renewing its lock for this long is handed to another runner. */
  lockDurationMs: number;
  /** How many times a job may stall (its runner died) before it is failed. */
  maxStalledCount: number;
  sweepIntervalMs: number;
  /** An in-progress batch without progress for this long is checked for lines lost by a Redis crash. */
  repairAfterMs: number;
  /** Where the autoscaling signals are registered (batch-metrics.ts); none when not given. */
  registry?: Registry;
}

export interface BatchRunner {
  /** Queues and stores, for metrics. */
  lines: Queue;
  control: Queue;
  batches: RedisBatchStore;
  close(): Promise<void>;
}

class RetryableLineError extends Error {
  override readonly name = "RetryableLineError";
}

/** The gateway refused a line for want of capacity and said when to come back (429/503 with retry-after). */
class CapacityWait extends Error {
  override readonly name = "CapacityWait";
  readonly waitMs: number;
  constructor(waitMs: number) {
    super(`no capacity yet; come back in ${waitMs} ms`);
    this.waitMs = waitMs;
  }
}

/** Bounds of a deferred line's wait: the gateway's retry-after, doubled per deferral, jittered. */
const DEFER_MIN_MS = 100;
const DEFER_MAX_MS = 60_000;

export async function startBatchRunner(o: BatchRunnerOptions): Promise<BatchRunner> {
  // null: commands wait out a Redis restart instead of failing the job that issued them.
  const connection = { url: o.redisUrl, maxRetriesPerRequest: null };
  const redis = new Redis(o.redisUrl, { maxRetriesPerRequest: null });
  const subscriber = new Redis(o.redisUrl, { maxRetriesPerRequest: null });
  for (const c of [redis, subscriber]) c.on("error", (err) => o.log.debug({ err: err.message }, "redis connection error"));
  const prefix = bullPrefix(o.keyPrefix);
  const telemetry = new BullMQOtel({ tracerName: "expertmesh-batches" });
  const batches = new RedisBatchStore(redis, o.keyPrefix);
  const d: FinalizeDeps = { batches, files: new RedisFileStore(redis, o.keyPrefix), storage: o.storage };
  const control = new Queue(CONTROL_QUEUE, { connection, prefix, telemetry });
  const lines = new Queue(LINES_QUEUE, { connection, prefix, telemetry });
  const inflight = new Map<string, Set<AbortController>>();
  const cancelled = new Set<string>();
  const metrics = o.registry ? registerBatchMetrics(o.registry, { lines, control, batches }) : undefined;

  await subscriber.subscribe(cancelChannel(o.keyPrefix));
  subscriber.on("message", (_channel, batchId: string) => {
    cancelled.add(batchId);
    for (const c of inflight.get(batchId) ?? []) c.abort(new Error("batch cancelled"));
  });

  const askFinalize = (batchId: string, delayMs = 0) =>
    control.add("finalize", { batchId }, finalizeJobOptions(batchId, delayMs)).then(() => undefined);

  async function record(batchId: string, kind: ResultKind, line: ResultLine): Promise<void> {
    const r = await batches.record(batchId, kind, line);
    if (r.written) metrics?.result(kind);
    if (r.written && r.counts.total > 0 && r.counts.completed + r.counts.failed >= r.counts.total) await askFinalize(batchId);
  }

  async function expand(job: Job): Promise<void> {
    const { batchId } = ExpandJob.parse(job.data);
    const b = await batches.get(batchId);
    if (!b || TERMINAL.has(b.status)) return;
    if (b.status === "cancelling") return askFinalize(batchId);
    const content = await o.storage.get(b.input_file_id);
    if (!content) {
      const error = {
        code: "file_not_found",
        message: `The input file ${b.input_file_id} was deleted.`,
        param: "input_file_id",
        line: null,
      };
      await batches.transition(batchId, "failed", { errors: JSON.stringify([error]) }, ["validating"]);
      return;
    }
    const input = parseBatchInput(content.toString("utf8")).lines;
    const attempts = o.lineAttempts;
    for (let i = 0; i < input.length; i += 500) {
      const chunk = input.slice(i, i + 500).map((l, k) => ({
        name: "line",
        data: { batchId, index: i + k, custom_id: l.custom_id, url: l.url, body: l.body } satisfies LineJob,
        opts: lineJobOptions(batchId, l.custom_id, attempts),
      }));
      await lines.addBulk(chunk);
    }
    await batches.setTotal(batchId, input.length);
    await batches.transition(batchId, "in_progress", {}, ["validating"]);
  }

  async function runLine(job: Job, signal?: AbortSignal): Promise<void> {
    const l = LineJob.parse(job.data);
    const b = await batches.get(l.batchId);
    if (!b || TERMINAL.has(b.status)) return;
    const cid = l.custom_id;
    if (b.status === "cancelling" || cancelled.has(l.batchId))
      return record(l.batchId, "failed", unexecuted(l.batchId, cid, "batch_cancelled", "The batch was cancelled before this request ran."));
    if (unixNow() > b.expires_at) {
      await askFinalize(l.batchId);
      return;
    }
    const id = resultLineId(l.batchId, cid);
    const controller = new AbortController();
    const set = inflight.get(l.batchId) ?? new Set();
    inflight.set(l.batchId, set.add(controller));
    const stop = AbortSignal.any([controller.signal, AbortSignal.timeout(o.lineTimeoutMs), ...(signal ? [signal] : [])]);
    const last = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
    try {
      const a = await o.executor.execute({ url: l.url, body: l.body, requestId: id, credential: b.token }, stop);
      const response = { status_code: a.status, request_id: a.requestId, body: a.body };
      if (a.status >= 200 && a.status < 300) return await record(l.batchId, "completed", { id, custom_id: cid, response, error: null });
      if ((a.status === 429 || a.status === 503) && a.retryAfterMs !== undefined) throw new CapacityWait(a.retryAfterMs);
      if ((a.status === 429 || a.status >= 500) && !last) throw new RetryableLineError(`HTTP ${a.status}`);
      return await record(l.batchId, "failed", { id, custom_id: cid, response, error: null });
    } catch (err) {
      if (err instanceof RetryableLineError || err instanceof CapacityWait) throw err;
      if (controller.signal.aborted)
        return record(
          l.batchId,
          "failed",
          unexecuted(l.batchId, cid, "batch_cancelled", "The batch was cancelled while this request ran."),
        );
      if (!last) throw err;
      return record(
        l.batchId,
        "failed",
        unexecuted(l.batchId, cid, "request_failed", `No answer after ${job.opts.attempts} tries: ${(err as Error).message}`),
      );
    } finally {
      set.delete(controller);
      if (set.size === 0) inflight.delete(l.batchId);
    }
  }

  const workerOptions = {
    connection,
    prefix,
    telemetry,
    lockDuration: o.lockDurationMs,
    stalledInterval: Math.max(1_000, Math.floor(o.lockDurationMs / 2)),
    maxStalledCount: o.maxStalledCount,
  };
  const controlWorker = new Worker(
    CONTROL_QUEUE,
    async (job: Job) => {
      if (job.name === "expand") return expand(job);
      if (job.name === "finalize") {
        await finalizeBatch(d, FinalizeJob.parse(job.data).batchId);
        return;
      }
      throw new Error(`unknown control job '${job.name}'`);
    },
    { ...workerOptions, concurrency: 2 },
  );
  /**
   * Puts a line back without spending one of its tries: the gateway had no capacity for it (its group
   * re-forming, scaled to zero, overloaded) and did not run it. Such waits end with the batch's completion
   * window (the finalizer records what never ran as expired), not after a few tries.
   */
  async function deferLine(job: Job, token: string, waitMs: number): Promise<never> {
    const deferrals = (LineJob.parse(job.data).deferrals ?? 0) + 1;
    const wait = Math.min(Math.max(waitMs, DEFER_MIN_MS) * 2 ** Math.min(deferrals - 1, 6), DEFER_MAX_MS);
    await job.updateData({ ...job.data, deferrals });
    await job.moveToDelayed(Date.now() + Math.round(wait * (0.8 + 0.4 * Math.random())), token);
    metrics?.deferred();
    throw new DelayedError();
  }

  const lineWorker = new Worker(
    LINES_QUEUE,
    async (job: Job, token?: string, signal?: AbortSignal) => {
      try {
        await runLine(job, signal);
      } catch (err) {
        if (err instanceof CapacityWait && token) await deferLine(job, token, err.waitMs);
        throw err;
      }
    },
    { ...workerOptions, concurrency: o.concurrency },
  );
  for (const w of [controlWorker, lineWorker]) {
    w.on("error", (err) => o.log.debug({ err: err.message }, "batch worker error"));
    w.on("failed", (job, err) => o.log.debug({ jobId: job?.id, err: err.message }, "batch job attempt failed"));
  }

  // The sweeper: one runner at a time (a lock), repairing what crashes and Redis restarts leave.
  const progress = new Map<string, { done: number; since: number }>();
  async function sweep(): Promise<void> {
    const lock = await redis.set(`${o.keyPrefix}batch-sweeper`, "1", "PX", o.sweepIntervalMs, "NX");
    if (lock !== "OK") return;
    const active = await batches.active();
    for (const id of progress.keys()) if (!active.includes(id)) progress.delete(id);
    for (const batchId of active) {
      const b = await batches.get(batchId);
      if (!b) continue;
      if (b.status === "validating") {
        if ((await control.getJobState(`expand-${batchId}`)) === "unknown")
          await control.add("expand", { batchId }, expandJobOptions(batchId));
        continue;
      }
      if (finalOutcome(b)) {
        await askFinalize(batchId);
        continue;
      }
      const done = b.request_counts.completed + b.request_counts.failed;
      const p = progress.get(batchId);
      if (!p || p.done !== done) progress.set(batchId, { done, since: Date.now() });
      else if (Date.now() - p.since >= o.repairAfterMs) {
        progress.set(batchId, { done, since: Date.now() });
        await repair(batchId);
      }
    }
  }

  /** Lines with neither a result nor a live job get their job back; lines whose job failed get a result. */
  async function repair(batchId: string): Promise<void> {
    const b = await batches.get(batchId);
    if (b?.status !== "in_progress") return;
    const have = await batches.resultIds(batchId);
    const input = await batchLines(d, b);
    let readded = 0;
    for (const [index, l] of input.entries()) {
      if (have.has(l.custom_id)) continue;
      const jobId = lineJobId(batchId, l.custom_id);
      const state = await lines.getJobState(jobId);
      if (state === "unknown") {
        readded++;
        await lines.add(
          "line",
          { batchId, index, custom_id: l.custom_id, url: l.url, body: l.body },
          lineJobOptions(batchId, l.custom_id, o.lineAttempts),
        );
      } else if (state === "failed" || state === "completed") {
        const job = await lines.getJob(jobId);
        await record(
          batchId,
          "failed",
          unexecuted(batchId, l.custom_id, "request_failed", `The request was lost: ${job?.failedReason || state}`),
        );
      }
    }
    if (readded > 0) o.log.warn({ batchId, readded }, "re-added line jobs lost from Redis");
  }

  const sweeper = setInterval(() => {
    sweep().catch((err: Error) => o.log.debug({ err: err.message }, "batch sweep failed"));
  }, o.sweepIntervalMs);
  sweeper.unref();
  o.log.info({ concurrency: o.concurrency }, "batch runner started");

  return {
    lines,
    control,
    batches,
    async close() {
      clearInterval(sweeper);
      await Promise.all([controlWorker.close(), lineWorker.close()]);
      await Promise.all([control.close(), lines.close()]);
      subscriber.disconnect();
      await redis.quit();
    },
  };
}
