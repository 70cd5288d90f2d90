#!/usr/bin/env node
/** Orchestrator process entry: config → telemetry → startOrchestrator → graceful shutdown. */
import { ConfigError, createLogger, startTelemetry } from "@expertmesh/common";
import closeWithGrace from "close-with-grace";
import { startOrchestrator } from "./app.ts";
import { loadOrchestratorConfig } from "./config.ts";

let config: ReturnType<typeof loadOrchestratorConfig>;
try {
  config = loadOrchestratorConfig();
} catch (err) {
  console.error(err instanceof ConfigError ? err.message : err);
  process.exit(2);
}
const log = createLogger("orchestrator", config.log_level).child({ instanceId: config.instance_id });
const telemetry = startTelemetry({ serviceName: "expertmesh-orchestrator" });
const orchestrator = await startOrchestrator(config, log);

closeWithGrace({ delay: config.shutdown_grace_ms }, async ({ signal, err }) => {
  if (err) log.error({ err }, "fatal error, shutting down");
  else log.info({ signal }, "shutting down");
  await orchestrator.close();
  await telemetry.shutdown();
});
