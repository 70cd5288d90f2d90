/**
 * The primary of a multi-process gateway (http.processes > 1). It serves no HTTP itself: node:cluster
 * has it own the listening socket and hand connections round-robin to its N children (each a whole
 * gateway: routes, worker pool, discovery). It
 * - restarts a child that dies (at once; after crashes in quick succession with a growing delay, so a
 *   child that cannot start does not spin), and exits when a child dies before any child ever listened
 *   (a bad port or config: a supervisor should see that, not a restart loop);
 * - turns SIGTERM or SIGINT into one SIGTERM per child (each drains as a single gateway does) and exits
 *   once they all have; a second signal, or a drain past shutdown_grace_ms + 5 s, SIGKILLs them;
 * - answers its children's calls (primary-channel.ts): the shared state a child without Redis uses, and
 *   `metrics`, the children's registries summed (prom-client's AggregatorRegistry).
 * Children die with it: node:cluster exits a child whose IPC channel to the primary closes.
 *
 * Why node:cluster rather than `reusePort`: one port for all (port 0 too), connections spread evenly
 * whatever the kernel's hash does with few clients, on every platform, and the IPC channel the shared
 * state, the metrics and the supervision above need comes with it.
 */
import cluster, { type Worker } from "node:cluster";
import { AggregatorRegistry, type Logger } from "@expertmesh/common";
import { answerCalls, type Handlers } from "./primary-channel.ts";

export interface PrimaryOptions {
  processes: number;
  /** How long a child may drain after SIGTERM (shutdown_grace_ms); the primary waits 5 s more. */
  shutdownGraceMs: number;
  log: Logger;
  /** The children's calls besides `metrics` (cluster/shared-state.ts). */
  handlers: Handlers;
}

/** A child that dies within this of its start counts as a quick crash (the restart waits longer each time). */
const QUICK_CRASH_MS = 10_000;
const RESTART_DELAY_MS = 250;
const RESTART_DELAY_MAX_MS = 10_000;
const DRAIN_MARGIN_MS = 5_000;

export function runPrimary(o: PrimaryOptions): void {
  // Structured clone on the channel: stored responses cross it as MemoryResponseStore copies them.
  cluster.setupPrimary({ serialization: "advanced" });
  const aggregator = new AggregatorRegistry();
  const supervisor = new Supervisor(o, { ...o.handlers, metrics: () => aggregator.clusterMetrics() });
  cluster.on("exit", (child, code, signal) => supervisor.exited(child, code, signal));
  process.on("SIGTERM", (signal) => supervisor.signalled(signal));
  process.on("SIGINT", (signal) => supervisor.signalled(signal));
  o.log.info({ processes: o.processes }, "gateway primary starting its processes");
  for (let i = 0; i < o.processes; i++) supervisor.fork();
}

class Supervisor {
  readonly #o: PrimaryOptions;
  readonly #handlers: Handlers;
  readonly #born = new Map<Worker, number>();
  #listened = false;
  #quickCrashes = 0;
  #stopping = false;

  constructor(o: PrimaryOptions, handlers: Handlers) {
    this.#o = o;
    this.#handlers = handlers;
  }

  fork(): void {
    const child = cluster.fork();
    this.#born.set(child, Date.now());
    answerCalls(child, this.#handlers);
    child.once("listening", () => {
      this.#listened = true;
      this.#o.log.info({ child: child.process.pid }, "gateway process listening");
    });
  }

  exited(child: Worker, code: number, signal: string): void {
    const log = this.#o.log;
    const lived = Date.now() - (this.#born.get(child) ?? 0);
    this.#born.delete(child);
    if (this.#stopping) {
      if (this.#born.size === 0) {
        log.info("every gateway process has stopped");
        process.exit(0);
      }
      return;
    }
    if (!this.#listened) {
      log.fatal({ child: child.process.pid, code, signal }, "a gateway process exited before any listened: stopping");
      this.#kill("SIGKILL");
      process.exit(code || 1);
    }
    this.#quickCrashes = lived < QUICK_CRASH_MS ? this.#quickCrashes + 1 : 0;
    const delayMs = this.#quickCrashes === 0 ? 0 : Math.min(RESTART_DELAY_MAX_MS, RESTART_DELAY_MS * 2 ** (this.#quickCrashes - 1));
    log.error({ child: child.process.pid, code, signal, livedMs: lived, restartInMs: delayMs }, "gateway process died: restarting it");
    setTimeout(() => {
      if (!this.#stopping) this.fork();
    }, delayMs);
  }

  signalled(signal: NodeJS.Signals): void {
    const log = this.#o.log;
    if (this.#stopping) {
      log.error({ signal }, "second signal: killing the gateway processes");
      this.#kill("SIGKILL");
      process.exit(1);
    }
    this.#stopping = true;
    log.info({ signal, processes: this.#born.size }, "shutting down: draining the gateway processes");
    if (this.#born.size === 0) process.exit(0);
    this.#kill("SIGTERM");
    setTimeout(() => {
      log.error({ processes: this.#born.size }, "gateway processes still draining past the grace period: killing them");
      this.#kill("SIGKILL");
      process.exit(1);
    }, this.#o.shutdownGraceMs + DRAIN_MARGIN_MS).unref();
  }

  #kill(signal: NodeJS.Signals): void {
    for (const child of this.#born.keys()) child.process.kill(signal);
  }
}
