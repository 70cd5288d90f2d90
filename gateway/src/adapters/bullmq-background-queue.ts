/**
 * BackgroundQueue on BullMQ (the Redis the batches' queues use, under the same key prefix): a job per
 * background response, its id the response's, run by whichever gateway replica's worker takes it. A
 * gateway that dies mid-run stops renewing the job's lock; after lock_duration_ms a live gateway's stall
 * check (or the restarted one's) puts the job back and it runs again from the start — max_stalled_count
 * times at most, then `lost` fails the response. Cancels are published on a channel every gateway
 * subscribes to, so the one running the response aborts it; a job still waiting is removed.
 */
import type { Logger } from "@expertmesh/common";
import { bullPrefix } from "@expertmesh/orchestrator/batches";
import { type Job, Queue, type RedisOptions, Worker } from "bullmq";
import { Redis } from "ioredis";
import type { BackgroundHandlers, BackgroundJob, BackgroundQueue } from "../domain/responses/background.ts";

export const BACKGROUND_QUEUE = "responses-background";

export interface BullBackgroundOptions {
  redisUrl: string;
  /** The gateway's request-path client (fail-fast): cancels are published on it. */
  redis: Redis;
  /** The deployment's Redis key prefix (ORCHESTRATOR_REDIS_KEY_PREFIX), as the batch queues use it. */
  keyPrefix: string;
  /** Background responses generating at once in this gateway. */
  concurrency: number;
  lockDurationMs: number;
  maxStalledCount: number;
  log: Logger;
  /** For the adding side's connection: the gateway's fail-fast options (a 503 instead of a wait). */
  queueRedisOptions?: RedisOptions;
}

const DAY_S = 24 * 3600;

export class BullBackgroundQueue implements BackgroundQueue {
  readonly #o: BullBackgroundOptions;
  readonly #queue: Queue;
  readonly #channel: string;
  readonly #running = new Map<string, AbortController>();
  #worker: Worker | undefined;
  #subscriber: Redis | undefined;

  constructor(o: BullBackgroundOptions) {
    this.#o = o;
    this.#channel = `${o.keyPrefix}responses:cancel`;
    this.#queue = new Queue(BACKGROUND_QUEUE, {
      connection: { url: o.redisUrl, maxRetriesPerRequest: 2, ...o.queueRedisOptions },
      prefix: bullPrefix(o.keyPrefix),
    });
  }

  start(handlers: BackgroundHandlers): void {
    const o = this.#o;
    // null: a worker's and a subscriber's commands wait out a Redis restart instead of failing.
    const subscriber = new Redis(o.redisUrl, { maxRetriesPerRequest: null });
    subscriber.on("error", (err) => o.log.debug({ err: err.message }, "background cancel channel error"));
    subscriber.subscribe(this.#channel).catch((err: Error) => o.log.warn({ err: err.message }, "background cancel channel failed"));
    subscriber.on("message", (_channel, id: string) => this.#running.get(id)?.abort(new Error("response cancelled")));
    this.#subscriber = subscriber;
    const worker = new Worker(BACKGROUND_QUEUE, (job: Job<BackgroundJob>) => this.#run(handlers, job.data), {
      connection: { url: o.redisUrl, maxRetriesPerRequest: null },
      prefix: bullPrefix(o.keyPrefix),
      concurrency: o.concurrency,
      lockDuration: o.lockDurationMs,
      stalledInterval: Math.max(500, Math.floor(o.lockDurationMs / 2)),
      maxStalledCount: o.maxStalledCount,
    });
    worker.on("error", (err) => o.log.debug({ err: err.message }, "background worker error"));
    // A processor never throws (the run records its own failures): a failed job is one given up after stalls.
    worker.on("failed", (job, err) => {
      if (!job) return;
      o.log.warn({ responseId: job.data.id, err: err.message }, "background response given up");
      handlers
        .lost(job.data, err.message)
        .catch((e: Error) => o.log.warn({ err: e.message }, "recording a lost background response failed"));
    });
    this.#worker = worker;
  }

  async #run(handlers: BackgroundHandlers, job: BackgroundJob): Promise<void> {
    const controller = new AbortController();
    this.#running.set(job.id, controller);
    try {
      await handlers.run(job, controller.signal);
    } finally {
      this.#running.delete(job.id);
    }
  }

  async enqueue(job: BackgroundJob): Promise<void> {
    // One attempt: a run records its own failure; only a dead gateway's run is run again (stalls).
    await this.#queue.add("response", job, {
      jobId: job.id,
      attempts: 1,
      removeOnComplete: { age: DAY_S },
      removeOnFail: { age: DAY_S },
    });
  }

  async cancel(id: string): Promise<void> {
    await this.#o.redis.publish(this.#channel, id);
    // Waiting: gone before any run. Running: locked, not removable; the published cancel stops it.
    await this.#queue.remove(id).catch(() => 0);
  }

  /** Waits for the running responses to end (bounded by the gateway's shutdown grace), then disconnects. */
  async close(): Promise<void> {
    await this.#worker?.close();
    await this.#queue.close();
    this.#subscriber?.disconnect();
  }
}
