/**
 * WORKER_DENSE_WEIGHTS: validated once with the rest of the config; q8 builds an engine that reads its
 * unembedding in 8 bits (its cached blocks are a bf16 worker's: the same salt); q8-attention reads the
 * attention projections in 8 bits too, and names the mode in the prefix hashes' salt, so its cached
 * blocks never pass for a bf16 worker's.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError } from "@expertmesh/common/config";
import { Model, SHAPES } from "@expertmesh/kernels";
import { writeSyntheticCheckpoint } from "@expertmesh/kernels/checkpoint";
import { beforeAll, describe, expect, it } from "vitest";
import { loadWorkerConfig } from "../config.ts";
import { batchEngineOf, createNativeEngine } from "./load-native-engine.ts";

const dir = join(mkdtempSync(join(tmpdir(), "dense-weights-model-")), "tiny");
let model: Model;

beforeAll(async () => {
  writeSyntheticCheckpoint({ shape: SHAPES.tiny, out: dir, seed: 6 });
  model = await Model.load(dir);
});

describe("WORKER_DENSE_WEIGHTS", () => {
  it("refuses an unknown weight type with a ConfigError naming the setting", () => {
    const load = () => loadWorkerConfig({ WORKER_DENSE_WEIGHTS: "int4" });
    expect(load).toThrow(ConfigError);
    expect(load).toThrow(/\n {2}- model\.dense_weights \(WORKER_DENSE_WEIGHTS\): /);
  });

  it("builds the engine it names (bf16 unset) and salts the prefix hashes with q8-attention", () => {
    const salts: string[] = [];
    for (const [env, dense] of [
      [{}, "bf16"],
      [{ WORKER_DENSE_WEIGHTS: "q8" }, "q8"],
      [{ WORKER_DENSE_WEIGHTS: "q8-attention" }, "q8-attention"],
    ] as const) {
      const config = loadWorkerConfig({ WORKER_MODEL_PATH: dir, WORKER_KV_NUM_BLOCKS: "8", WORKER_MAX_NUM_SEQS: "2", ...env });
      const engine = createNativeEngine(model, config);
      expect(engine.denseWeights).toBe(dense);
      salts.push(batchEngineOf(engine, config, {}).prefixSummary().salt);
    }
    expect(salts).toEqual(["gpt-oss-20b|default|bf16", "gpt-oss-20b|default|bf16", "gpt-oss-20b|default|bf16|q8-attention"]);
  });
});
