#!/usr/bin/env node
/**
 * Gateway process entry: config → telemetry → createServer → listen → graceful shutdown. With
 * http.processes > 1 this process becomes the primary (cluster/primary.ts) and each of its children runs
 * the same entry as one gateway of the N, with its share of the in-process limits (cluster/per-process.ts).
 */
import cluster from "node:cluster";
import { AggregatorRegistry, ConfigError, createLogger, createMetricsRegistry, type Logger, startTelemetry } from "@expertmesh/common";
import { HarmonyTokenizer, Special } from "@expertmesh/grammar/tokenizer";
import closeWithGrace from "close-with-grace";
import { ThreadJsonParser } from "./adapters/json-threads.ts";
import { OrchestratorDirectory } from "./adapters/orchestrator-directory.ts";
import { PrimaryRateLimiter } from "./adapters/primary-rate-limiter.ts";
import { PrimaryResponseStore } from "./adapters/primary-response-store.ts";
import { promptThreadMetrics, ThreadPromptPreparer } from "./adapters/prompt-threads.ts";
import { createRedisPorts } from "./adapters/redis-ports.ts";
import { WorkerPool, workerPoolOptions } from "./adapters/worker-pool.ts";
import { perProcessConfig } from "./cluster/per-process.ts";
import { runPrimary } from "./cluster/primary.ts";
import { type Port, PrimaryChannel } from "./cluster/primary-channel.ts";
import { sharedStateHandlers } from "./cluster/shared-state.ts";
import { type GatewayConfig, loadGatewayConfig } from "./config.ts";
import { AnyApiKeys, ApiKeys } from "./domain/api-keys.ts";
import { MemoryRateLimiter } from "./domain/rate-limiter.ts";
import { MemoryResponseStore } from "./domain/responses/store.ts";
import { createServer } from "./server.ts";

let loaded: GatewayConfig;
try {
  loaded = loadGatewayConfig();
} catch (err) {
  console.error(err instanceof ConfigError ? err.message : err);
  process.exit(2);
}
if (cluster.isPrimary && loaded.http.processes > 1) {
  runPrimary({
    processes: loaded.http.processes,
    shutdownGraceMs: loaded.shutdown_grace_ms,
    log: createLogger("gateway", loaded.log_level).child({ role: "primary" }),
    // Without Redis the children share rate-limit windows and stored responses through this process.
    handlers: sharedStateHandlers(new MemoryRateLimiter(), new MemoryResponseStore()),
  });
} else await serve(cluster.isWorker ? perProcessConfig(loaded) : loaded);

/** One gateway: the whole service, or one of the primary's children. */
async function serve(config: GatewayConfig): Promise<void> {
  const log = createLogger("gateway", config.log_level);
  const telemetry = startTelemetry({ serviceName: "expertmesh-gateway" });
  const directory = new OrchestratorDirectory(config.orchestrator.address, config.orchestrator.refresh_ms, log);
  const registry = createMetricsRegistry("gateway");
  const backend = new WorkerPool(directory, log, { ...workerPoolOptions(config.router), pinOnTokenIds: [Special.call], registry });
  const shared = sharedPorts(config, log, registry);
  if (!shared.keys.required) log.warn("no API keys are configured: authentication is disabled (local development only)");
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
  const { redis, batches, ...ports } = shared;
  const app = createServer({
    config,
    log,
    directory,
    registry,
    backend,
    tokenizer: new HarmonyTokenizer(),
    ...(prompts ? { prompts } : {}),
    ...(bodyParser ? { bodyParser } : {}),
    ...ports,
    ...(batches ? { batches } : {}),
  });
  const address = await app.listen({ host: config.http.host, port: config.http.port });
  log.info({ address }, "gateway listening");

  // A child ignores SIGINT: a terminal's Ctrl-C reaches the whole process group, and the primary turns it
  // into the one SIGTERM each child drains on (a second signal would make close-with-grace exit at once).
  if (cluster.isWorker) process.on("SIGINT", () => {});
  closeWithGrace({ delay: config.shutdown_grace_ms, ...(cluster.isWorker ? { skip: ["SIGINT"] } : {}) }, async ({ signal, err }) => {
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
}

/**
 * Keys, limits, stored responses, batches and /metrics: Redis-backed when redis_url is set (shared by every
 * process and replica; they fail fast with 503 store_unavailable while Redis is down, adapters/redis-ports.ts).
 * Without Redis: in this process, or, in a child of a multi-process gateway, in the primary.
 */
function sharedPorts(config: GatewayConfig, log: Logger, registry: ReturnType<typeof createMetricsRegistry>) {
  const ports = config.redis_url ? createRedisPorts(config, log) : undefined;
  const channel = cluster.isWorker
    ? new PrimaryChannel(process as Port, { timeoutMs: config.redis_timeout_ms, retryAfterMs: config.admission.retry_after_ms })
    : undefined;
  if (channel) {
    // The primary sums every child's registry for /metrics, whichever child the scrape reaches.
    AggregatorRegistry.setRegistries([registry]);
    new AggregatorRegistry();
  }
  const configured = ApiKeys.load(config.api_keys, config.api_keys_file);
  return {
    redis: ports?.redis,
    // The Files and Batches API needs Redis (shared with the orchestrator's batch runners).
    batches: ports?.batches,
    // Without Redis, background responses run in the process that took them (InProcessBackgroundQueue).
    ...(ports ? { background: ports.background } : {}),
    keys: ports?.keys ? new AnyApiKeys([configured, ports.keys]) : configured,
    limiter: ports?.limiter ?? (channel ? new PrimaryRateLimiter(channel) : new MemoryRateLimiter()),
    responses: ports?.responses ?? (channel ? new PrimaryResponseStore(channel) : new MemoryResponseStore()),
    ...(channel ? { metrics: () => channel.call<string>("metrics"), processTag: String(process.pid) } : {}),
  };
}
