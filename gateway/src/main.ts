#!/usr/bin/env node
/** Gateway process entry: config → telemetry → createServer → listen → graceful shutdown. */
import { ConfigError, createLogger, createMetricsRegistry, startTelemetry } from "@expertmesh/common";
import closeWithGrace from "close-with-grace";
import { ThreadJsonParser } from "./adapters/json-threads.ts";
import { OrchestratorDirectory } from "./adapters/orchestrator-directory.ts";
import { promptThreadMetrics, ThreadPromptPreparer } from "./adapters/prompt-threads.ts";
import { createRedisPorts } from "./adapters/redis-ports.ts";
import { WorkerPool, workerPoolOptions } from "./adapters/worker-pool.ts";
import { loadGatewayConfig } from "./config.ts";
import { AnyApiKeys, ApiKeys } from "./domain/api-keys.ts";
import { HarmonyTokenizer } from "./domain/harmony/tokenizer.ts";
import { MemoryRateLimiter } from "./domain/rate-limiter.ts";
import { MemoryResponseStore } from "./domain/responses/store.ts";
import { createServer } from "./server.ts";

let config: ReturnType<typeof loadGatewayConfig>;
try {
  config = loadGatewayConfig();
} catch (err) {
  console.error(err instanceof ConfigError ? err.message : err);
  process.exit(2);
}
const log = createLogger("gateway", config.log_level);
const telemetry = startTelemetry({ serviceName: "expertmesh-gateway" });
const directory = new OrchestratorDirectory(config.orchestrator.address, config.orchestrator.refresh_ms, log);
const backend = new WorkerPool(directory, log, workerPoolOptions(config.router));
const tokenizer = new HarmonyTokenizer();
// Redis-backed ports fail fast with 503 store_unavailable while Redis is down (adapters/redis-ports.ts).
const ports = config.redis_url ? createRedisPorts(config, log) : undefined;
const redis = ports?.redis;
const limiter = ports?.limiter ?? new MemoryRateLimiter();
const configured = ApiKeys.load(config.api_keys, config.api_keys_file);
const keys = ports?.keys ? new AnyApiKeys([configured, ports.keys]) : configured;
if (!keys.required) log.warn("no API keys are configured: authentication is disabled (local development only)");
const responses = ports?.responses ?? new MemoryResponseStore();
// The Files and Batches API needs Redis (shared with the orchestrator's batch runners).
const batches = ports?.batches;
const registry = createMetricsRegistry("gateway");
const prompts =
  config.render_threads > 0
    ? new ThreadPromptPreparer({
        threads: config.render_threads,
        maxQueued: config.render_max_queued,
        nice: config.render_nice,
        retryAfterMs: config.admission.retry_after_ms,
        metrics: promptThreadMetrics(registry),
      })
    : undefined;
const bodyParser = config.render_threads > 0 ? new ThreadJsonParser({ nice: config.render_nice }) : undefined;
const app = createServer({
  config,
  log,
  directory,
  registry,
  backend,
  tokenizer,
  ...(prompts ? { prompts } : {}),
  ...(bodyParser ? { bodyParser } : {}),
  keys,
  limiter,
  responses,
  ...(batches ? { batches } : {}),
});
const address = await app.listen({ host: config.http.host, port: config.http.port });
log.info({ address }, "gateway listening");

closeWithGrace({ delay: config.shutdown_grace_ms }, async ({ signal, err }) => {
  if (err) log.error({ err }, "fatal error, shutting down");
  else log.info({ signal }, "shutting down");
  await app.close();
  await prompts?.close();
  await bodyParser?.close();
  backend.close();
  await batches?.close();
  await redis?.quit();
  directory.close();
  await telemetry.shutdown();
});
