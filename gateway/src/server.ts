/**
 * createServer(deps): the gateway's HTTP app (Fastify), with no side effects beyond what deps provide.
 * Cross-cutting behaviour lives here: request ids, auth, OpenAI-shaped errors, metrics.
 */
import { randomUUID } from "node:crypto";
import { AppError, Counter, Gauge, Histogram, type Logger, type Registry } from "@expertmesh/common";
import type { HarmonyTokenizer } from "@expertmesh/grammar/tokenizer";
import type { BatchApi } from "@expertmesh/orchestrator/batches";
import { UI_DIST_DIR } from "@expertmesh/ui";
import Fastify, { type FastifyBaseLogger, type FastifyError, type FastifyInstance, LogController } from "fastify";
import { genAiMetrics, ObservedBackend } from "./adapters/observed-backend.ts";
import type { GatewayConfig } from "./config.ts";
import { Admission, AdmittingBackend } from "./domain/admission.ts";
import { AnyApiKeys, type ApiKeySource, ApiKeys } from "./domain/api-keys.ts";
import { BatchGate } from "./domain/batches/batch-gate.ts";
import { BatchLineKeys } from "./domain/batches/batch-line-keys.ts";
import { BatchPriorityBackend } from "./domain/batches/batch-priority-backend.ts";
import type { GenerationBackend } from "./domain/generation-backend.ts";
import { ParkingBackend } from "./domain/parking.ts";
import { InlinePromptPreparer, type PromptPreparer } from "./domain/prompt-preparer.ts";
import { MemoryRateLimiter, type RateLimiter } from "./domain/rate-limiter.ts";
import { type BackgroundQueue, InProcessBackgroundQueue } from "./domain/responses/background.ts";
import { MemoryResponseStore, type ResponseStore } from "./domain/responses/store.ts";
import { TokenLimitedBackend } from "./domain/token-limits.ts";
import type { WorkerDirectory } from "./domain/worker-directory.ts";
import { gatewayErrors } from "./errors.ts";
import { createAuthHook } from "./http/auth.ts";
import { answerBodyTooLarge, isBodyTooLarge } from "./http/body-limit.ts";
import { boundBodyTime } from "./http/body-timeout.ts";
import { frameworkError } from "./http/framework-errors.ts";
import { type JsonBodyParser, registerJsonBody } from "./http/json-body.ts";
import { registerBatchRoutes } from "./http/routes/batches.ts";
import { registerChatCompletions } from "./http/routes/chat-completions.ts";
import { registerCompletions } from "./http/routes/completions.ts";
import { registerDashboardApi } from "./http/routes/dashboard.ts";
import { registerFileRoutes } from "./http/routes/files.ts";
import { registerHealthRoutes } from "./http/routes/health.ts";
import { registerModelRoutes } from "./http/routes/models.ts";
import { registerResponses } from "./http/routes/responses.ts";
import { registerTokenizeRoutes } from "./http/routes/tokenize.ts";
import { registerUiPages } from "./http/routes/ui.ts";
import { registerVersionRoute } from "./http/routes/version.ts";

export interface GatewayDeps {
  config: GatewayConfig;
  log: Logger;
  directory: WorkerDirectory;
  registry: Registry;
  /** Required with api_keys_store 'redis'; built from api_keys / api_keys_file when not given. */
  keys?: ApiKeySource;
  /** Request and token limits; in-process when not given. */
  limiter?: RateLimiter;
  /** Chat routes are registered when a backend and a tokenizer are given. */
  backend?: GenerationBackend;
  tokenizer?: HarmonyTokenizer;
  /** Where prompts are rendered and tokenized; on the event loop (inline) when not given. */
  prompts?: PromptPreparer;
  /** Where large JSON bodies are parsed; on the event loop when not given. */
  bodyParser?: JsonBodyParser;
  /** Stored responses for /v1/responses; in-process when not given. */
  responses?: ResponseStore;
  /** Where background responses run (Redis: BullMQ, any replica); in this process when not given. */
  background?: BackgroundQueue;
  /** Admission control; built from config.admission when not given. */
  admission?: Admission;
  /** The Files and Batches API (needs Redis); its routes are registered when given. */
  batches?: BatchApi;
  /** What GET /metrics answers (one of several gateway processes: all of theirs, summed); the registry's text when not given. */
  metrics?: () => Promise<string>;
  /**
   * One of several gateway processes sharing the port: sent as `x-expertmesh-gateway-process` on every
   * response (its pid), so an operator or a test can tell which process answered. Absent: no header.
   */
  processTag?: string;
  /** Where the built pages are (@expertmesh/ui's dist/ when not given). */
  uiDistDir?: string;
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
/** JSON bodies from this size up are parsed off the event loop (when a parser thread is given). */
const OFF_THREAD_JSON_BYTES = 256 * 1024;

export function createServer(deps: GatewayDeps): FastifyInstance {
  const app = Fastify({
    loggerInstance: deps.log as FastifyBaseLogger,
    bodyLimit: deps.config.http.body_limit_bytes,
    ajv: { customOptions: { allowUnionTypes: true } },
    genReqId: (req) => {
      const given = req.headers["x-request-id"];
      return typeof given === "string" && REQUEST_ID.test(given) ? given : `req_${randomUUID().replaceAll("-", "")}`;
    },
    logController: new LogController({ requestIdLogLabel: "reqId", disableRequestLogging: true }),
    frameworkErrors: frameworkError,
  });

  const duration = new Histogram({
    name: "expertmesh_gateway_http_request_duration_seconds",
    help: "HTTP request duration by route and status",
    labelNames: ["method", "route", "status"] as const,
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120],
    registers: [deps.registry],
  });

  if (!deps.keys && deps.config.api_keys_store === "redis")
    throw new Error("api_keys_store 'redis': createServer needs deps.keys (a RedisApiKeys)");
  const limiter = deps.limiter ?? new MemoryRateLimiter();
  const lineKeys = deps.batches ? new BatchLineKeys(deps.batches.batches) : undefined;
  const processTag = deps.processTag;
  app.addHook("onRequest", async (request, reply) => {
    reply.header("x-request-id", request.id);
    if (processTag !== undefined) reply.header("x-expertmesh-gateway-process", processTag);
  });
  // Before auth: a body that trickles in is bounded whoever sends it.
  const { body_timeout_ms: totalMs, body_idle_timeout_ms: idleMs } = deps.config.http;
  boundBodyTime(app, { totalMs, idleMs, registry: deps.registry });
  registerJsonBody(app, {
    limit: deps.config.http.body_limit_bytes,
    ...(deps.bodyParser ? { parser: deps.bodyParser } : {}),
    offThreadBytes: OFF_THREAD_JSON_BYTES,
  });
  app.addHook(
    "onRequest",
    createAuthHook({
      keys: withBatchLineKeys(deps.keys ?? ApiKeys.load(deps.config.api_keys, deps.config.api_keys_file), lineKeys),
      limiter,
      requestsPerMinute: deps.config.limits.requests_per_minute,
    }),
  );
  // With auth off the hook above skips every request: batch lines still identify as such (batch priority).
  if (lineKeys)
    app.addHook("onRequest", async (request) => {
      const bearer = /^Bearer\s+(sk-em-batch-\S+)$/i.exec(request.headers.authorization ?? "")?.[1];
      if (!request.apiKey && bearer) request.apiKey = await lineKeys.find(bearer);
    });
  app.addHook("onResponse", async (request, reply) => {
    duration.observe(
      { method: request.method, route: request.routeOptions.url ?? "unmatched", status: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
  });

  app.setNotFoundHandler(async (request) => {
    throw gatewayErrors.create("not_found", { method: request.method, url: request.url.split("?")[0] ?? "" });
  });
  app.setErrorHandler(async (error: FastifyError | AppError, request, reply) => {
    if (error instanceof AppError) {
      if (error.retryAfterMs !== undefined)
        reply.header("retry-after", Math.ceil(error.retryAfterMs / 1000)).header("retry-after-ms", error.retryAfterMs);
      // The openai SDKs obey x-should-retry: operators can stop client retry storms under overload (R2).
      if (error.http === 429 || error.http >= 500)
        reply.header("x-should-retry", String(error.retryable && deps.config.admission.client_retries));
      return reply.code(error.http).send(error.toOpenAi());
    }
    if (isBodyTooLarge(error)) return answerBodyTooLarge(request, reply, deps.config.http.body_limit_bytes);
    const status = (error as FastifyError).statusCode ?? 500;
    if (status >= 400 && status < 500) {
      // Validation errors name the offending field as OpenAI's `param`.
      const validation = (error as FastifyError).validation?.[0];
      const param = validation?.instancePath ? validation.instancePath.replace(/^\//, "").replaceAll("/", ".") : undefined;
      const appErr = gatewayErrors.create("invalid_request_error", { detail: error.message }, param ? { param } : {});
      return reply.code(status).send(appErr.toOpenAi());
    }
    request.log.error({ err: error }, "unhandled error");
    return reply.code(500).send(gatewayErrors.create("server_error", { requestId: request.id }).toOpenAi());
  });

  // With parking on, a gateway takes requests (and parks them) while every engine group is scaled to zero.
  registerHealthRoutes(app, deps.directory, {
    parking: deps.config.parking.max_parked > 0,
    registry: deps.registry,
    ...(deps.backend ? { backend: deps.backend } : {}),
  });
  registerModelRoutes(app, deps.directory);
  registerVersionRoute(app, deps.directory, deps.config.build_commit);
  if (deps.batches) {
    registerFileRoutes(app, {
      service: deps.batches.service,
      maxFileBytes: deps.config.batches.max_file_bytes,
      maxLineBytes: deps.config.http.body_limit_bytes,
    });
    registerBatchRoutes(app, deps.batches.service);
  }
  if (deps.backend && deps.tokenizer) {
    const admission =
      deps.admission ??
      new Admission({
        maxConcurrent: deps.config.admission.max_concurrent,
        maxQueued: deps.config.admission.max_queued,
        queueTimeoutMs: deps.config.admission.queue_timeout_ms,
        retryAfterMs: deps.config.admission.retry_after_ms,
      });
    new Gauge({
      name: "expertmesh_gateway_generations_running",
      help: "Generations admitted and in flight at this gateway",
      registers: [deps.registry],
      collect() {
        this.set(admission.running);
      },
    });
    new Gauge({
      name: "expertmesh_gateway_generations_queued",
      help: "Generations waiting for an admission slot at this gateway",
      registers: [deps.registry],
      collect() {
        this.set(admission.queued);
      },
    });
    // Outermost first: token limits (refused before queueing), telemetry, admission, the engine groups.
    const admitted = new AdmittingBackend(withParking(deps.backend, deps, app), admission);
    const metrics = genAiMetrics(deps.registry);
    const tokenLimits = {
      limiter,
      tokensPerMinute: deps.config.limits.tokens_per_minute,
      onChargeError: (err: unknown) => deps.log.warn({ err }, "charging completion tokens failed"),
    };
    // Batch lines (batch credentials) go to the workers at batch priority; outermost: it reads the caller.
    const gate = new BatchGate(deps.config.batches.max_inflight_while_online, deps.config.batches.online_quiet_ms);
    const batchAware = (b: GenerationBackend) => (deps.batches ? new BatchPriorityBackend(b, gate) : b);
    const backend = batchAware(new TokenLimitedBackend(new ObservedBackend(admitted, "chat", metrics), tokenLimits));
    const limits = {
      defaultMaxTokens: deps.config.default_max_tokens,
      requestTimeoutMs: deps.config.request_timeout_ms,
      renderBudgetMs: deps.config.render_budget_ms,
      maxPromptTokens: deps.config.max_prompt_tokens,
      prompts: deps.prompts ?? new InlinePromptPreparer(deps.tokenizer),
      harmonyGuard: deps.config.harmony_guard,
      reasoningBudgets: deps.config.reasoning_budget,
    };
    registerChatCompletions(app, { backend, tokenizer: deps.tokenizer, ...limits });
    registerCompletions(app, {
      backend: batchAware(new TokenLimitedBackend(new ObservedBackend(admitted, "text_completion", metrics), tokenLimits)),
      tokenizer: deps.tokenizer,
      requestTimeoutMs: deps.config.request_timeout_ms,
      renderBudgetMs: deps.config.render_budget_ms,
      maxPromptTokens: deps.config.max_prompt_tokens,
      prompts: limits.prompts,
    });
    registerTokenizeRoutes(app, {
      tokenizer: deps.tokenizer,
      prompts: limits.prompts,
      renderBudgetMs: limits.renderBudgetMs,
      maxPromptTokens: limits.maxPromptTokens,
    });
    const background = deps.background ?? new InProcessBackgroundQueue();
    app.addHook("onClose", async () => background.close());
    registerResponses(app, {
      backend,
      tokenizer: deps.tokenizer,
      store: deps.responses ?? new MemoryResponseStore(),
      background,
      ...limits,
    });
  }
  const metrics = deps.metrics ?? (() => deps.registry.metrics());
  app.get("/metrics", async (_request, reply) => reply.type(deps.registry.contentType).send(await metrics()));
  if (deps.config.ui.enabled && registerUiPages(app, deps.uiDistDir ?? UI_DIST_DIR)) {
    const { dashboard_sample_ms: sampleMs, dashboard_history_ms: historyMs } = deps.config.ui;
    registerDashboardApi(app, {
      directory: deps.directory,
      metrics,
      sampleMs,
      historyMs,
      ...(deps.batches ? { batches: deps.batches.service } : {}),
    });
  }
  return app;
}

/** Batch runners authenticate with per-batch credentials beside the configured keys. */
function withBatchLineKeys(keys: ApiKeySource, lineKeys: BatchLineKeys | undefined): ApiKeySource {
  return lineKeys ? new AnyApiKeys([keys, lineKeys]) : keys;
}

/** Scale from zero (domain/parking.ts) around the engine groups, with its demand gauge; off when max_parked is 0. */
function withParking(engines: GenerationBackend, deps: GatewayDeps, app: FastifyInstance): GenerationBackend {
  const c = deps.config.parking;
  if (c.max_parked <= 0) return engines;
  const outcomes = new Counter({
    name: "expertmesh_gateway_parked_requests_total",
    help: "Generations that waited for an engine group of their model, by outcome (served, timeout, rejected, cancelled)",
    labelNames: ["model_name", "outcome"] as const,
    registers: [deps.registry],
  });
  const parking = new ParkingBackend(
    engines,
    {
      maxParked: c.max_parked,
      timeoutMs: c.timeout_ms,
      pollMs: c.poll_ms,
      retryAfterMs: deps.config.admission.retry_after_ms,
      models: c.models,
    },
    () => deps.directory.members().map((m) => m.model),
    { onOutcome: (model, outcome) => outcomes.inc({ model_name: model, outcome }) },
  );
  new Gauge({
    name: "expertmesh_gateway_requests_parked",
    help: "Generations waiting for an engine group of their model to become ready (the scale-from-zero demand)",
    labelNames: ["model_name"] as const,
    registers: [deps.registry],
    collect() {
      this.reset();
      for (const [model, n] of parking.parked()) this.set({ model_name: model }, n);
    },
  });
  app.addHook("onClose", async () => parking.close());
  return parking;
}
