/**
 * Worker configuration: one schema, validated once at startup (file from WORKER_CONFIG_FILE, then env).
 * Units are in the names. The Helm chart mounts the same keys as a YAML file.
 */
import { hostname } from "node:os";
import { ConfigError, flag, loadConfig } from "@expertmesh/common/config"; // not the index: a CLI reading config loads no telemetry
import { z } from "zod";
import { DEVICE_SETTING, resolveDevice } from "./engine/device.ts";

const port = z.coerce.number().int().min(0).max(65535);
const positive = z.coerce.number().int().positive();

export const WorkerConfigSchema = z.object({
  worker_id: z.string().min(1).default(`${hostname()}-${process.pid}`),
  log_level: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  model: z
    .object({
      /** Checkpoint directory (HF layout). Empty: no engine yet, the worker reports NOT_SERVING. */
      path: z.string().default(""),
      name: z.string().min(1).default("gpt-oss-20b"),
      /**
       * Numerics: default = the MXFP4 expert products take int8-digit activations and integer dot
       * products (AVX512-VNNI; 1.24× the exact decode rate at batch 1, 1.54× at batch 16; logits within
       * 3e-2 relative L2 of the fp32 reference); exact = fp32 activations everywhere. Every rank of a
       * group must agree.
       */
      precision: z.enum(["default", "exact"]).default("default"),
      /**
       * How the dense weights are read: bf16 as the checkpoint holds them; q8 converts the unembedding
       * to 8 bits with a scale per 32 weights at load (fewer bytes per decode step, within the serving
       * tolerances); q8-attention converts the attention projections too (fewer bytes still, at the
       * deviation docs/PERFORMANCE.md measures). Every rank of a group must agree.
       */
      dense_weights: z.enum(["bf16", "q8", "q8-attention"]).default("bf16"),
      /**
       * CPU: copy the weights once at load into anonymous memory in 2 MiB huge pages instead of reading
       * the checkpoint's page cache (faster decode, docs/PERFORMANCE.md; the weights' size in process
       * memory). false keeps them in the page cache, shared with other processes mapping the same checkpoint.
       */
      resident_weights: flag.default(true),
    })
    .prefault({}),
  rank: z.coerce.number().int().min(0).default(0),
  world_size: positive.default(1),
  /**
   * Where the engine runs: cpu; cuda-emu (the CUDA kernels run on the CPU by the project's emulator:
   * slow, for tests); cuda:N (GPU N; the ranks of a group on GPUs meet over NCCL). Empty:
   * cuda:<rank mod GPUs> when the engine sees a CUDA device, else cpu. loadWorkerConfig resolves it once and refuses a GPU this machine does not
   * show. Reported as `backend` in Info and as the member's `device` in the roster (/v1/models).
   */
  device: z.string().regex(DEVICE_SETTING, "must be cpu, cuda-emu or cuda:N").default(""),
  grpc: z
    .object({
      host: z.string().min(1).default("127.0.0.1"),
      port: port.default(50051),
      /** host:port announced to the orchestrator; defaults to host:port. */
      advertise_address: z.string().default(""),
    })
    .prefault({}),
  metrics: z.object({ host: z.string().default("127.0.0.1"), port: port.default(9091) }).prefault({}),
  kv: z
    .object({
      block_size: positive.default(16),
      num_blocks: positive.default(4096),
      /**
       * How keys and values are stored: bf16 (half the bytes per token: twice the tokens in the same memory;
       * within the serving tolerances), fp8 (e4m3 with a scale per row: about four times f32's tokens, at
       * the deviation docs/PERFORMANCE.md measures) or f32. Empty: f32 in exact precision, bf16 in default.
       */
      dtype: z.enum(["", "f32", "bf16", "fp8"]).default(""),
      /**
       * Windows of ended sequences' cached prefixes the sliding-window pool keeps room for, beyond what
       * running sequences need (engine/kv-sizing.ts): a cached prefix is reusable only while the sliding
       * blocks of its last window are cached too. Absent: one per two windows' worth of num_blocks. 0: none
       * (a prefix is reused only while another sequence still holds its window).
       */
      cached_windows: z.coerce.number().int().min(0).optional(),
    })
    .prefault({}),
  scheduler: z
    .object({
      max_num_seqs: positive.default(64),
      max_tokens_per_step: positive.default(2048),
      max_waiting: positive.default(256),
      /** A batch-priority request waiting this long is admitted like an online one. */
      starvation_ms: positive.default(30_000),
    })
    .prefault({}),
  grammar: z
    .object({
      /** A constraint whose grammar takes longer than this to compile is refused (INVALID_ARGUMENT). */
      compile_limit_ms: positive.default(2_000),
      /** Compiled grammars kept (by content hash) for requests that repeat a constraint. */
      cache_entries: positive.default(256),
    })
    .prefault({}),
  tls: z
    .object({
      cert_file: z.string().default(""),
      key_file: z.string().default(""),
      /** When set, clients must present a certificate signed by this CA (mTLS). */
      client_ca_file: z.string().default(""),
    })
    .prefault({}),
  orchestrator: z
    .object({
      /** Membership service address; empty = standalone (no registration). */
      address: z.string().default(""),
      heartbeat_ms: positive.default(2000),
    })
    .prefault({}),
  group: z
    .object({
      /**
       * standalone: serve the model alone from startup (rank / world_size as configured);
       * orchestrated: wait for the orchestrator to place this worker in an expert-parallel group.
       */
      mode: z.enum(["standalone", "orchestrated"]).default("standalone"),
      /**
       * The group communicator's watchdog: joining the rendezvous and every collective must finish
       * within this, else the group is declared broken (in-flight requests end with a retryable error).
       */
      comm_timeout_ms: positive.default(30_000),
    })
    .prefault({}),
  shutdown_grace_ms: positive.default(30_000),
  /**
   * How long a worker stays announced as draining after SIGTERM (health NOT_SERVING, DRAINING in the
   * roster) before it leaves, even with nothing in flight: routers and dashboards that learn the roster
   * by polling see the drain before the worker is gone. Within shutdown_grace_ms.
   */
  shutdown_notice_ms: z.coerce.number().int().min(0).default(0),
});

export type WorkerConfig = z.infer<typeof WorkerConfigSchema>;

export const workerEnv = {
  worker_id: "WORKER_ID",
  log_level: "LOG_LEVEL",
  "model.path": "WORKER_MODEL_PATH",
  "model.name": "WORKER_MODEL_NAME",
  "model.precision": "WORKER_PRECISION",
  "model.dense_weights": "WORKER_DENSE_WEIGHTS",
  "model.resident_weights": "WORKER_RESIDENT_WEIGHTS",
  rank: "WORKER_RANK",
  world_size: "WORKER_WORLD_SIZE",
  device: "WORKER_DEVICE",
  "grpc.host": "WORKER_HOST",
  "grpc.port": "WORKER_PORT",
  "grpc.advertise_address": "WORKER_ADVERTISE_ADDRESS",
  "metrics.host": "WORKER_METRICS_HOST",
  "metrics.port": "WORKER_METRICS_PORT",
  "kv.block_size": "WORKER_KV_BLOCK_SIZE",
  "kv.num_blocks": "WORKER_KV_NUM_BLOCKS",
  "kv.dtype": "WORKER_KV_DTYPE",
  "kv.cached_windows": "WORKER_KV_CACHED_WINDOWS",
  "scheduler.max_num_seqs": "WORKER_MAX_NUM_SEQS",
  "scheduler.max_tokens_per_step": "WORKER_MAX_TOKENS_PER_STEP",
  "scheduler.max_waiting": "WORKER_MAX_WAITING",
  "scheduler.starvation_ms": "WORKER_STARVATION_MS",
  "grammar.compile_limit_ms": "WORKER_GRAMMAR_COMPILE_LIMIT_MS",
  "grammar.cache_entries": "WORKER_GRAMMAR_CACHE_ENTRIES",
  "tls.cert_file": "WORKER_TLS_CERT_FILE",
  "tls.key_file": "WORKER_TLS_KEY_FILE",
  "tls.client_ca_file": "WORKER_TLS_CLIENT_CA_FILE",
  "orchestrator.address": "WORKER_ORCHESTRATOR_ADDRESS",
  "orchestrator.heartbeat_ms": "WORKER_HEARTBEAT_MS",
  "group.mode": "WORKER_GROUP_MODE",
  "group.comm_timeout_ms": "WORKER_GROUP_COMM_TIMEOUT_MS",
  shutdown_grace_ms: "WORKER_SHUTDOWN_GRACE_MS",
  shutdown_notice_ms: "WORKER_SHUTDOWN_NOTICE_MS",
} as const;

export function loadWorkerConfig(env: NodeJS.ProcessEnv = process.env): WorkerConfig {
  const cfg = loadConfig({ service: "worker", schema: WorkerConfigSchema, fileEnv: "WORKER_CONFIG_FILE", env: workerEnv }, env);
  if (cfg.rank >= cfg.world_size) {
    throw new Error(`invalid worker configuration: rank ${cfg.rank} must be < world_size ${cfg.world_size}`);
  }
  if (cfg.shutdown_notice_ms >= cfg.shutdown_grace_ms) {
    throw new Error(
      `invalid worker configuration: shutdown_notice_ms ${cfg.shutdown_notice_ms} must be < shutdown_grace_ms ${cfg.shutdown_grace_ms}`,
    );
  }
  if (cfg.kv.cached_windows !== undefined && cfg.kv.cached_windows > cfg.kv.num_blocks) {
    // Each cached window ends a prefix of at least one full-pool block: more could never be used.
    throw new ConfigError("worker", [`kv.cached_windows (${cfg.kv.cached_windows}) must be at most kv.num_blocks (${cfg.kv.num_blocks})`]);
  }
  if (cfg.group.mode === "orchestrated" && !cfg.orchestrator.address) {
    throw new Error("invalid worker configuration: group.mode orchestrated needs orchestrator.address (WORKER_ORCHESTRATOR_ADDRESS)");
  }
  try {
    cfg.device = resolveDevice(cfg.device, cfg.rank);
  } catch (err) {
    throw new ConfigError("worker", [(err as Error).message]);
  }
  return cfg;
}
