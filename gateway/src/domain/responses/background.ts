/**
 * Background responses (`background: true`): the port through which POST /v1/responses hands a response
 * to be generated later, and POST /v1/responses/{id}/cancel stops it. The queue only carries and runs
 * jobs; what a run does (render, generate, store the outcome) is the runner given to start(). The Redis
 * adapter (adapters/bullmq-background-queue.ts) keeps jobs in BullMQ, so a response outlives the gateway
 * that took it; InProcessBackgroundQueue here runs them in this process (no Redis: they die with it).
 */
import type { ApiKeyRecord } from "../api-keys.ts";

/** The statuses of a background response that has not ended: a cancel or a restarted run may replace them. */
export const UNFINISHED: readonly string[] = ["queued", "in_progress"];

export interface BackgroundJob {
  /** The response id (resp_…), also the job's id: adding it twice runs it once. */
  id: string;
  /** The tenant that created it (http/tenant.ts); the run acts for it (previous_response_id, the store). */
  tenant: string;
  /** The request body as validated by POST /v1/responses. */
  body: Record<string, unknown>;
  /** The API key that created it, for its token limits (its digest left out); absent with auth off. */
  caller?: Omit<ApiKeyRecord, "sha256">;
  /** W3C trace headers of the creating request: the run continues its trace. */
  trace: Record<string, string>;
}

/** What a queue calls: the run of a job, and the news that a job will not run again. */
export interface BackgroundHandlers {
  /** Runs one job to its end, recording its outcome itself; `signal` fires when the response is cancelled. */
  run(job: BackgroundJob, signal: AbortSignal): Promise<void>;
  /** The job was given up (its runs died more often than allowed): the response must end as failed. */
  lost(job: BackgroundJob, reason: string): Promise<void>;
}

/**
 * Contract: enqueue resolves once the job is durable in the adapter (at least once: a run that dies with
 * its process is run again from the start, by this or another gateway); cancel fires the signal of the
 * job's run wherever it runs, and keeps a job not started yet from starting (a run also checks the
 * store's status before it begins). close stops taking jobs and waits for the running ones.
 */
export interface BackgroundQueue {
  start(handlers: BackgroundHandlers): void;
  enqueue(job: BackgroundJob): Promise<void>;
  cancel(id: string): Promise<void>;
  close(): Promise<void>;
}

/** Runs each job at once in this process (admission bounds how many generate): for a gateway without Redis. */
export class InProcessBackgroundQueue implements BackgroundQueue {
  #handlers: BackgroundHandlers | undefined;
  readonly #running = new Map<string, { controller: AbortController; done: Promise<void> }>();

  start(handlers: BackgroundHandlers): void {
    this.#handlers = handlers;
  }

  async enqueue(job: BackgroundJob): Promise<void> {
    const handlers = this.#handlers;
    if (!handlers) throw new Error("InProcessBackgroundQueue: enqueue before start");
    if (this.#running.has(job.id)) return;
    const controller = new AbortController();
    // The runner records its own failures in the store; a rejection here is a bug, not a lost response.
    const done = handlers
      .run(job, controller.signal)
      .catch(() => {})
      .finally(() => this.#running.delete(job.id));
    this.#running.set(job.id, { controller, done });
  }

  async cancel(id: string): Promise<void> {
    this.#running.get(id)?.controller.abort(new Error("response cancelled"));
  }

  async close(): Promise<void> {
    await Promise.all([...this.#running.values()].map((r) => r.done));
  }
}
