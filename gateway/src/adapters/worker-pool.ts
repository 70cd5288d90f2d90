/**
 * GenerationBackend over the worker roster. A generation goes to one of the workers the directory lists
 * as ready for the model and whose grpc.health.v1 watch (worker-health.ts) does not say otherwise (R13):
 * the holder of the tool loop it continues (domain/routing/tool-loops.ts; unless that holder carries
 * more than 1.5× the mean load), else the group that is
 * cheapest by cached prefix against load (domain/routing/cache-routing.ts), else — no group holds any of
 * its prefix, or router.policy is least_load — the one with the fewest outstanding tokens. It runs on the worker's one GenerateStream
 * (generation-mux.ts: cancelled when the client goes away) and maps the worker's typed errors to the
 * gateway's catalogue. A generation that
 * fails before its first event reached the caller (worker gone or refusing: UNAVAILABLE, NOT_READY,
 * QUEUE_FULL) is tried again on another worker, never the same one twice and at most maxAttempts times;
 * once an event has been yielded it is never retried, the error surfaces (R12). It does not queue or
 * admit (domain/admission.ts).
 */

import { readFileSync } from "node:fs";
import { type AppError, Counter, type Logger, type Registry } from "@expertmesh/common";
import { type Member, MemberState } from "@expertmesh/proto/cluster";
import { ErrorDetail, ErrorKind, type GenerateRequest, type GenerateResponse, WorkerClient } from "@expertmesh/proto/worker";
import { type ChannelCredentials, credentials, type ServiceError, status } from "@grpc/grpc-js";
import { type Context, context, propagation } from "@opentelemetry/api";
import { type GenerationBackend, type PipeableIterator, pipeTo } from "../domain/generation-backend.ts";
import { cheapest, PromptChains, publishedLoad, type RouteReason, type RoutingPolicy, staysWith } from "../domain/routing/cache-routing.ts";
import { type ToolLoop, ToolLoops } from "../domain/routing/tool-loops.ts";
import type { WorkerDirectory } from "../domain/worker-directory.ts";
import { gatewayErrors } from "../errors.ts";
import { GenerationMux, type Step, streamError } from "./generation-mux.ts";
import { DEFAULT_HEALTH_BACKOFF, type HealthBackoff, HealthWatch, type WorkerHealthState } from "./worker-health.ts";

/** The pool's options from the gateway's `router` config block. */
export function workerPoolOptions(r: {
  max_attempts: number;
  sync_ms: number;
  health_backoff_initial_ms: number;
  health_backoff_max_ms: number;
  health_recheck_ms: number;
  tls_ca_file: string;
  tls_cert_file: string;
  tls_key_file: string;
  policy: RoutingPolicy;
  cache_load_weight: number;
  tool_pin_ms: number;
}): WorkerPoolOptions {
  return {
    policy: r.policy,
    cacheLoadWeight: r.cache_load_weight,
    toolPinMs: r.tool_pin_ms,
    maxAttempts: r.max_attempts,
    syncIntervalMs: r.sync_ms,
    healthBackoff: { initialMs: r.health_backoff_initial_ms, maxMs: r.health_backoff_max_ms, recheckMs: r.health_recheck_ms },
    credentials: workerCredentials(r),
  };
}

/** Channel credentials to the workers: plaintext, TLS, or TLS with this gateway's client certificate. */
export function workerCredentials(r: { tls_ca_file: string; tls_cert_file: string; tls_key_file: string }): ChannelCredentials {
  if (!r.tls_ca_file && !r.tls_cert_file && !r.tls_key_file) return credentials.createInsecure();
  if (Boolean(r.tls_cert_file) !== Boolean(r.tls_key_file)) {
    throw new Error(
      "invalid gateway configuration: router.tls_cert_file and router.tls_key_file must be set together (GATEWAY_WORKER_TLS_CERT_FILE, GATEWAY_WORKER_TLS_KEY_FILE)",
    );
  }
  const read = (file: string) => (file ? readFileSync(file) : null);
  return credentials.createSsl(read(r.tls_ca_file), read(r.tls_key_file), read(r.tls_cert_file));
}

export interface WorkerPoolOptions {
  /** Most workers one generation is tried on before its first event (default 3; never one twice). */
  maxAttempts?: number;
  /** How often the directory is compared with the open health watches, in ms (default 500). */
  syncIntervalMs?: number;
  /** Reconnect backoff of health watches and worker channels. */
  healthBackoff?: HealthBackoff;
  /** Channel credentials to the workers (default: plaintext). */
  credentials?: ChannelCredentials;
  /** cache_aware (default) or least_load. */
  policy?: RoutingPolicy;
  /** The weight of a group's load against its cached prefix (cache-routing.ts; default 0.25). */
  cacheLoadWeight?: number;
  /** How long a tool call's KV stays pinned for its follow-up turn, in ms (0, the default here: no pins). */
  toolPinMs?: number;
  /** The tokens that end a tool call (Harmony's <|call|>): a generation ending on one is pinned. */
  pinOnTokenIds?: number[];
  /** Where routing decisions are counted (absent: nowhere). */
  registry?: Registry;
  /** The clock of tool-loop expiry, Unix ms (default Date.now). */
  now?: () => number;
}

/** A ready member the router may choose, with its endpoint. */
interface Candidate {
  member: Member;
  endpoint: Endpoint;
}

/** Where a generation goes, why, and the tool loop it continues there (if any). */
interface Route extends Candidate {
  reason: RouteReason;
  follows?: ToolLoop;
}

/** One worker address: its channel, its health watch and the load the router balances. */
interface Endpoint {
  readonly address: string;
  readonly client: WorkerClient;
  /** The one GenerateStream every generation on this worker shares. */
  readonly mux: GenerationMux;
  readonly health: HealthWatch;
  /** Prompt + max tokens of the generations running on it. */
  outstanding: number;
  /** Generations holding its channel open. */
  streams: number;
  /** Left the directory: its channel closes when its last stream ends. */
  removed: boolean;
}

/** One generation on a worker's stream; release() cancels it if unfinished and gives its load back. */
interface Attempt {
  next(): Promise<Step>;
  /** Its remaining steps pushed to `sink` as they arrive (EventQueue.pipe). */
  pipe(sink: (s: Step) => void): void;
  release(): void;
}

const DONE: IteratorResult<GenerateResponse> = { done: true, value: undefined };

const RETRYABLE_KINDS: ReadonlySet<ErrorKind> = new Set([ErrorKind.ERROR_KIND_NOT_READY, ErrorKind.ERROR_KIND_QUEUE_FULL]);

export class WorkerPool implements GenerationBackend {
  readonly #directory: WorkerDirectory;
  readonly #log: Logger;
  readonly #endpoints = new Map<string, Endpoint>();
  /** Every model a roster listed since this gateway started (bounded by the models the cluster serves). */
  readonly #seenModels = new Set<string>();
  readonly #maxAttempts: number;
  readonly #backoff: HealthBackoff;
  readonly #credentials: ChannelCredentials;
  readonly #timer: NodeJS.Timeout;
  readonly #policy: RoutingPolicy;
  readonly #weight: number;
  readonly #toolPinMs: number;
  readonly #pinOn: number[];
  readonly #loops = new ToolLoops();
  readonly #now: () => number;
  readonly #decisions: Counter<"reason"> | undefined;
  #closed = false;

  constructor(directory: WorkerDirectory, log: Logger, options: WorkerPoolOptions = {}) {
    this.#directory = directory;
    this.#log = log.child({ component: "worker-pool" });
    this.#maxAttempts = Math.max(1, options.maxAttempts ?? 3);
    this.#backoff = options.healthBackoff ?? DEFAULT_HEALTH_BACKOFF;
    this.#credentials = options.credentials ?? credentials.createInsecure();
    this.#policy = options.policy ?? "cache_aware";
    this.#weight = options.cacheLoadWeight ?? 0.25;
    this.#toolPinMs = options.toolPinMs ?? 0;
    this.#pinOn = options.pinOnTokenIds ?? [];
    this.#now = options.now ?? Date.now;
    this.#decisions = options.registry
      ? new Counter({
          name: "expertmesh_gateway_routing_decisions_total",
          help: "Generations routed, by reason: pinned (to its tool loop's holder), prefix (cheapest by cached prefix against load), least_load",
          labelNames: ["reason"] as const,
          registers: [options.registry],
        })
      : undefined;
    this.#sync();
    // Watches open ahead of the first request to a new worker, and close for workers that left.
    this.#timer = setInterval(() => this.#sync(), options.syncIntervalMs ?? 500);
    this.#timer.unref();
  }

  models(): string[] {
    this.#sync();
    const ready = this.#directory.members().filter(serving);
    return [...new Set(ready.filter((m) => this.#endpoints.get(m.address)?.health.routable()).map((m) => m.model))].sort();
  }

  /** The health of the worker at `address` as its watch last saw it (undefined: not in the directory). */
  health(address: string): WorkerHealthState | undefined {
    return this.#endpoints.get(address)?.health.state;
  }

  /**
   * A plain iterator rather than an async generator: it sits on the per-token path, and relaying an event
   * costs one promise reaction here against several promises and result objects for a generator.
   */
  generate(model: string, request: GenerateRequest, signal: AbortSignal, parent?: Context): AsyncIterable<GenerateResponse> {
    // The caller's trace (given, or the context the generation is started in): every attempt carries it.
    const trace = parent ?? context.active();
    const tried = new Set<string>();
    const chains = this.#policy === "cache_aware" ? new PromptChains(request.promptTokenIds) : undefined;
    let route: Route | undefined;
    let lastError: AppError | undefined;
    let attempt: Attempt | null = null;
    let address = "";
    let yielded = false;
    let finished = false;
    const release = () => {
      const a = attempt;
      attempt = null;
      a?.release();
    };
    // A step that ends the attempt (done or an error): undefined when finished, else the error to throw,
    // or "retry" where it failed before its first event in a way another worker may not.
    const ending = (s: Exclude<Step, { event: GenerateResponse }>): AppError | "retry" | undefined => {
      release();
      if ("done" in s) {
        finished = true;
        return undefined;
      }
      const detail = s.detail ?? errorDetailOf(s.error);
      const error = this.#mapError(s.error, detail, signal.aborted);
      if (yielded && workerGone(s.error, signal.aborted))
        this.#log.warn({ address, err: error.message }, "worker failed mid-stream: not retried");
      const retry = !yielded && !signal.aborted && tried.size < this.#maxAttempts && retryable(s.error, detail, signal.aborted);
      if (!retry) {
        finished = true;
        return error;
      }
      this.#log.warn(
        { address, code: s.error.code, err: error.message, attempt: tried.size },
        "generation failed before its first token: trying another worker",
      );
      lastError = error;
      return "retry";
    };
    const step = (s: Step): IteratorResult<GenerateResponse> | Promise<IteratorResult<GenerateResponse>> => {
      if ("event" in s) {
        yielded = true;
        if (s.event.finished?.pinnedBlocks && route) this.#pinned(request.requestId, route, chains);
        return { done: false, value: s.event };
      }
      const end = ending(s);
      if (end === "retry") return next();
      if (end !== undefined) throw end;
      return DONE;
    };
    const next = (): Promise<IteratorResult<GenerateResponse>> => {
      if (finished) return Promise.resolve(DONE);
      if (!attempt) {
        try {
          if (tried.size === 0) this.#sync();
          route = this.#route(model, chains, tried, lastError);
          tried.add(route.endpoint.address);
          address = route.endpoint.address;
          yielded = false;
          attempt = this.#start(route.endpoint, this.#withToolLoop(request, route), signal, trace);
        } catch (err) {
          finished = true;
          return Promise.reject(err);
        }
      }
      return attempt.next().then(step);
    };
    const iterator: PipeableIterator<GenerateResponse> = {
      next,
      // Once an event was yielded no retry can follow: the worker's steps go straight to the sink. Before
      // that (or after the end) the events are pulled, retries included.
      pipe: (sink) => {
        const a = attempt;
        if (!a || !yielded || finished) {
          pipeTo({ next }, sink);
          return;
        }
        a.pipe((s) => {
          if ("event" in s) {
            if (s.event.finished?.pinnedBlocks && route) this.#pinned(request.requestId, route, chains);
            sink.event(s.event);
          } else if (!finished) sink.end(ending(s)); // yielded already: never "retry"
        });
      },
      // The caller stopped reading: cancel the call (if still running) and give its load back.
      return: () => {
        finished = true;
        release();
        return Promise.resolve(DONE);
      },
    };
    return { [Symbol.asyncIterator]: () => iterator };
  }

  close(): void {
    this.#closed = true;
    clearInterval(this.#timer);
    for (const e of this.#endpoints.values()) {
      e.health.close();
      closeEndpoint(e);
    }
    this.#endpoints.clear();
  }

  /** The routable ready worker not yet tried that the router chooses (see the header); throws the last attempt's error when none is left. */
  #route(model: string, chains: PromptChains | undefined, tried: ReadonlySet<string>, lastError: AppError | undefined): Route {
    const listed = this.#directory.members().filter((m) => m.model === model);
    const ready = listed.filter(serving);
    const candidates: Candidate[] = [];
    for (const member of ready) {
      const endpoint = this.#endpoints.get(member.address);
      if (endpoint && !tried.has(endpoint.address) && endpoint.health.routable()) candidates.push({ member, endpoint });
    }
    if (candidates.length > 0) {
      const route = this.#choose(candidates, chains);
      this.#decisions?.inc({ reason: route.reason });
      return route;
    }
    if (lastError) throw lastError;
    // Before the first roster, or for a model some worker served since this gateway started (restarted,
    // killed, stopped), the model may be served again shortly: 503 with retry-after, which the SDKs
    // retry — never a 404, which they do not.
    const known = this.#directory.rosterAgeMs() === undefined || this.#seenModels.has(model);
    if (listed.length === 0 && !known) throw gatewayErrors.create("model_not_found", { model }, { param: "model" });
    const reason =
      listed.length === 0
        ? `no worker serves '${model}' right now`
        : ready.length === 0
          ? `no ready worker serves '${model}' right now`
          : `no worker serving '${model}' reports healthy right now`;
    throw gatewayErrors.create("service_unavailable", { reason }, { retryAfterMs: 2000 });
  }

  /**
   * The tool loop's holder (unless it carries more than PIN_YIELD_LOAD × the mean load: staysWith), else
   * the cheapest group by cached prefix, else the least-loaded worker.
   */
  #choose(candidates: readonly Candidate[], chains: PromptChains | undefined): Route {
    if (chains) {
      // This gateway's open generations are fresher than the last heartbeat: a burst sees its own requests.
      const scores = candidates.map((c) => ({
        address: c.endpoint.address,
        cached: chains.cachedOn(c.member),
        load: Math.max(publishedLoad(c.member), c.endpoint.streams),
      }));
      const byAddress = (address: string) => candidates.find((c) => c.endpoint.address === address);
      for (const c of candidates) {
        const follows = this.#loops.take(chains.chainFor(c.member), this.#now());
        const holder = follows && scores.find((h) => h.address === follows.address);
        // The holder gone (or tried already): its pin expires there; the turn is routed on its prefix.
        if (!follows || !holder) continue;
        const pinnedTokens = Math.min(follows.blocks * (c.member.load?.prefix?.blockSize ?? 0), chains.promptTokens - 1);
        const pinned = { ...holder, cached: Math.max(holder.cached, pinnedTokens) };
        const chosen = staysWith(
          pinned,
          scores.map((g) => (g === holder ? pinned : g)),
          chains.promptTokens,
          this.#weight,
        );
        if (chosen === pinned) return { ...(byAddress(holder.address) as Candidate), reason: "pinned", follows };
        return { ...(byAddress(chosen.address) as Candidate), reason: "prefix" };
      }
      const best = cheapest(scores, chains.promptTokens, this.#weight);
      const chosen = best && byAddress(best.address);
      if (chosen) return { ...chosen, reason: "prefix" };
    }
    let best = candidates[0] as Candidate;
    for (const c of candidates) if (c.endpoint.outstanding < best.endpoint.outstanding) best = c;
    return { ...best, reason: "least_load" };
  }

  /** The request as sent on `route`: asking for a pin if it ends in a tool call, releasing the one it continues. */
  #withToolLoop(request: GenerateRequest, route: Route): GenerateRequest {
    const follows = route.follows ? [route.follows.requestId] : [];
    if (this.#toolPinMs <= 0 && follows.length === 0) return request;
    return { ...request, toolLoop: { pinTtlMs: this.#toolPinMs, pinOnTokenIds: this.#pinOn, follows } };
  }

  /** The worker pinned this generation's blocks: its next turn goes there. */
  #pinned(requestId: string, route: Route, chains: PromptChains | undefined): void {
    const key = chains?.loopKey(route.member);
    if (key) this.#loops.add(key, { requestId, address: route.endpoint.address }, this.#now() + this.#toolPinMs);
  }

  #start(e: Endpoint, request: GenerateRequest, signal: AbortSignal, trace: Context): Attempt {
    const weight = request.promptTokenIds.length + request.maxTokens;
    e.outstanding += weight;
    e.streams++;
    const traceContext: Record<string, string> = {};
    propagation.inject(trace, traceContext);
    const { handle, events } = e.mux.start(request, traceContext);
    const cancel = () => e.mux.cancel(handle, streamError(status.CANCELLED, "cancelled by the caller"));
    signal.addEventListener("abort", cancel, { once: true });
    if (signal.aborted) cancel();
    // The deadline travels twice: in the request (the worker ends it) and here (a stalled worker).
    const deadline =
      request.deadlineUnixMs > 0
        ? setTimeout(
            () => e.mux.cancel(handle, streamError(status.DEADLINE_EXCEEDED, "the generation deadline passed")),
            Math.max(0, request.deadlineUnixMs - Date.now()),
          )
        : null;
    let released = false;
    return {
      next: () => events.next(),
      pipe: (sink) => events.pipe(sink),
      release: () => {
        if (released) return;
        released = true;
        signal.removeEventListener("abort", cancel);
        if (deadline) clearTimeout(deadline);
        if (!events.finished) e.mux.cancel(handle, streamError(status.CANCELLED, "released by the caller"));
        events.close();
        e.outstanding -= weight;
        e.streams--;
        if (e.removed && e.streams === 0) closeEndpoint(e);
      },
    };
  }

  /** Opens watches for workers new in the directory and retires those that left it. */
  #sync(): void {
    if (this.#closed) return;
    const members = this.#directory.members();
    for (const m of members) this.#seenModels.add(m.model);
    const listed = new Set(members.map((m) => m.address));
    for (const address of listed) {
      if (!this.#endpoints.has(address)) this.#endpoints.set(address, this.#connect(address));
    }
    for (const [address, e] of this.#endpoints) {
      if (listed.has(address)) continue;
      this.#endpoints.delete(address);
      e.removed = true;
      e.health.close();
      if (e.streams === 0) closeEndpoint(e);
    }
  }

  #connect(address: string): Endpoint {
    // The channel reconnects on the watch's schedule, not gRPC's default (up to 120 s), so that a
    // restarted worker is seen again within the backoff cap.
    const client = new WorkerClient(address, this.#credentials, {
      "grpc.initial_reconnect_backoff_ms": this.#backoff.initialMs,
      "grpc.max_reconnect_backoff_ms": this.#backoff.maxMs,
    });
    const health = new HealthWatch(address, client, this.#log, this.#backoff);
    return { address, client, mux: new GenerationMux(client), health, outstanding: 0, streams: 0, removed: false };
  }

  #mapError(err: ServiceError, detail: ErrorDetail | undefined, aborted: boolean): AppError {
    const message = detail?.message ?? err.details ?? err.message;
    switch (detail?.kind) {
      case ErrorKind.ERROR_KIND_CONTEXT_LENGTH_EXCEEDED:
        return gatewayErrors.create("context_length_exceeded", { detail: message }, { param: "messages" });
      case ErrorKind.ERROR_KIND_INVALID_ARGUMENT:
        return gatewayErrors.create("invalid_request_error", { detail: message });
      case ErrorKind.ERROR_KIND_QUEUE_FULL:
        return gatewayErrors.create("overloaded", { reason: message }, { retryAfterMs: detail.retryAfterMs || 1000 });
      case ErrorKind.ERROR_KIND_DEADLINE_EXCEEDED:
        return gatewayErrors.create("timeout", { detail: message });
      default:
        if (err.code === status.DEADLINE_EXCEEDED) return gatewayErrors.create("timeout", { detail: "the generation deadline passed" });
        if (workerGone(err, aborted) || detail?.kind === ErrorKind.ERROR_KIND_NOT_READY) {
          return gatewayErrors.create("service_unavailable", { reason: message }, { retryAfterMs: detail?.retryAfterMs || 1000 });
        }
        if (!aborted) this.#log.error({ code: err.code, err: message }, "worker failed");
        return gatewayErrors.create("upstream_error", { detail: message });
    }
  }
}

function closeEndpoint(e: Endpoint): void {
  e.mux.close();
  e.client.close();
}

/** Members that take requests: ready, and rank 0 of their group (other ranks follow the leader's steps). */
function serving(m: Member): boolean {
  return m.state === MemberState.MEMBER_STATE_READY && m.rank === 0;
}

function errorDetailOf(err: ServiceError): ErrorDetail | undefined {
  const raw = err.metadata?.get("expertmesh-error-bin")[0];
  return raw instanceof Buffer ? ErrorDetail.decode(raw) : undefined;
}

/**
 * The connection to the worker failed, or the worker's side reset the stream: a CANCELLED status the
 * caller did not ask for is what a server shutting down hard sends (a worker ends its own aborts with
 * a Finished event, never a status).
 */
function workerGone(err: ServiceError, aborted: boolean): boolean {
  return err.code === status.UNAVAILABLE || (err.code === status.CANCELLED && !aborted);
}

/** Whether another worker may succeed where this one failed: it is gone, or refused the request as a whole. */
function retryable(err: ServiceError, detail: ErrorDetail | undefined, aborted: boolean): boolean {
  if (detail) return RETRYABLE_KINDS.has(detail.kind);
  return workerGone(err, aborted);
}
