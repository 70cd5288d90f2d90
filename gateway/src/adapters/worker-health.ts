/**
 * One grpc.health.v1 Watch stream on one worker: whether the worker says its Worker service is SERVING.
 * Anything else it reports (NOT_SERVING, SERVICE_UNKNOWN), or the stream failing or ending, makes it
 * unroutable until it reports SERVING again. While SERVING the stream stays open, so a flip is seen at
 * once (R13). A failed watch reopens with capped exponential backoff (reset by every report). A worker
 * that is not serving is re-watched every recheckMs instead of held on an open stream: a draining
 * worker's graceful gRPC shutdown waits for every open call, and a watch never ends on its own. A worker
 * without a health service (UNIMPLEMENTED) stays routable and is not watched again, as gRPC's
 * client-side health checking does. It knows nothing of models or load: the pool picks.
 */
import type { Logger } from "@expertmesh/common";
import { type HealthCheckResponse, HealthCheckResponse_ServingStatus, HealthClient } from "@expertmesh/proto/health";
import { type Client, type ClientReadableStream, credentials, type StatusObject, status } from "@grpc/grpc-js";

/** The health service name a worker reports Generate readiness under (worker/src/app.ts). */
export const WORKER_HEALTH_SERVICE = "expertmesh.worker.v1.Worker";

/**
 * unknown: no report yet (a just-opened watch; routable, the pool's retries cover a dead one);
 * serving / not_serving: the last report; unreachable: the stream failed or ended (reconnecting);
 * unmonitored: the worker has no health service.
 */
export type WorkerHealthState = "unknown" | "serving" | "not_serving" | "unreachable" | "unmonitored";

export interface HealthBackoff {
  /** First reconnect delay after a watch fails, in ms. */
  initialMs: number;
  /** Cap of the doubling reconnect delay, in ms. */
  maxMs: number;
  /** Delay before re-watching a worker that reported not serving, in ms. */
  recheckMs: number;
}

export const DEFAULT_HEALTH_BACKOFF: HealthBackoff = { initialMs: 100, maxMs: 5000, recheckMs: 250 };

export class HealthWatch {
  readonly #address: string;
  readonly #client: HealthClient;
  readonly #backoff: HealthBackoff;
  readonly #log: Logger;
  #state: WorkerHealthState = "unknown";
  #call: ClientReadableStream<HealthCheckResponse> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #delayMs: number;
  #closed = false;

  /** Watches `address` over `owner`'s channel (the worker client's: both see one connection). */
  constructor(address: string, owner: Client, log: Logger, backoff: HealthBackoff = DEFAULT_HEALTH_BACKOFF) {
    this.#address = address;
    this.#client = new HealthClient(address, credentials.createInsecure(), { channelOverride: owner.getChannel() });
    this.#backoff = backoff;
    this.#delayMs = backoff.initialMs;
    this.#log = log;
    this.#open();
  }

  get state(): WorkerHealthState {
    return this.#state;
  }

  /** Whether a router may choose this worker now. */
  routable(): boolean {
    return this.#state === "serving" || this.#state === "unknown" || this.#state === "unmonitored";
  }

  /** Stops watching (the shared channel is the owner's to close). */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#call?.cancel();
    this.#call = undefined;
  }

  #open(): void {
    const call = this.#client.watch({ service: WORKER_HEALTH_SERVICE });
    this.#call = call;
    call.on("data", (r: HealthCheckResponse) => {
      if (this.#closed || this.#call !== call) return;
      this.#delayMs = this.#backoff.initialMs;
      if (r.status === HealthCheckResponse_ServingStatus.SERVING) {
        this.#set("serving");
        return;
      }
      this.#set("not_serving");
      this.#call = undefined;
      call.cancel();
      this.#reopenIn(this.#backoff.recheckMs);
    });
    // 'status' follows every end, OK or not; the error itself carries nothing more.
    call.on("error", () => {});
    call.on("status", (s: StatusObject) => {
      if (this.#closed || this.#call !== call) return;
      this.#call = undefined;
      if (s.code === status.UNIMPLEMENTED) {
        this.#log.warn({ address: this.#address }, "worker serves no grpc.health.v1: routing to it without health checks");
        this.#set("unmonitored");
        return;
      }
      this.#set("unreachable");
      // Jittered (half to all of the backoff) so that the watches of a restarted fleet do not reconnect in step.
      this.#reopenIn(this.#delayMs / 2 + Math.random() * (this.#delayMs / 2));
      this.#delayMs = Math.min(this.#delayMs * 2, this.#backoff.maxMs);
    });
  }

  #reopenIn(ms: number): void {
    this.#timer = setTimeout(() => this.#open(), ms);
    this.#timer.unref();
  }

  #set(state: WorkerHealthState): void {
    if (state === this.#state) return;
    const was = this.#state;
    this.#state = state;
    if (was !== "unknown" || state !== "serving") this.#log.info({ address: this.#address, was, now: state }, "worker health changed");
  }
}
