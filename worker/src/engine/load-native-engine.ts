/** Loads the configured checkpoint into the native engine (or one rank's shard of it) and wraps it in a BatchEngine. */

import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Logger, Registry } from "@expertmesh/common";
import { ConstraintCompiler, VOCAB_SIZE } from "@expertmesh/grammar";
import { type Communicator, Engine, Model } from "@expertmesh/kernels";
import type { WorkerConfig } from "../config.ts";
import { BatchEngine } from "./batch-engine.ts";
import { Constraints } from "./constraints.ts";
import { resolveDevice } from "./device.ts";
import type { StepTracer } from "./engine-observer.ts";
import { slidingPoolSize } from "./kv-sizing.ts";
import { createEngineMetrics, type EngineMetrics, metricsObserver } from "./metrics.ts";

/** This worker's shard of an expert-parallel group (absent: the whole model on one rank). */
export interface ShardOf {
  rank: number;
  world: number;
  experts: readonly number[];
}

/** Loads the checkpoint, or this rank's shard of it (its attention heads and placed experts). */
export async function loadModelShard(config: WorkerConfig, log: Logger, shard?: ShardOf): Promise<Model> {
  const started = performance.now();
  const model = await Model.load(config.model.path, shard ?? { rank: config.rank, world: config.world_size });
  log.info(
    {
      model: config.model.path,
      config: model.config,
      shard: {
        rank: model.shard.rank,
        world: model.shard.world,
        experts: model.shard.experts.length,
        expertBytes: model.shard.expertBytes,
      },
      seconds: ((performance.now() - started) / 1000).toFixed(2),
    },
    "model loaded",
  );
  return model;
}

/**
 * The native engine on the configured device (WORKER_DEVICE; loadWorkerConfig has resolved it, a config
 * built otherwise is resolved here), its paged KV cache: the full-attention pool of kv.num_blocks, the
 * sliding-window one sized by kv-sizing.ts from the scheduler's limits and kv.cached_windows (the same on every rank).
 */
export function createNativeEngine(model: Model, config: WorkerConfig, communicator?: Communicator): Engine {
  const bs = config.kv.block_size;
  const sliding = slidingPoolSize({
    blockSize: bs,
    window: model.config.slidingWindow,
    maxNumSeqs: config.scheduler.max_num_seqs,
    maxTokensPerStep: config.scheduler.max_tokens_per_step,
    fullBlocks: config.kv.num_blocks,
    cachedWindows: config.kv.cached_windows,
  });
  return new Engine(model, {
    blockSize: bs,
    numFullBlocks: config.kv.num_blocks,
    numSlidingBlocks: sliding.total,
    precision: config.model.precision,
    denseWeights: config.model.dense_weights,
    residentWeights: config.model.resident_weights,
    ...(config.kv.dtype ? { kvDtype: config.kv.dtype } : {}),
    backend: resolveDevice(config.device, config.rank),
    ...(communicator ? { communicator } : {}),
  });
}

function isSynthetic(dir: string): boolean {
  try {
    return JSON.parse(readFileSync(join(dir, "config.json"), "utf8")).expertmesh_synthetic === true;
  } catch {
    return false;
  }
}

let compiler: Promise<ConstraintCompiler> | undefined;

/** The process's grammar compiler, created on first use. */
function compilerOf(config: WorkerConfig): Promise<ConstraintCompiler> {
  compiler ??= ConstraintCompiler.create({ cacheEntries: config.grammar.cache_entries, compileLimitMs: config.grammar.compile_limit_ms });
  return compiler;
}

/**
 * Builds the grammar compiler's vocabulary tables now, for a model with the o200k_harmony vocabulary
 * (the one constrained decoding needs). Created on the first constrained request instead, they held
 * that request's step — and the worker's event loop, heartbeats included — long enough on a loaded
 * machine for the orchestrator to expire the worker's lease and dissolve its group.
 */
export async function prepareConstraints(config: WorkerConfig, vocab: number, log: Logger): Promise<void> {
  if (vocab < VOCAB_SIZE) return;
  const started = performance.now();
  await compilerOf(config);
  log.info({ seconds: ((performance.now() - started) / 1000).toFixed(2) }, "grammar tables built");
}

/** Constrained decoding for an engine: the grammar compiler is the process's. */
function constraintsOf(config: WorkerConfig, metrics: EngineMetrics | undefined): Constraints {
  const l = metrics?.labels ?? { model_name: config.model.name };
  return new Constraints({
    compiler: () => compilerOf(config),
    ...(metrics
      ? {
          observer: {
            compiled: (ms, cached) => (cached ? metrics.grammarCacheHits.inc(l) : metrics.grammarCompileSeconds.observe(l, ms / 1000)),
            forced: (n) => metrics.forcedTokens.inc(l, n),
            truncated: () => metrics.reasoningTruncations.inc(l),
          },
        }
      : {}),
  });
}

/** Where a serving engine reports: its metrics (absent: none) and the tracer of its step spans. */
export interface EngineReporting {
  metrics?: EngineMetrics | undefined;
  tracer?: StepTracer | undefined;
}

/** The serving engine over a native engine (rank 0 of its group, or alone). */
export function batchEngineOf(
  engine: Engine,
  config: WorkerConfig,
  reporting: EngineReporting,
  onGroupLost?: (reason: string) => void,
): BatchEngine {
  const { metrics, tracer } = reporting;
  return new BatchEngine(engine.model, engine, {
    modelName: config.model.name,
    // Hashes name the engine that computed the KV: blocks of another precision, KV dtype or attention
    // weight type never match (q8 converts only the unembedding, which no cached block depends on).
    prefixSalt: `${config.model.name}|${config.model.precision}|${engine.kvCapacity().dtype}${engine.denseWeights === "q8-attention" ? "|q8-attention" : ""}`,
    synthetic: isSynthetic(config.model.path),
    maxNumSeqs: config.scheduler.max_num_seqs,
    maxTokensPerStep: config.scheduler.max_tokens_per_step,
    maxWaiting: config.scheduler.max_waiting,
    starvationMs: config.scheduler.starvation_ms,
    rank: engine.rank,
    constraints: constraintsOf(config, metrics),
    ...(metrics ? { observer: metricsObserver(metrics) } : {}),
    ...(tracer ? { tracer } : {}),
    ...(onGroupLost ? { onGroupLost } : {}),
  });
}

export async function loadNativeEngine(config: WorkerConfig, log: Logger, registry?: Registry, tracer?: StepTracer): Promise<BatchEngine> {
  const engine = createNativeEngine(await loadModelShard(config, log), config);
  const kv = engine.kvCapacity();
  log.info({ kv }, "kv cache allocated");
  const metrics = registry ? createEngineMetrics(registry, config.model.name) : undefined;
  metrics?.kvBytesPerToken.set(metrics.labels, kv.bytesPerToken);
  metrics?.kvTokens.set(metrics.labels, kv.fullTokens);
  metrics?.kvSlidingBlocks.set(metrics.labels, engine.numSlidingBlocks);
  return batchEngineOf(engine, config, { metrics, tracer });
}
