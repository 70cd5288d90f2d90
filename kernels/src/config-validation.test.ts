/**
 * The loader checks every config.json field the engine reads against its domain (#20 item 9): each bad
 * value is refused at load with invalid_checkpoint naming the key and the value. And the engine never
 * returns NaN logits: a step whose logits are not finite fails with numeric_error.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SHAPES } from "./checkpoint/shapes.ts";
import { fillBf16Tensor, writeSyntheticCheckpoint } from "./checkpoint/synthetic.ts";
import { BlockPool, Engine, LocalSequence, Model, NativeError } from "./index.ts";

const tmp = mkdtempSync(join(tmpdir(), "expertmesh-config-"));
const shape = { ...SHAPES.tiny, numExperts: 8, expertsPerToken: 2, numQHeads: 8, numKvHeads: 4, vocab: 4096 };
const hf = join(tmp, "hf");
const orig = join(tmp, "orig");
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
beforeAll(() => {
  writeSyntheticCheckpoint({ shape, out: hf, seed: 5, format: "hf" });
  writeSyntheticCheckpoint({ shape, out: orig, seed: 5, format: "original" });
});

type Json = Record<string, unknown>;
let variants = 0;

/** A checkpoint sharing `base`'s tensors whose config.json is `edit`ed (or replaced by raw text). */
function variant(base: string, edit: ((c: Json) => void) | string): string {
  const dir = join(tmp, `v${variants++}`);
  mkdirSync(dir);
  symlinkSync(join(base, "model.safetensors"), join(dir, "model.safetensors"));
  const config = JSON.parse(readFileSync(join(base, "config.json"), "utf8")) as Json;
  if (typeof edit === "function") edit(config);
  writeFileSync(join(dir, "config.json"), typeof edit === "string" ? edit : JSON.stringify(config));
  return dir;
}

async function rejection(dir: string): Promise<NativeError> {
  const err = await Model.load(dir).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(NativeError);
  return err as NativeError;
}

const rope = (key: string, value: unknown) => (c: Json) => {
  (c.rope_scaling as Json)[key] = value;
};
const set = (key: string, value: unknown) => (c: Json) => {
  c[key] = value;
};

describe("config.json domain checks (HF format)", () => {
  it.each([
    ["rope_theta -1", set("rope_theta", -1), "'rope_theta' must be greater than 1 (got -1)"],
    ["rope_theta 0", set("rope_theta", 0), "'rope_theta' must be greater than 1 (got 0)"],
    ["rope_theta 1 (ln θ = 0)", set("rope_theta", 1), "'rope_theta' must be greater than 1 (got 1)"],
    ["rope_theta 'NaN' (a string)", set("rope_theta", "NaN"), `'rope_theta' must be a number (got "NaN")`],
    ["rope_theta 1e39 (an infinite float)", set("rope_theta", 1e39), "'rope_theta' must be a finite float (got 1e+39)"],
    ["rope_theta null is the default", set("rope_theta", null), null],
    ["num_hidden_layers -3", set("num_hidden_layers", -3), "'num_hidden_layers' must be a non-negative integer (got -3)"],
    ["num_hidden_layers 2.5", set("num_hidden_layers", 2.5), "'num_hidden_layers' must be a non-negative integer (got 2.5)"],
    ["num_hidden_layers 0", set("num_hidden_layers", 0), "'num_hidden_layers' must be in 1..4096 (got 0)"],
    ["hidden_size 2^31-1", set("hidden_size", 2 ** 31 - 1), "'hidden_size' must be in 1..1048576 (got 2147483647)"],
    ["hidden_size 2^31", set("hidden_size", 2 ** 31), "'hidden_size' must be a non-negative integer (got 2147483648)"],
    ["hidden_size not a multiple of 32", set("hidden_size", 80), "'hidden_size' must be a multiple of 32 (MXFP4 blocks) (got 80)"],
    ["intermediate_size 0", set("intermediate_size", 0), "'intermediate_size' must be in 1..1048576 (got 0)"],
    ["vocab_size -1", set("vocab_size", -1), "'vocab_size' must be a non-negative integer (got -1)"],
    ["head_dim odd", set("head_dim", 15), "'head_dim' must be even (half-split RoPE) (got 15)"],
    ["heads × head_dim overflow", set("head_dim", 1 << 19), "'num_attention_heads' × head_dim must be at most 1048576 (got 8)"],
    [
      "q heads not a multiple of kv heads",
      set("num_attention_heads", 6),
      "'num_attention_heads' must be a multiple of num_key_value_heads = 4 (got 6)",
    ],
    ["num_key_value_heads 0", set("num_key_value_heads", 0), "'num_key_value_heads' must be in 1..1048576 (got 0)"],
    ["experts_per_token > num_experts", set("num_experts_per_tok", 9), "'num_experts_per_tok' must be in 1..num_experts = 8 (got 9)"],
    ["experts_per_token 0", set("num_experts_per_tok", 0), "'num_experts_per_tok' must be in 1..num_experts = 8 (got 0)"],
    ["num_local_experts 0", set("num_local_experts", 0), "'num_local_experts' must be in 1..65536 (got 0)"],
    ["sliding_window -1", set("sliding_window", -1), "'sliding_window' must be a non-negative integer (got -1)"],
    ["sliding_window 0", set("sliding_window", 0), "'sliding_window' must be in 1..67108864 (got 0)"],
    ["swiglu_limit 0", set("swiglu_limit", 0), "'swiglu_limit' must be positive (got 0)"],
    ["swiglu_limit -7", set("swiglu_limit", -7), "'swiglu_limit' must be positive (got -7)"],
    ["rms_norm_eps 0", set("rms_norm_eps", 0), "'rms_norm_eps' must be in (0, 1) (got 0)"],
    ["max_position_embeddings 0", set("max_position_embeddings", 0), "'max_position_embeddings' must be in 1..67108864 (got 0)"],
    ["yarn factor 0.5", rope("factor", 0.5), "'rope_scaling.factor' must be at least 1 (got 0.5)"],
    ["yarn factor 'x'", rope("factor", "x"), `'rope_scaling.factor' must be a number (got "x")`],
    ["yarn beta_fast = beta_slow", rope("beta_fast", 1), "'rope_scaling.beta_fast' must be greater than beta_slow = 1 (got 1)"],
    ["yarn beta_slow 0", rope("beta_slow", 0), "'rope_scaling.beta_slow' must be positive (got 0)"],
    [
      "yarn original context > max positions",
      rope("original_max_position_embeddings", 200000),
      "'rope_scaling.original_max_position_embeddings' must be at most max_position_embeddings = 131072 (got 200000)",
    ],
    ["yarn rope_type linear", rope("rope_type", "linear"), `'rope_scaling.rope_type' must be 'yarn' (got "linear")`],
    [
      "rope_scaling.rope_theta (it wins over the top-level one)",
      rope("rope_theta", 0.5),
      "'rope_scaling.rope_theta' must be greater than 1 (got 0.5)",
    ],
    ["rope_scaling.truncate 'no'", rope("truncate", "no"), `'rope_scaling.truncate' must be a boolean (got "no")`],
    [
      "experts_per_token (no num_experts_per_tok) > num_experts",
      (c: Json) => {
        delete c.num_experts_per_tok;
        c.experts_per_token = 9;
      },
      "'experts_per_token' must be in 1..num_experts = 8 (got 9)",
    ],
    ["rope_scaling a string", set("rope_scaling", "yarn"), `'rope_scaling' must be an object (got "yarn")`],
    ["layer_types too short", set("layer_types", ["full_attention"]), "'layer_types' must have num_hidden_layers = 2 entries (got 1)"],
    [
      "layer_types entry",
      set("layer_types", ["full_attention", "local"]),
      `'layer_types[1]' must be sliding_attention or full_attention (got "local")`,
    ],
    ["rope_theta 1e400 (JSON overflow)", '{"rope_theta": 1e400}', "not valid JSON"],
    ["rope_theta NaN (no such JSON literal)", '{"num_hidden_layers": 2, "rope_theta": NaN}', `last read: '"rope_theta": N'`],
    ["a JSON array", "[1, 2]", "not a JSON object"],
  ] as const)("%s", async (_name, edit, message) => {
    const dir = variant(hf, edit);
    if (message === null) {
      await expect(Model.load(dir)).resolves.toBeDefined();
      expect(Model.readConfig(dir).vocab).toBe(4096);
      return;
    }
    const e = await rejection(dir);
    expect(e.statusName).toBe("invalid_checkpoint");
    expect(e.message).toContain(message);
    expect(e.message).toContain(join(dir, "config.json"));
    // The config-only check a worker runs before registering refuses it the same way.
    expect(() => Model.readConfig(dir)).toThrow(e.message);
  });

  it("Model.readConfig reads a valid config.json without its tensors", () => {
    expect(Model.readConfig(hf)).toMatchObject({ numLayers: 2, numExperts: 8, expertsPerToken: 2, vocab: 4096, headDim: 16 });
    expect(Model.readConfig(orig)).toMatchObject({ numExperts: 8, originalFormat: true });
  });

  it("rope_parameters (newer transformers) names its own keys", async () => {
    const dir = variant(hf, (c) => {
      c.rope_parameters = { ...(c.rope_scaling as Json), rope_theta: -1 };
      delete c.rope_scaling;
      delete c.rope_theta;
    });
    expect((await rejection(dir)).message).toContain("'rope_parameters.rope_theta' must be greater than 1 (got -1)");
  });

  it("a size consistent in config.json but not with the tensors names the tensor and both shapes", async () => {
    const e = await rejection(variant(hf, set("vocab_size", 4000)));
    expect(e.statusName).toBe("invalid_checkpoint");
    expect(e.message).toMatch(/embed_tokens\.weight' has shape \[4096, 64\].*\[4000, 64\]/);
  });
});

describe("config.json domain checks (original format)", () => {
  it.each([
    ["rope_theta -1", set("rope_theta", -1), "'rope_theta' must be greater than 1 (got -1)"],
    ["rope_scaling_factor 0", set("rope_scaling_factor", 0), "'rope_scaling_factor' must be at least 1 (got 0)"],
    ["rope_ntk_beta < rope_ntk_alpha", set("rope_ntk_beta", 0.5), "'rope_ntk_beta' must be greater than beta_slow = 1 (got 0.5)"],
    ["initial_context_length 0", set("initial_context_length", 0), "'initial_context_length' must be in 1..67108864 (got 0)"],
    ["experts_per_token 9", set("experts_per_token", 9), "'experts_per_token' must be in 1..num_experts = 8 (got 9)"],
  ] as const)("%s", async (_name, edit, message) => {
    const e = await rejection(variant(orig, edit));
    expect(e.statusName).toBe("invalid_checkpoint");
    expect(e.message).toContain(message);
  });
});

describe("non-finite logits", () => {
  function poisoned(bits: number): string {
    const dir = join(tmp, `nan-${bits.toString(16)}`);
    writeSyntheticCheckpoint({ shape, out: dir, seed: 5, format: "hf" });
    fillBf16Tensor(dir, "model.norm.weight", bits);
    return dir;
  }
  async function stepOf(dir: string, sample: boolean, backend: "cpu" | "cuda-emu" = "cpu"): Promise<unknown> {
    const model = await Model.load(dir);
    const engine = new Engine(model, { numFullBlocks: 16, numSlidingBlocks: 16, backend });
    const seq = new LocalSequence(engine, new BlockPool(16), new BlockPool(16));
    seq.reserve(3);
    return engine.step([seq.entry([1, 2, 3], sample ? { sampling: { temperature: 0 }, returnLogits: false } : {})]);
  }

  it.each([
    ["NaN weights", 0x7fc0],
    ["+Inf weights (±Inf, then Inf − Inf in lm_head)", 0x7f80],
  ] as const)("%s → the step fails with numeric_error, no null logits", async (_name, bits) => {
    const dir = poisoned(bits);
    for (const sample of [false, true]) {
      const err = await stepOf(dir, sample).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(NativeError);
      expect(err).toMatchObject({ statusName: "numeric_error", status: 11 });
      expect((err as Error).message).toMatch(/sequence 0 row 0 has a non-finite logit \((NaN|[+-]Inf) at token \d+\)/);
      // cuda-emu samples on the device, where the row stays: the same failure, word for word.
      const emu = await stepOf(dir, sample, "cuda-emu").catch((e: unknown) => e);
      expect(emu).toMatchObject({ statusName: "numeric_error", status: 11, message: (err as Error).message });
    }
  });

  it("a healthy checkpoint's logits pass the check", async () => {
    await expect(stepOf(hf, false)).resolves.toBeDefined();
  });
});
