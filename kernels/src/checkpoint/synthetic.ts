/**
 * Synthetic gpt-oss checkpoints in the real on-disk formats — Hugging Face (config.json, sharded
 * safetensors + model.safetensors.index.json, MXFP4 experts) or OpenAI's original layout (fused qkv,
 * block.N names) — for any shape from tiny to the full 20b/120b. Streamed to disk shard by shard with
 * a seeded generator: each logical tensor has its own stream keyed by (seed, HF name), so both formats
 * hold identical weights. Weights are scaled so activations keep unit-ish variance through the layers.
 */
import { closeSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { type ModelShape, validateShape } from "./shapes.ts";

export type CheckpointFormat = "hf" | "original";

export interface SyntheticOptions {
  shape: ModelShape;
  out: string;
  seed: number;
  format?: CheckpointFormat;
  /** Store norm gains, biases and sinks as F32 (as some re-saved checkpoints do); same values. */
  f32Vectors?: boolean;
  /** Largest shard in bytes (default 4 GiB); one file when everything fits. */
  shardBytes?: number;
  /** Called as bytes are written. */
  onProgress?: (written: number, total: number) => void;
}

type Fill =
  | { kind: "bf16"; scale: number; center?: number } // uniform in center ± scale
  | { kind: "codes" } // random MXFP4 bytes
  | { kind: "scales"; byte: number; jitter: number }; // E8M0 around byte

interface Piece {
  hfName: string; // stream key
  elements: number;
  fill: Fill;
}

interface TensorPlan {
  name: string;
  dtype: "BF16" | "F32" | "U8";
  shape: number[];
  pieces: Piece[]; // concatenated (the original format fuses q, k, v)
  bytes: number;
}

// xorshift128+ seeded through splitmix64 of (seed, name): fast, deterministic, good enough for weights.
function streamFor(seed: number, name: string): () => number {
  let h = BigInt(seed) ^ 0x9e3779b97f4a7c15n;
  for (let i = 0; i < name.length; i++) h = (h * 0x100000001b3n + BigInt(name.charCodeAt(i))) & 0xffffffffffffffffn;
  const mix = (x: bigint) => {
    x = (x + 0x9e3779b97f4a7c15n) & 0xffffffffffffffffn;
    x = ((x ^ (x >> 30n)) * 0xbf58476d1ce4e5b9n) & 0xffffffffffffffffn;
    x = ((x ^ (x >> 27n)) * 0x94d049bb133111ebn) & 0xffffffffffffffffn;
    return x ^ (x >> 31n);
  };
  const a = mix(h);
  const b = mix(a);
  let s0 = Number(a & 0xffffffffn) | 1;
  let s1 = Number(b & 0xffffffffn) | 2;
  // 32-bit xorshift pair (xorwow-like), returns uint32.
  return () => {
    let t = s0;
    const s = s1;
    s0 = s;
    t ^= t << 11;
    t ^= t >>> 8;
    s1 = (t ^ s ^ (s >>> 19)) >>> 0;
    return s1;
  };
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
function toBf16(x: number): number {
  f32[0] = x;
  const bits = u32[0] as number;
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

function fillPiece(fill: Fill, next: () => number, out: Uint8Array, elements: number, f32: boolean): void {
  if (fill.kind === "bf16") {
    const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
    const c = fill.center ?? 0;
    for (let i = 0; i < elements; i++) {
      const b = toBf16(c + fill.scale * ((next() / 4294967296) * 2 - 1));
      // F32 storage holds the same bf16-rounded value, so both layouts describe one model.
      if (f32) view.setUint32(4 * i, b << 16, true);
      else view.setUint16(2 * i, b, true);
    }
  } else if (fill.kind === "codes") {
    for (let i = 0; i < elements; i += 4) {
      const r = next();
      out[i] = r & 0xff;
      if (i + 1 < elements) out[i + 1] = (r >>> 8) & 0xff;
      if (i + 2 < elements) out[i + 2] = (r >>> 16) & 0xff;
      if (i + 3 < elements) out[i + 3] = r >>> 24;
    }
  } else {
    for (let i = 0; i < elements; i++) out[i] = fill.byte + (fill.jitter ? (next() % (2 * fill.jitter + 1)) - fill.jitter : 0);
  }
}

/** E8M0 byte giving MXFP4 weights an RMS near 1/sqrt(fanIn) (random E2M1 codes have RMS ≈ 2.93). */
function scaleByte(fanIn: number): number {
  return 127 + Math.round(Math.log2(1 / (2.93 * Math.sqrt(fanIn))));
}

function plan(s: ModelShape, format: CheckpointFormat, f32Vectors: boolean): TensorPlan[] {
  const H = s.hidden;
  const I = s.intermediate;
  const E = s.numExperts;
  const q = s.numQHeads * s.headDim;
  const kv = s.numKvHeads * s.headDim;
  const u = (fanIn: number) => Math.sqrt(3 / fanIn); // uniform bound for variance 1/fanIn
  const bf16 = (name: string, shape: number[], fill: Fill): TensorPlan => ({
    name,
    dtype: "BF16",
    shape,
    pieces: [{ hfName: name, elements: shape.reduce((a, b) => a * b, 1), fill }],
    bytes: 2 * shape.reduce((a, b) => a * b, 1),
  });
  // Norm gains, biases and sinks: BF16 as published, or F32 when asked.
  const vec = (name: string, shape: number[], fill: Fill): TensorPlan => {
    const t = bf16(name, shape, fill);
    return f32Vectors ? { ...t, dtype: "F32", bytes: 2 * t.bytes } : t;
  };
  const u8 = (name: string, shape: number[], fill: Fill): TensorPlan => ({
    name,
    dtype: "U8",
    shape,
    pieces: [{ hfName: name, elements: shape.reduce((a, b) => a * b, 1), fill }],
    bytes: shape.reduce((a, b) => a * b, 1),
  });
  const rename = (t: TensorPlan, name: string): TensorPlan => ({ ...t, name });
  const orig = format === "original";
  const out: TensorPlan[] = [];
  out.push(
    rename(
      bf16("model.embed_tokens.weight", [s.vocab, H], { kind: "bf16", scale: 1.7 }),
      orig ? "embedding.weight" : "model.embed_tokens.weight",
    ),
  );
  for (let l = 0; l < s.numLayers; l++) {
    const p = `model.layers.${l}.`;
    const b = `block.${l}.`;
    const gain: Fill = { kind: "bf16", scale: 0.1, center: 1 };
    const bias: Fill = { kind: "bf16", scale: 0.02 };
    out.push(rename(vec(`${p}input_layernorm.weight`, [H], gain), orig ? `${b}attn.norm.scale` : `${p}input_layernorm.weight`));
    const qw = bf16(`${p}self_attn.q_proj.weight`, [q, H], { kind: "bf16", scale: u(H) });
    const kw = bf16(`${p}self_attn.k_proj.weight`, [kv, H], { kind: "bf16", scale: u(H) });
    const vw = bf16(`${p}self_attn.v_proj.weight`, [kv, H], { kind: "bf16", scale: u(H) });
    const qb = vec(`${p}self_attn.q_proj.bias`, [q], bias);
    const kb = vec(`${p}self_attn.k_proj.bias`, [kv], bias);
    const vb = vec(`${p}self_attn.v_proj.bias`, [kv], bias);
    if (orig) {
      const fuse = (name: string, parts: TensorPlan[], shape: number[]): TensorPlan => ({
        name,
        dtype: (parts[0] as TensorPlan).dtype,
        shape,
        pieces: parts.flatMap((x) => x.pieces),
        bytes: parts.reduce((n, x) => n + x.bytes, 0),
      });
      out.push(fuse(`${b}attn.qkv.weight`, [qw, kw, vw], [q + 2 * kv, H]));
      out.push(fuse(`${b}attn.qkv.bias`, [qb, kb, vb], [q + 2 * kv]));
    } else {
      out.push(qw, qb, kw, kb, vw, vb);
    }
    out.push(
      rename(
        bf16(`${p}self_attn.o_proj.weight`, [H, q], { kind: "bf16", scale: u(q) }),
        orig ? `${b}attn.out.weight` : `${p}self_attn.o_proj.weight`,
      ),
    );
    out.push(rename(vec(`${p}self_attn.o_proj.bias`, [H], bias), orig ? `${b}attn.out.bias` : `${p}self_attn.o_proj.bias`));
    out.push(
      rename(vec(`${p}self_attn.sinks`, [s.numQHeads], { kind: "bf16", scale: 0.5 }), orig ? `${b}attn.sinks` : `${p}self_attn.sinks`),
    );
    out.push(
      rename(vec(`${p}post_attention_layernorm.weight`, [H], gain), orig ? `${b}mlp.norm.scale` : `${p}post_attention_layernorm.weight`),
    );
    out.push(
      rename(
        bf16(`${p}mlp.router.weight`, [E, H], { kind: "bf16", scale: 2 * u(H) }),
        orig ? `${b}mlp.gate.weight` : `${p}mlp.router.weight`,
      ),
    );
    out.push(rename(vec(`${p}mlp.router.bias`, [E], bias), orig ? `${b}mlp.gate.bias` : `${p}mlp.router.bias`));
    const ex = `${p}mlp.experts.`;
    out.push(
      rename(
        u8(`${ex}gate_up_proj_blocks`, [E, 2 * I, H / 32, 16], { kind: "codes" }),
        orig ? `${b}mlp.mlp1_weight.blocks` : `${ex}gate_up_proj_blocks`,
      ),
    );
    out.push(
      rename(
        u8(`${ex}gate_up_proj_scales`, [E, 2 * I, H / 32], { kind: "scales", byte: scaleByte(H), jitter: 1 }),
        orig ? `${b}mlp.mlp1_weight.scales` : `${ex}gate_up_proj_scales`,
      ),
    );
    out.push(rename(vec(`${ex}gate_up_proj_bias`, [E, 2 * I], bias), orig ? `${b}mlp.mlp1_bias` : `${ex}gate_up_proj_bias`));
    out.push(
      rename(
        u8(`${ex}down_proj_blocks`, [E, H, I / 32, 16], { kind: "codes" }),
        orig ? `${b}mlp.mlp2_weight.blocks` : `${ex}down_proj_blocks`,
      ),
    );
    out.push(
      rename(
        u8(`${ex}down_proj_scales`, [E, H, I / 32], { kind: "scales", byte: scaleByte(I), jitter: 1 }),
        orig ? `${b}mlp.mlp2_weight.scales` : `${ex}down_proj_scales`,
      ),
    );
    out.push(rename(vec(`${ex}down_proj_bias`, [E, H], bias), orig ? `${b}mlp.mlp2_bias` : `${ex}down_proj_bias`));
  }
  out.push(rename(vec("model.norm.weight", [H], { kind: "bf16", scale: 0.1, center: 1 }), orig ? "norm.scale" : "model.norm.weight"));
  out.push(rename(bf16("lm_head.weight", [s.vocab, H], { kind: "bf16", scale: u(H) }), orig ? "unembedding.weight" : "lm_head.weight"));
  return out;
}

function hfConfig(s: ModelShape): object {
  return {
    architectures: ["GptOssForCausalLM"],
    attention_bias: true,
    attention_dropout: 0.0,
    eos_token_id: 200002,
    experts_per_token: s.expertsPerToken,
    head_dim: s.headDim,
    hidden_act: "silu",
    hidden_size: s.hidden,
    initial_context_length: 4096,
    initializer_range: 0.02,
    intermediate_size: s.intermediate,
    layer_types: Array.from({ length: s.numLayers }, (_, l) => (l % 2 === 0 ? "sliding_attention" : "full_attention")),
    max_position_embeddings: 131072,
    model_type: "gpt_oss",
    num_attention_heads: s.numQHeads,
    num_experts_per_tok: s.expertsPerToken,
    num_hidden_layers: s.numLayers,
    num_key_value_heads: s.numKvHeads,
    num_local_experts: s.numExperts,
    output_router_logits: false,
    pad_token_id: 199999,
    quantization_config: {
      modules_to_not_convert: ["model.layers.*.self_attn", "model.layers.*.mlp.router", "model.embed_tokens", "lm_head"],
      quant_method: "mxfp4",
    },
    rms_norm_eps: 1e-5,
    rope_scaling: {
      beta_fast: 32.0,
      beta_slow: 1.0,
      factor: 32.0,
      original_max_position_embeddings: 4096,
      rope_type: "yarn",
      truncate: false,
    },
    rope_theta: 150000,
    router_aux_loss_coef: 0.9,
    sliding_window: s.slidingWindow,
    swiglu_limit: 7.0,
    tie_word_embeddings: false,
    torch_dtype: "bfloat16",
    use_cache: true,
    vocab_size: s.vocab,
    expertmesh_synthetic: true,
  };
}

function originalConfig(s: ModelShape): object {
  return {
    num_hidden_layers: s.numLayers,
    num_experts: s.numExperts,
    experts_per_token: s.expertsPerToken,
    vocab_size: s.vocab,
    hidden_size: s.hidden,
    intermediate_size: s.intermediate,
    swiglu_limit: 7.0,
    head_dim: s.headDim,
    num_attention_heads: s.numQHeads,
    num_key_value_heads: s.numKvHeads,
    sliding_window: s.slidingWindow,
    initial_context_length: 4096,
    rope_theta: 150000,
    rope_scaling_factor: 32.0,
    rope_ntk_alpha: 1,
    rope_ntk_beta: 32,
  };
}

/** Writes the checkpoint; returns the files written. The directory is replaced atomically-ish (tmp + rename). */
export function writeSyntheticCheckpoint(o: SyntheticOptions): string[] {
  validateShape(o.shape);
  if (!Number.isInteger(o.seed) || o.seed < 0) throw new RangeError(`seed must be a non-negative integer, got ${o.seed}`);
  const format = o.format ?? "hf";
  const shardBytes = o.shardBytes ?? 4 * 1024 ** 3;
  const tensors = plan(o.shape, format, o.f32Vectors ?? false);
  const shards: TensorPlan[][] = [[]];
  let size = 0;
  for (const t of tensors) {
    if (size > 0 && size + t.bytes > shardBytes) {
      shards.push([]);
      size = 0;
    }
    (shards[shards.length - 1] as TensorPlan[]).push(t);
    size += t.bytes;
  }
  const total = tensors.reduce((n, t) => n + t.bytes, 0);
  const tmp = `${o.out}.partial-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  const names =
    shards.length === 1
      ? ["model.safetensors"]
      : shards.map((_, i) =>
          format === "hf"
            ? `model-${String(i).padStart(5, "0")}-of-${String(shards.length - 1).padStart(5, "0")}.safetensors`
            : `model--${String(i + 1).padStart(5, "0")}-of-${String(shards.length).padStart(5, "0")}.safetensors`,
        );
  const weightMap: Record<string, string> = {};
  let written = 0;
  shards.forEach((shard, si) => {
    const file = names[si] as string;
    const header: Record<string, unknown> = {
      __metadata__: { format: "pt", generator: "expertmesh make-checkpoint", seed: String(o.seed) },
    };
    let offset = 0;
    for (const t of shard) {
      header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.bytes] };
      offset += t.bytes;
      weightMap[t.name] = file;
    }
    let json = JSON.stringify(header);
    json += " ".repeat((8 - (json.length % 8)) % 8); // align the data area to 8 bytes
    const fd = openSync(join(tmp, file), "w");
    try {
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
      writeSync(fd, len);
      writeSync(fd, Buffer.from(json));
      const CHUNK = 1 << 24;
      const buf = new Uint8Array(CHUNK);
      for (const t of shard) {
        for (const piece of t.pieces) {
          const next = streamFor(o.seed, piece.hfName);
          const elemBytes = t.dtype === "F32" ? 4 : t.dtype === "BF16" ? 2 : 1;
          const perChunk = Math.floor(CHUNK / elemBytes / 4) * 4;
          for (let e = 0; e < piece.elements; e += perChunk) {
            const n = Math.min(perChunk, piece.elements - e);
            const view = buf.subarray(0, n * elemBytes);
            fillPiece(piece.fill, next, view, n, t.dtype === "F32");
            writeSync(fd, view);
            written += view.length;
            o.onProgress?.(written, total);
          }
        }
      }
    } finally {
      closeSync(fd);
    }
  });
  const config = format === "hf" ? hfConfig(o.shape) : originalConfig(o.shape);
  writeFileSync(join(tmp, "config.json"), `${JSON.stringify(config, null, 2)}\n`);
  if (format === "hf") {
    writeFileSync(
      join(tmp, "generation_config.json"),
      `${JSON.stringify({ bos_token_id: 199998, do_sample: true, eos_token_id: [200002, 199999, 200012], pad_token_id: 199999 }, null, 2)}\n`,
    );
    if (shards.length > 1) {
      writeFileSync(
        join(tmp, "model.safetensors.index.json"),
        `${JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2)}\n`,
      );
    }
  }
  rmSync(o.out, { recursive: true, force: true });
  renameSync(tmp, o.out);
  return [...names, "config.json"].map((f) => join(o.out, f));
}

/** One tensor of a single-file checkpoint as `editTensor` hands it over: its header entry and its bytes. */
export interface TensorBytes {
  dtype: string;
  shape: number[];
  /** The tensor's bytes inside the file's buffer: writes to it are written back. */
  data: Buffer;
}

/**
 * Rewrites one tensor of a single-file checkpoint in place: how tests give a synthetic checkpoint broken
 * weights, or weights that make a model behave in a known way, under a valid header.
 */
export function editTensor(dir: string, name: string, edit: (tensor: TensorBytes) => void): void {
  const file = join(dir, "model.safetensors");
  const buf = readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString()) as Record<
    string,
    { dtype?: string; shape?: number[]; data_offsets?: [number, number] }
  >;
  const t = header[name];
  if (!t?.dtype || !t.shape || !t.data_offsets) throw new Error(`${file}: no tensor '${name}'`);
  edit({ dtype: t.dtype, shape: t.shape, data: buf.subarray(8 + n + t.data_offsets[0], 8 + n + t.data_offsets[1]) });
  writeFileSync(file, buf);
}

/**
 * Sets the elements [begin, end) (default: all) of one BF16 tensor of a single-file checkpoint to
 * `bits` (0x7fc0: NaN, 0x7f80: +Inf), in place: a checkpoint whose weights are broken (all of them, or
 * one embedding row) but whose header is valid.
 */
export function fillBf16Tensor(dir: string, name: string, bits: number, elements?: [begin: number, end: number]): void {
  editTensor(dir, name, ({ dtype, data }) => {
    if (dtype !== "BF16") throw new Error(`${dir}: tensor '${name}' is ${dtype}, not BF16`);
    const [begin, end] = elements ? [2 * elements[0], 2 * elements[1]] : [0, data.length];
    if (begin < 0 || end > data.length || begin > end) throw new RangeError(`${name}: elements ${elements} out of the tensor`);
    for (let at = begin; at < end; at += 2) data.writeUInt16LE(bits, at);
  });
}
