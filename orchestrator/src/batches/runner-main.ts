#!/usr/bin/env node
/**
 * A batch runner on its own (no Membership service): scale runners independently of the orchestrator,
 * or kill them freely (R10). Same config as the orchestrator (ORCHESTRATOR_BATCH_*, REDIS_URL).
 */
import { ConfigError, createLogger, createMetricsRegistry, startMetricsServer, startTelemetry } from "@expertmesh/common";
import closeWithGrace from "close-with-grace";
import { loadOrchestratorConfig } from "../config.ts";
import { startConfiguredRunner } from "./runner-from-config.ts";

let config: ReturnType<typeof loadOrchestratorConfig>;
try {
  config = loadOrchestratorConfig();
} catch (err) {
  console.error(err instanceof ConfigError ? err.message : err);
  process.exit(2);
}
const log = createLogger("batch-runner", config.log_level).child({ instanceId: config.instance_id });
const telemetry = startTelemetry({ serviceName: "expertmesh-batch-runner" });
const registry = createMetricsRegistry("batch-runner");
const runner = await startConfiguredRunner(config, log, registry);
const metrics = config.batch.metrics_port > 0 ? await startMetricsServer(registry, config.grpc.host, config.batch.metrics_port) : undefined;
console.log("batch runner ready");

closeWithGrace({ delay: config.shutdown_grace_ms }, async ({ signal, err }) => {
  if (err) log.error({ err }, "fatal error, shutting down");
  else log.info({ signal }, "shutting down");
  metrics?.close();
  await runner.close();
  await telemetry.shutdown();
});
