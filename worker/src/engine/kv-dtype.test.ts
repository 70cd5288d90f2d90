/**
 * WORKER_KV_DTYPE: validated once with the rest of the config, and the engine's KV cache stores what it
 * names (the default follows the precision: f32 in exact, bf16 in default); fp8 rows carry an fp32 scale.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError } from "@expertmesh/common/config";
import { Model, SHAPES } from "@expertmesh/kernels";
import { writeSyntheticCheckpoint } from "@expertmesh/kernels/checkpoint";
import { beforeAll, describe, expect, it } from "vitest";
import { loadWorkerConfig } from "../config.ts";
import { createNativeEngine } from "./load-native-engine.ts";

const dir = join(mkdtempSync(join(tmpdir(), "kv-dtype-model-")), "tiny");
let model: Model;

beforeAll(async () => {
  writeSyntheticCheckpoint({ shape: SHAPES.tiny, out: dir, seed: 5 });
  model = await Model.load(dir);
});

describe("WORKER_KV_DTYPE", () => {
  it("refuses an unknown element type with a ConfigError naming the setting", () => {
    const load = () => loadWorkerConfig({ WORKER_KV_DTYPE: "fp16" });
    expect(load).toThrow(ConfigError);
    expect(load).toThrow(/\n {2}- kv\.dtype \(WORKER_KV_DTYPE\): /);
  });

  it("picks the KV cache's element type; unset, it follows WORKER_PRECISION", () => {
    const t = SHAPES.tiny;
    // Bytes of one cached row (head_dim elements of one head's key or value): elements, plus fp8's scale.
    for (const [env, dtype, row] of [
      [{}, "bf16", t.headDim * 2],
      [{ WORKER_PRECISION: "exact" }, "f32", t.headDim * 4],
      [{ WORKER_KV_DTYPE: "f32" }, "f32", t.headDim * 4],
      [{ WORKER_PRECISION: "exact", WORKER_KV_DTYPE: "bf16" }, "bf16", t.headDim * 2],
      [{ WORKER_KV_DTYPE: "fp8" }, "fp8", t.headDim + 4],
    ] as const) {
      const config = loadWorkerConfig({ WORKER_MODEL_PATH: dir, WORKER_KV_NUM_BLOCKS: "8", WORKER_MAX_NUM_SEQS: "2", ...env });
      const kv = createNativeEngine(model, config).kvCapacity();
      expect(kv.dtype).toBe(dtype);
      expect(kv.bytesPerToken).toBe(t.numLayers * 2 * t.numKvHeads * row);
    }
  });
});
