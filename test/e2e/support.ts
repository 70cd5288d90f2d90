/** What the e2e tests share: starting a service process from the repository, and polling until a condition holds. */
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { killOnExit } from "@expertmesh/common/testing";

const root = new URL("../../", import.meta.url).pathname;

/** Things to undo after a test, last first. */
export class Cleanup {
  #fns: Array<() => Promise<unknown> | unknown> = [];
  add(fn: () => Promise<unknown> | unknown): void {
    this.#fns.push(fn);
  }
  /** `node <script>` (relative to the repository root) with env; SIGKILLed at cleanup if still running. */
  service(script: string, env: Record<string, string>): ChildProcess {
    return startService(script, env, this);
  }
  async run(): Promise<void> {
    for (const fn of this.#fns.reverse()) await fn();
    this.#fns = [];
  }
}

/** `node <script>` (relative to the repository root) with env; SIGKILLed at cleanup if still running. */
export function startService(script: string, env: Record<string, string>, cleanup: Cleanup): ChildProcess {
  const child = killOnExit(
    spawn(process.execPath, [join(root, script)], { env: { ...process.env, LOG_LEVEL: "warn", ...env }, stdio: "inherit" }),
  );
  cleanup.add(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
  return child;
}

/** Polls `f` every 100 ms until `ok` holds (errors count as not yet); throws after `ms`. */
export async function until<T>(f: () => Promise<T>, ok: (v: T) => boolean, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f().catch(() => undefined as T);
    if (ok(v)) return v;
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The env of a worker the orchestrator places (tiny model settings: small KV cache, fast heartbeats). */
export function orchestratedWorkerEnv(checkpoint: string, model: string, orchestrator: string): Record<string, string> {
  return {
    WORKER_MODEL_PATH: checkpoint,
    WORKER_MODEL_NAME: model,
    WORKER_GROUP_MODE: "orchestrated",
    WORKER_ORCHESTRATOR_ADDRESS: orchestrator,
    WORKER_HEARTBEAT_MS: "200",
    WORKER_KV_NUM_BLOCKS: "256",
    WORKER_MAX_NUM_SEQS: "8",
  };
}
