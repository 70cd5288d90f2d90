/** Loads the configured checkpoint into the native engine and wraps it in a BatchEngine. */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Logger, Registry } from "@expertmesh/common";
import { Engine, Model } from "@expertmesh/kernels";
import type { WorkerConfig } from "../config.ts";
import { BatchEngine } from "./batch-engine.ts";
import { createEngineMetrics } from "./metrics.ts";

export async function loadNativeEngine(config: WorkerConfig, log: Logger, registry?: Registry): Promise<BatchEngine> {
  const started = performance.now();
  const model = await Model.load(config.model.path, { rank: config.rank, world: config.world_size });
  // Sliding layers need only each sequence's window (plus a block boundary) and this step's prefill
  // chunks, which the token budget bounds.
  const bs = config.kv.block_size;
  const numSlidingBlocks =
    config.scheduler.max_num_seqs * (Math.ceil(model.config.slidingWindow / bs) + 2) + Math.ceil(config.scheduler.max_tokens_per_step / bs);
  const engine = new Engine(model, { blockSize: bs, numFullBlocks: config.kv.num_blocks, numSlidingBlocks });
  let synthetic = false;
  try {
    synthetic = JSON.parse(readFileSync(join(config.model.path, "config.json"), "utf8")).expertmesh_synthetic === true;
  } catch {
    synthetic = false;
  }
  log.info(
    { model: config.model.path, config: model.config, seconds: ((performance.now() - started) / 1000).toFixed(2), synthetic },
    "model loaded",
  );
  return new BatchEngine(model, engine, {
    modelName: config.model.name,
    synthetic,
    maxNumSeqs: config.scheduler.max_num_seqs,
    maxTokensPerStep: config.scheduler.max_tokens_per_step,
    maxWaiting: config.scheduler.max_waiting,
    starvationMs: config.scheduler.starvation_ms,
    rank: config.rank,
    ...(registry ? { metrics: createEngineMetrics(registry, config.model.name) } : {}),
  });
}
