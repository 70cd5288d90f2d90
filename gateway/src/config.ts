/** Gateway configuration, validated once at startup (GATEWAY_CONFIG_FILE, then env). */
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { flag, loadConfig } from "@expertmesh/common/config"; // not the index: a CLI reading config loads no telemetry
import { z } from "zod";

const positive = z.coerce.number().int().positive();
/** A token budget: 0 = none; at most the wire's uint32. */
const budget = z.coerce
  .number()
  .int()
  .min(0)
  .max(2 ** 32 - 1);
const csv = z.preprocess(
  (v) =>
    typeof v === "string"
      ? v
          .split(",")
          .map((s) => s.trim())
          .filter(Boolean)
      : v,
  z.array(z.string().min(8, "API keys must be at least 8 characters")),
);

export const GatewayConfigSchema = z
  .object({
    log_level: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
    http: z
      .object({
        host: z.string().min(1).default("127.0.0.1"),
        port: z.coerce.number().int().min(0).max(65535).default(8080),
        body_limit_bytes: positive.default(8 * 1024 * 1024),
        /**
         * Receiving one request body may take at most body_timeout_ms in all, with no gap between bytes
         * longer than body_idle_timeout_ms (beyond either: 408 and the connection closed). The total is
         * sized for a max_file_bytes upload at ~1 MB/s; raise it for slower links.
         */
        body_timeout_ms: positive.default(300_000),
        body_idle_timeout_ms: positive.default(30_000),
        /**
         * Gateway processes sharing the port (node:cluster: a primary that accepts connections and hands
         * them round-robin to N children, restarts a child that dies, and forwards SIGTERM/SIGINT). With
         * more than one, the in-process limits below are per process (divided: cluster/per-process.ts),
         * and rate limits and stored responses are kept by the primary when redis_url is empty.
         */
        processes: z.coerce.number().int().min(1).max(64).default(1),
      })
      .prefault({}),
    /** Bearer keys accepted on /v1/*. Empty disables auth (local development only; logged as a warning). */
    api_keys: csv.default([]),
    /** YAML/JSON file of hashed keys: {keys: [{id, sha256, project?, requests_per_minute?, tokens_per_minute?}]}. */
    api_keys_file: z.string().default(""),
    /**
     * Where keys live: `config` (api_keys and api_keys_file only) or `redis` (keys managed with the key CLI
     * in redis_url, hashed; api_keys / api_keys_file are accepted too, e.g. as a bootstrap key). With
     * `redis` auth is always on.
     */
    api_keys_store: z.enum(["config", "redis"]).default("config"),
    /** How long a Redis key lookup is cached: a revoked key stops working within this. */
    api_keys_cache_ms: positive.default(5_000),
    limits: z
      .object({
        /** Default requests per minute per key; 0 = unlimited. */
        requests_per_minute: z.coerce.number().int().min(0).default(0),
        /** Default tokens (prompt + completion) per minute per key; 0 = unlimited. */
        tokens_per_minute: z.coerce.number().int().min(0).default(0),
      })
      .prefault({}),
    /** Redis for shared rate limits and stored responses across gateway replicas; empty = in-process. */
    redis_url: z.string().default(""),
    /** A Redis command (or a Files/Batches call) not answered within this is a 503 store_unavailable. */
    redis_timeout_ms: positive.default(2_000),
    /** How long stored responses (/v1/responses, previous_response_id) are kept. */
    response_retention_ms: positive.default(30 * 24 * 3600 * 1000),
    orchestrator: z
      .object({
        /** Membership service address used to discover workers. */
        address: z.string().default("127.0.0.1:50050"),
        refresh_ms: positive.default(2_000),
      })
      .prefault({}),
    /** Routing to workers: retries before the first token and the grpc.health.v1 watches. */
    router: z
      .object({
        /** Most workers one generation is tried on before its first token (never one twice). */
        max_attempts: positive.default(3),
        /** How often the worker list is compared with the open health watches. */
        sync_ms: positive.default(500),
        /** Reconnect backoff of a failed health watch (and the worker channel): first delay, cap. */
        health_backoff_initial_ms: positive.default(100),
        health_backoff_max_ms: positive.default(5_000),
        /** Delay before re-watching a worker that reported NOT_SERVING. */
        health_recheck_ms: positive.default(250),
        /**
         * TLS to the workers (empty: plaintext, for loopback and meshes that encrypt). ca_file: the CA
         * that signed the workers' certificates (empty: the system roots); cert_file + key_file: this
         * gateway's client certificate, for workers that require mutual TLS (tls.client_ca_file).
         */
        tls_ca_file: z.string().default(""),
        tls_cert_file: z.string().default(""),
        tls_key_file: z.string().default(""),
        /**
         * cache_aware: a tool loop's next turn goes to the group holding its pinned KV, others to the
         * group cheapest by cached prefix against load (README: cache-aware routing); least_load: the
         * fewest outstanding tokens, always.
         */
        policy: z.enum(["cache_aware", "least_load"]).default("cache_aware"),
        /** cost(g) = (P − cached(g)) + weight × P × load(g): how many prompts' worth one queued request counts. */
        cache_load_weight: z.coerce.number().min(0).max(100).default(0.25),
        /** How long a generation that ended in a tool call keeps its KV pinned for the follow-up turn (0: never). */
        tool_pin_ms: z.coerce.number().int().min(0).max(3_600_000).default(120_000),
      })
      .prefault({}),
    /** Admission control of generations at this gateway (beyond it: 429 with retry-after). */
    admission: z
      .object({
        max_concurrent: positive.default(512),
        max_queued: z.coerce.number().int().min(0).default(1024),
        queue_timeout_ms: positive.default(30_000),
        retry_after_ms: positive.default(1_000),
        /** false sends x-should-retry: false on 429/5xx, which the openai SDKs obey (no client retries). */
        client_retries: flag.default(true),
      })
      .prefault({}),
    /**
     * The pages the gateway serves (@expertmesh/ui): the playground at / and the dashboard at /dashboard.
     * The dashboard reads the gateway's own /metrics every dashboard_sample_ms while it is watched, and
     * charts the last dashboard_history_ms.
     */
    ui: z
      .object({
        enabled: flag.default(true),
        dashboard_sample_ms: z.coerce.number().int().min(250).default(2000),
        dashboard_history_ms: z.coerce.number().int().min(10_000).default(600_000),
      })
      .prefault({}),
    /**
     * Scale from zero: while no engine group serving a model is ready, its generations wait here (at most
     * max_parked, each up to timeout_ms) and expertmesh_gateway_requests_parked is what an autoscaler
     * scales the model's groups on. max_parked 0 turns it off (no ready group: 503 at once).
     */
    parking: z
      .object({
        max_parked: z.coerce.number().int().min(0).default(0),
        timeout_ms: positive.default(120_000),
        poll_ms: positive.default(250),
        /** Models the cluster serves even while all their groups are scaled to zero. */
        models: z
          .preprocess(
            (v) =>
              typeof v === "string"
                ? v
                    .split(",")
                    .map((s) => s.trim())
                    .filter(Boolean)
                : v,
            z.array(z.string().min(1)),
          )
          .default([]),
      })
      .prefault({}),
    /** max_tokens when a request gives none. */
    default_max_tokens: positive.default(4096),
    /**
     * The Harmony structure guard of constrained decoding (chat and Responses): the model may only write
     * valid Harmony headers. A request's `harmony_guard` overrides it; /v1/completions is never guarded.
     */
    harmony_guard: flag.default(true),
    /**
     * Reasoning budget (tokens of the analysis channel) per reasoning effort, for a request that sets
     * none (max_reasoning_tokens, reasoning.max_tokens); 0 = no budget. Below default_max_tokens.
     */
    reasoning_budget: z.object({ low: budget.default(0), medium: budget.default(0), high: budget.default(0) }).prefault({}),
    /** The time one request may spend rendering and tokenizing its prompt; beyond, 400 prompt_too_complex. */
    render_budget_ms: positive.default(2000),
    /** Threads that render and tokenize prompts off the event loop (0: on it); one per spare core, at most 4. */
    render_threads: z.coerce
      .number()
      .int()
      .min(0)
      .max(64)
      .default(() => Math.max(1, Math.min(4, availableParallelism() - 1))),
    /** Prompts waiting for a render thread; beyond, 429 overloaded. */
    render_max_queued: z.coerce.number().int().min(0).default(256),
    /** The render threads' nice value: they yield the cores to the event loop and the engine (0: no change). */
    render_nice: z.coerce.number().int().min(0).max(19).default(10),
    /**
     * The most tokens a prompt may have, checked before it goes to a worker (which checks its own context
     * exactly): gpt-oss's context length, so a prompt no model can take costs no worker anything.
     */
    max_prompt_tokens: positive.default(131_072),
    /** A generation running longer than this ends with a timeout error (the worker is cancelled). */
    request_timeout_ms: positive.default(600_000),
    shutdown_grace_ms: positive.default(30_000),
    /** The git commit this build came from (the image's GIT_COMMIT build argument), shown by GET /version; empty: unknown. */
    build_commit: z.string().default(""),
    /**
     * Responses `background: true` (needs redis_url): BullMQ jobs that any gateway replica runs, up to
     * `concurrency` at a time each; a gateway that dies mid-run leaves its job locked, and after
     * lock_duration_ms another gateway (or the restarted one) runs it again from the start.
     */
    background: z
      .object({
        concurrency: positive.default(16),
        lock_duration_ms: positive.default(30_000),
        /** How often one response may be restarted after its gateway died before it is failed. */
        max_stalled_count: positive.default(3),
      })
      .prefault({}),
    /** The Files and Batches API (on when redis_url is set); the batch runners must share files_dir and Redis. */
    batches: z
      .object({
        files_dir: z.string().min(1).default(join(tmpdir(), "expertmesh-files")),
        max_file_bytes: positive.default(200 * 1024 * 1024),
        /** Batch lines in flight at this gateway while online generations run (the rest wait); 0 pauses them. */
        max_inflight_while_online: z.coerce.number().int().min(0).default(1),
        /** How long online traffic must have been quiet before batch lines run freely again. */
        online_quiet_ms: z.coerce.number().int().min(0).default(1_000),
        /** Redis key prefix shared with the orchestrator (ORCHESTRATOR_REDIS_KEY_PREFIX). */
        key_prefix: z.string().min(1).default("em:"),
      })
      .prefault({}),
  })
  .superRefine((c, ctx) => {
    if (c.api_keys_store === "redis" && !c.redis_url)
      ctx.addIssue({ code: "custom", path: ["redis_url"], message: "api_keys_store 'redis' needs redis_url (REDIS_URL)" });
    // A request without max_tokens gets default_max_tokens: its default budget must leave the answer room.
    for (const [effort, tokens] of Object.entries(c.reasoning_budget))
      if (tokens >= c.default_max_tokens)
        ctx.addIssue({
          code: "custom",
          path: ["reasoning_budget", effort],
          message: `reasoning_budget.${effort} (${tokens}) must be below default_max_tokens (${c.default_max_tokens}), or 0 for no budget`,
        });
  });

export type GatewayConfig = z.infer<typeof GatewayConfigSchema>;

export const gatewayEnv = {
  log_level: "LOG_LEVEL",
  "http.host": "GATEWAY_HOST",
  "http.port": "GATEWAY_PORT",
  "http.body_limit_bytes": "GATEWAY_BODY_LIMIT_BYTES",
  "http.body_timeout_ms": "GATEWAY_BODY_TIMEOUT_MS",
  "http.body_idle_timeout_ms": "GATEWAY_BODY_IDLE_TIMEOUT_MS",
  "http.processes": "GATEWAY_PROCESSES",
  api_keys: "GATEWAY_API_KEYS",
  api_keys_file: "GATEWAY_API_KEYS_FILE",
  api_keys_store: "GATEWAY_API_KEYS_STORE",
  api_keys_cache_ms: "GATEWAY_API_KEYS_CACHE_MS",
  "limits.requests_per_minute": "GATEWAY_REQUESTS_PER_MINUTE",
  "limits.tokens_per_minute": "GATEWAY_TOKENS_PER_MINUTE",
  redis_url: "REDIS_URL",
  redis_timeout_ms: "GATEWAY_REDIS_TIMEOUT_MS",
  response_retention_ms: "GATEWAY_RESPONSE_RETENTION_MS",
  "orchestrator.address": "GATEWAY_ORCHESTRATOR_ADDRESS",
  "orchestrator.refresh_ms": "GATEWAY_DISCOVERY_REFRESH_MS",
  "router.max_attempts": "GATEWAY_ROUTER_MAX_ATTEMPTS",
  "router.sync_ms": "GATEWAY_ROUTER_SYNC_MS",
  "router.policy": "GATEWAY_ROUTER_POLICY",
  "router.cache_load_weight": "GATEWAY_ROUTER_CACHE_LOAD_WEIGHT",
  "router.tool_pin_ms": "GATEWAY_TOOL_PIN_MS",
  "router.health_backoff_initial_ms": "GATEWAY_HEALTH_BACKOFF_INITIAL_MS",
  "router.health_backoff_max_ms": "GATEWAY_HEALTH_BACKOFF_MAX_MS",
  "router.health_recheck_ms": "GATEWAY_HEALTH_RECHECK_MS",
  "router.tls_ca_file": "GATEWAY_WORKER_TLS_CA_FILE",
  "router.tls_cert_file": "GATEWAY_WORKER_TLS_CERT_FILE",
  "router.tls_key_file": "GATEWAY_WORKER_TLS_KEY_FILE",
  default_max_tokens: "GATEWAY_DEFAULT_MAX_TOKENS",
  harmony_guard: "GATEWAY_HARMONY_GUARD",
  "reasoning_budget.low": "GATEWAY_REASONING_BUDGET_LOW",
  "reasoning_budget.medium": "GATEWAY_REASONING_BUDGET_MEDIUM",
  "reasoning_budget.high": "GATEWAY_REASONING_BUDGET_HIGH",
  request_timeout_ms: "GATEWAY_REQUEST_TIMEOUT_MS",
  render_budget_ms: "GATEWAY_RENDER_BUDGET_MS",
  render_threads: "GATEWAY_RENDER_THREADS",
  render_max_queued: "GATEWAY_RENDER_MAX_QUEUED",
  render_nice: "GATEWAY_RENDER_NICE",
  max_prompt_tokens: "GATEWAY_MAX_PROMPT_TOKENS",
  "admission.max_concurrent": "GATEWAY_MAX_CONCURRENT",
  "admission.max_queued": "GATEWAY_MAX_QUEUED",
  "admission.queue_timeout_ms": "GATEWAY_QUEUE_TIMEOUT_MS",
  "admission.retry_after_ms": "GATEWAY_RETRY_AFTER_MS",
  "admission.client_retries": "GATEWAY_CLIENT_RETRIES",
  "ui.enabled": "GATEWAY_UI",
  "ui.dashboard_sample_ms": "GATEWAY_DASHBOARD_SAMPLE_MS",
  "ui.dashboard_history_ms": "GATEWAY_DASHBOARD_HISTORY_MS",
  "parking.max_parked": "GATEWAY_PARKING_MAX",
  "parking.timeout_ms": "GATEWAY_PARKING_TIMEOUT_MS",
  "parking.poll_ms": "GATEWAY_PARKING_POLL_MS",
  "parking.models": "GATEWAY_PARKING_MODELS",
  shutdown_grace_ms: "GATEWAY_SHUTDOWN_GRACE_MS",
  build_commit: "EXPERTMESH_GIT_COMMIT",
  "background.concurrency": "GATEWAY_BACKGROUND_CONCURRENCY",
  "background.lock_duration_ms": "GATEWAY_BACKGROUND_LOCK_DURATION_MS",
  "background.max_stalled_count": "GATEWAY_BACKGROUND_MAX_STALLED_COUNT",
  "batches.files_dir": "EXPERTMESH_FILES_DIR",
  "batches.max_file_bytes": "GATEWAY_MAX_FILE_BYTES",
  "batches.max_inflight_while_online": "GATEWAY_BATCH_MAX_INFLIGHT_WHILE_ONLINE",
  "batches.online_quiet_ms": "GATEWAY_BATCH_ONLINE_QUIET_MS",
  "batches.key_prefix": "ORCHESTRATOR_REDIS_KEY_PREFIX",
} as const;

export function loadGatewayConfig(env: NodeJS.ProcessEnv = process.env): GatewayConfig {
  return loadConfig({ service: "gateway", schema: GatewayConfigSchema, fileEnv: "GATEWAY_CONFIG_FILE", env: gatewayEnv }, env);
}
