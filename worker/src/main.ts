#!/usr/bin/env node
/** Worker process entry: config → telemetry → startWorker → graceful shutdown on SIGTERM/SIGINT. */
import { ConfigError, createLogger, startTelemetry } from "@expertmesh/common";
import closeWithGrace from "close-with-grace";
import { startWorker } from "./app.ts";
import { loadWorkerConfig } from "./config.ts";

let config: ReturnType<typeof loadWorkerConfig>;
try {
  config = loadWorkerConfig();
} catch (err) {
  console.error(err instanceof ConfigError ? err.message : err);
  process.exit(2);
}
// An orchestrated worker's rank is its group's, bound per assignment by the group agent, not WORKER_RANK.
const rank = config.group.mode === "standalone" ? { rank: config.rank } : {};
const log = createLogger("worker", config.log_level).child({ workerId: config.worker_id, ...rank });
const telemetry = startTelemetry({ serviceName: "expertmesh-worker" });
let worker: Awaited<ReturnType<typeof startWorker>>;
try {
  worker = await startWorker(config, log);
} catch (err) {
  // A checkpoint the loader refuses (a NativeError naming the file, key and value) is a startup
  // failure: one log line and a non-zero exit, not an uncaught-exception dump.
  log.fatal({ err }, `startup failed: ${err instanceof Error ? err.message : String(err)}`);
  await telemetry.shutdown();
  process.exit(1);
}

closeWithGrace({ delay: config.shutdown_grace_ms }, async ({ signal, err }) => {
  if (err) log.error({ err }, "fatal error, shutting down");
  else log.info({ signal }, "shutting down");
  await worker.close();
  await telemetry.shutdown();
});
