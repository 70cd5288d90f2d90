/**
 * A real worker process for tests: `node worker/src/main.ts` with env config, on free loopback ports,
 * ready once grpc.health.v1 reports the Worker service SERVING. stop() sends SIGTERM (drain) and waits.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { freePort, killOnExit } from "@expertmesh/common/testing";
import { HealthCheckResponse_ServingStatus, HealthClient } from "@expertmesh/proto/health";
import { type InfoResponse, WorkerClient } from "@expertmesh/proto/worker";
import { type ChannelCredentials, credentials, Metadata } from "@grpc/grpc-js";

/** Generous: several workers loading at once on a loaded 2-core machine; only a failing start waits it out. */
const READY_TIMEOUT_MS = 120_000;

export interface WorkerProcess {
  address: string;
  metricsUrl: string;
  client: WorkerClient;
  process: ChildProcess;
  info(): Promise<InfoResponse>;
  metric(name: string): Promise<number>;
  stop(): Promise<number | null>;
}

/**
 * credentials: how to reach it (default plaintext; pass TLS ones for a worker started with WORKER_TLS_*).
 * onLog: receives its stdout (the JSON log lines, as written) instead of the test's own stdout.
 */
export async function spawnWorker(
  env: Record<string, string>,
  channel: ChannelCredentials = credentials.createInsecure(),
  onLog?: (chunk: string) => void,
): Promise<WorkerProcess> {
  const port = await freePort();
  const metricsPort = await freePort();
  const child = killOnExit(
    spawn(process.execPath, [new URL("../main.ts", import.meta.url).pathname], {
      env: { ...process.env, LOG_LEVEL: "warn", ...env, WORKER_PORT: String(port), WORKER_METRICS_PORT: String(metricsPort) },
      stdio: ["ignore", onLog ? "pipe" : "inherit", "inherit"],
    }),
  );
  if (onLog) child.stdout?.setEncoding("utf8").on("data", onLog);
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const address = `127.0.0.1:${port}`;
  const health = new HealthClient(address, channel);
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    const status = await new Promise<number>((resolve) =>
      health.check({ service: "expertmesh.worker.v1.Worker" }, new Metadata(), { deadline: Date.now() + 1000 }, (err, res) =>
        resolve(err ? -1 : res.status),
      ),
    );
    if (status === HealthCheckResponse_ServingStatus.SERVING) break;
    if (child.exitCode !== null || Date.now() > deadline) {
      health.close();
      child.kill("SIGKILL");
      throw new Error(`worker process did not become ready (exit ${child.exitCode})`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  health.close();
  const client = new WorkerClient(address, channel);
  const metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
  let signalled = false;
  return {
    address,
    metricsUrl,
    client,
    process: child,
    info: () => new Promise((resolve, reject) => client.info({}, (err, res) => (err ? reject(err) : resolve(res)))),
    async metric(name: string) {
      const text = await (await fetch(metricsUrl)).text();
      return Number(new RegExp(`${name.replace(/[:]/g, "\\$&")}\\{[^}]*\\} ([\\d.e+-]+)`).exec(text)?.[1] ?? 0);
    },
    async stop() {
      // One SIGTERM (a second one makes close-with-grace exit at once); the client stays open so that
      // streams in flight can finish while the worker drains.
      if (child.exitCode === null && child.signalCode === null && !signalled) {
        signalled = true;
        child.kill("SIGTERM");
      }
      const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
      const code = await exited;
      clearTimeout(timer);
      client.close();
      return code;
    },
  };
}
