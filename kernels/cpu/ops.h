// ops.h — the engine's op set, one entry per op, the same list on every backend (cpu/ today, cuda/ next).
// model/gpt_oss.cpp calls ops only through an OpSet, so a backend is one table (ggml's dispatch switch).
// Every op computes in fp32 from bf16, q8 or MXFP4 weights; names follow <in>_<weight>_<op>.
// Each op file has a "kernels" section (the inner loops) and a "launchers" section (checks + dispatch).
#pragma once

#include <cstdint>

#include <string>

#include "../core/device.h"  // defines: DeviceMemory
#include "../core/error.h"   // defines: fail
#include "../core/tensor.h"  // defines: MatrixBF16, MxFp4Matrix

namespace gptoss {

// One sequence's slice of a step, as attention sees it.
struct AttnSeq {
  int token_begin;        // first row of this sequence in the step's token rows
  int num_tokens;         // rows of this sequence in the step
  int pos_begin;          // absolute position of the first row
  const int32_t* blocks;  // KV block table by position / block_size (sliding: -1 before the window)
  int num_blocks;
};

// How the KV cache stores its elements: fp32; bf16 as raw bits (round-to-nearest-even on store,
// core/bf16.h); or fp8 e4m3 codes with one fp32 scale per cached row (core/fp8.h: the row's largest
// magnitude maps to the largest code). Attention widens to fp32 on load whatever the pool holds.
enum class KvType : uint8_t { F32, BF16, FP8 };

// One layer's paged KV storage: block b holds K then V, each [kv_heads][block_size][head_dim] elements
// of `type`. A cached row is the head_dim elements of one head's key or value at one position; with
// FP8 its scale is scales[element index / head_dim] (same order as the rows in the pool).
struct KvLayer {
  void* pool;
  int block_size;
  int kv_heads;
  int head_dim;
  KvType type = KvType::F32;
  float* scales = nullptr;  // FP8 only
  int64_t block_elems() const { return 2ll * kv_heads * block_size * head_dim; }
  int64_t block_rows() const { return 2ll * kv_heads * block_size; }
  int elem_bytes() const { return kv_elem_bytes(type); }
  static int kv_elem_bytes(KvType t) { return t == KvType::F32 ? 4 : t == KvType::BF16 ? 2 : 1; }
};

// Per-request sampling controls (see cpu/sample.cpp for the order they apply in).
struct SamplingParams {
  float temperature = 0.0f;  // 0 = greedy
  float top_p = 1.0f;
  int top_k = 0;             // 0 = off
  float min_p = 0.0f;
  float presence_penalty = 0.0f, frequency_penalty = 0.0f, repetition_penalty = 1.0f;
  uint64_t seed = 0;
  int num_top_logprobs = 0;  // top-N alternatives to report (≤ kMaxTopLogprobs)
  const int32_t* bias_ids = nullptr;
  const float* bias_values = nullptr;
  int num_bias = 0;
  const int32_t* prompt = nullptr;  // for the repetition penalty
  int num_prompt = 0;
  const int32_t* output = nullptr;  // generated so far: penalties
  int num_output = 0;
  // Allowed-token bitmask (constrained decoding; xgrammar's layout): bit (id & 31) of word (id >> 5) set
  // = id allowed. A disallowed id is out before everything else, and the logprobs are those of the
  // masked distribution. Null = every id allowed; else at least mask_words(V) words (bits of ids ≥ V
  // are ignored) allowing some id below V.
  const uint32_t* allowed = nullptr;
  int allowed_words = 0;
  // Device op sets only: sample_scratch_bytes(V) of the backend's memory, reused across calls on one
  // stream (null: the op allocates it per call). The CPU op ignores it.
  void* scratch = nullptr;
};

inline int mask_words(int V) { return (V + 31) / 32; }

// Every backend's f32_sample: invalid_argument unless the mask, when there is one, covers V ids.
inline void check_mask_words(const SamplingParams& p, int V) {
  if (p.allowed != nullptr && p.allowed_words < mask_words(V))
    fail(gptoss_status_invalid_argument, "sample: the allowed-token mask has " + std::to_string(p.allowed_words) +
                                             " words; a vocabulary of " + std::to_string(V) + " tokens needs " +
                                             std::to_string(mask_words(V)));
}

// How many ids below V p.allowed lets through (V without a mask). Fails with invalid_argument when the
// mask has fewer than mask_words(V) words or allows none: the host-side check of device backends, whose
// ops cannot fail on the mask's contents (cpu/sample.cpp).
int allowed_tokens(const SamplingParams& p, int V);

inline size_t sample_scratch_bytes(int V) { return static_cast<size_t>(V) * (sizeof(double) + sizeof(float) + sizeof(uint32_t)); }

constexpr int kMaxTopLogprobs = 20;

struct SampleResult {
  int32_t token;  // -1 from a device op given a mask that allows no id (it cannot fail; the engine checks first)
  float logprob;  // log-softmax of the raw logits, over the allowed ids when there is a mask
  int num_top;    // min(num_top_logprobs, allowed ids)
  int32_t top_ids[kMaxTopLogprobs];
  float top_logprobs[kMaxTopLogprobs];
  int32_t non_finite;  // index of the first NaN or ±Inf raw logit (the rest is then meaningless), or -1
};

// How a product computes its rows. Either way a token's result depends only on its own row, never on
// how many other rows share the product (batch invariance): Stream (decode tokens and short prefill
// chunks) reads the weights once per product for up to 4 rows at a time; Panel (rows of long prefill
// chunks) widens 48-row panels to fp32 once and runs the fp32 GEMM on the CPU (the serving-precision
// expert product: int16 panels, cpu/gemm_i16.cpp; the serving-precision dense product over Rows16
// weights runs both paths alike, cpu/matmul_bf16x2.cpp), and runs on the tensor cores with the
// activations split into three bf16 planes on CUDA. The caller picks, per row.
enum class RowPath : uint8_t { Stream, Panel };

// One dense product in a group: out[T, w.rows] = x[T, w.cols] · wᵀ + bias (row stride ldo), with bf16
// weights (DenseMatmul) or q8 weights (DenseQ8Matmul).
template <class W>
struct DenseProduct {
  const float* x;
  int T;
  W w;
  const float* bias;  // may be null
  float* out;
  int64_t ldo;
  RowPath path = RowPath::Stream;
};
using DenseMatmul = DenseProduct<MatrixBF16>;
using DenseQ8Matmul = DenseProduct<MatrixQ8>;

// One expert product in a group: out[n, w.rows] = x[n, w.cols] · W(MXFP4)ᵀ + bias.
struct ExpertMatmul {
  const float* x;
  int n;
  MxFp4Matrix w;
  const float* bias;  // may be null
  float* out;
  RowPath path = RowPath::Stream;
};

// One local expert's share of a step after moe_route: routed rows [begin, begin + n), of which the first
// `streamed` take RowPath::Stream and the rest RowPath::Panel.
struct ExpertRows {
  int expert;  // global id
  int slot;    // index into this rank's experts
  int begin;
  int streamed;
  int n;
};

// Where moe_route writes a step's routing, all in the backend's memory. Capacities: T·k for the row
// arrays, E for groups.
struct MoeRoute {
  float* row_weight;    // [rows]: the router weight of each routed row
  int32_t* token_rows;  // [T, k]: the routed row of each choice, or -1 when another rank holds the expert
  ExpertRows* groups;   // [groups]: local experts that some token chose, ascending
  int32_t* totals;      // [2]: number of groups, number of rows
};

// One MoE projection for every local expert at once, over moe_route's routed rows, reading the groups
// where they are (in the backend's memory: nothing comes back to the host). Row r of group g:
// out[r] = x[r] · experts[g.slot].wᵀ + bias; a group's first `streamed` rows take RowPath::Stream, the
// rest RowPath::Panel. With swiglu, each row's [2I] products (gate/up interleaved) go through the clamped
// SwiGLU and out gets the [I] result (f32_swiglu_oai's arithmetic).
struct MoeMatmul {
  const float* x;             // [rows, cols]
  const ExpertRows* groups;   // moe_route's
  const int32_t* totals;      // moe_route's: groups, rows
  int max_groups;             // a bound on totals[0] the host knows (min(E, T·k))
  const ExpertProj* experts;  // [local experts]
  int64_t rows, cols;         // every expert's weight shape
  float* out;                 // [rows, this->rows] or, with swiglu, [rows, this->rows / 2]
  bool swiglu = false;
  float limit = 0.0f, alpha = 0.0f;
  float* wide = nullptr;  // with swiglu: [rows, this->rows] scratch for a backend that folds after the products
  // A bound on the Panel rows of all groups together (Σ n − streamed) the host knows: the step's panel
  // tokens × k. A backend may size a launch by it; 0 lets it treat every row as Stream.
  int max_panel_rows = 0;
};

struct OpSet {
  const char* name;
  // Where every pointer an op takes lives (core/device.h).
  DeviceMemory memory;
  // out[t] = table[ids[t]] widened to fp32.
  void (*bf16w_embed)(const MatrixBF16& table, const int32_t* ids, int T, float* out);
  // out = x * rsqrt(mean(x²) + eps) * gain, per row of H.
  void (*f32_rmsnorm)(const float* x, int T, int H, const float* gain, float eps, float* out);
  // A group of dense products run as one parallel region (QKV share it; so do the experts of a layer).
  void (*f32_bf16w_matmul)(const DenseMatmul* jobs, int num_jobs);
  // The same products in serving precision: each activation may be split into two bf16 (hi + lo, error
  // ≤ 2⁻¹⁶|x| per element) whose products with the weights are summed in fp32; may take the exact path.
  void (*bf16x2_bf16w_matmul)(const DenseMatmul* jobs, int num_jobs);
  // In-place half-split RoPE on x[T, heads, head_dim] (row stride ldx), cos/sin scaled by concentration.
  void (*f32_rope)(float* x, int T, int heads, int head_dim, int64_t ldx, const int32_t* positions, const float* inv_freq,
                   float concentration);
  // Attention with sinks over paged KV (positions < pos_begin) plus this step's k/v rows. `workspace`:
  // sdpa_workspace_floats(num_seqs, q_heads, head_dim) floats of the backend's memory (may be null when 0).
  void (*f32_sdpa_sinks)(const float* q, int64_t ldq, const float* k_new, const float* v_new, int64_t ldkv,
                         const AttnSeq* seqs, int num_seqs, const KvLayer& kv, int q_heads, const float* sinks,
                         float scale, int window, float* out, int64_t ldo, float* workspace);
  // Writes this step's k/v rows into the paged cache.
  void (*f32_kv_store)(const float* k_new, const float* v_new, int64_t ldkv, const AttnSeq* seqs, int num_seqs,
                       const KvLayer& kv);
  // Top-k of each row of logits[T, E] (ties → lower index), softmax over the k → idx/weights [T, k].
  void (*f32_router_topk)(const float* logits, int T, int E, int k, int32_t* idx, float* weights);
  // The same products over q8 weights (the q8 dense-weight mode), whatever the precision: Stream rows
  // quantize their activations as q8_mxfp4w_matmul does (two int8 digits of one scale per token, error
  // ≤ d / 256 per element) and sum each 32-element block in integers; Panel rows run the fp32 GEMM on the
  // dequantized weights and the exact activations. The unembedding uses it too in that mode.
  void (*q8_q8w_matmul)(const DenseQ8Matmul* jobs, int num_jobs);
  // A group of MXFP4 expert products run as one parallel region.
  void (*f32_mxfp4w_matmul)(const ExpertMatmul* jobs, int num_jobs);
  // The same products in serving precision: activations as two int8 digits per element (one scale per
  // token, d = max|x| / 127 over its row, error ≤ d / 256), integer dot products per 32-element block;
  // may take the exact path.
  void (*q8_mxfp4w_matmul)(const ExpertMatmul* jobs, int num_jobs);
  // z[n, I] = clamp(gate)·σ(α·gate)·(clamp(up)+1) from interleaved u[n, 2I].
  void (*f32_swiglu_oai)(const float* u, int n, int I, float limit, float alpha, float* z);
  // logits[T, V] = x[T, H] · lm_headᵀ (no bias).
  void (*f32_bf16w_unembed)(const float* x, int T, const MatrixBF16& w, float* logits, RowPath path);
  // y[n] += x[n] (the residual adds).
  void (*f32_add)(float* y, const float* x, int64_t n);
  // Groups the step's top-k choices idx/weights [T, k] by local expert (local_of_global[e] >= 0). Row
  // order: experts ascending, in each the tokens of streamed rows, then of panel rows (panel_row[t] != 0),
  // ascending (cpu/moe_route.cpp).
  void (*moe_route)(const int32_t* idx, const float* weights, int T, int k, int E, const int32_t* local_of_global,
                    const uint8_t* panel_row, const MoeRoute& out);
  // out[dest[t, j]] = x[t] (rows of H floats) for every dest ≥ 0, k entries per row of x.
  void (*f32_scatter_rows)(const float* x, int H, const int32_t* dest, int T, int k, float* out);
  // out[t] = Σ row_weight[r] · y[r] over token t's routed rows r, ascending (0 when it has none here).
  void (*f32_moe_combine)(const float* y, int H, const int32_t* token_rows, const float* row_weight, int T, int k,
                          float* out);
  // MoeMatmul in exact and in serving precision (as f32_ / q8_mxfp4w_matmul).
  void (*f32_mxfp4w_moe)(const MoeMatmul& p);
  void (*q8_mxfp4w_moe)(const MoeMatmul& p);
  // Picks the next token from one row of logits; counter = index of the token being sampled.
  void (*f32_sample)(const float* logits, int V, const SamplingParams& p, uint64_t counter, SampleResult* out);
  // The workspace f32_sdpa_sinks needs for a call of this size (the caller owns it, so a step's
  // launches allocate nothing and can be captured and replayed).
  size_t (*sdpa_workspace_floats)(int num_seqs, int q_heads, int head_dim);
  // Capturing a step's launches once and replaying them (core/device.h); null entries where the
  // backend has none (cpu).
  LaunchGraphs graphs;
};

const OpSet& cpu_ops();

namespace cpu {
// Host memory for weights copied out of the checkpoint's mapping into huge pages (cpu/memory.cpp).
// host_is_device is false so that place_weights copies into it.
const DeviceMemory& resident_memory();
// The layout resident experts are placed in: Rows16 where the serving-precision kernel for it runs
// (AVX512-VNNI and VBMI), unless EXPERTMESH_EXPERT_LAYOUT=rows asks for the checkpoint's; Rows otherwise.
MxFp4Layout resident_expert_layout();
// The layout resident dense weights are placed in: Rows16 where the serving-precision kernel for it runs
// (AVX512-BF16), unless EXPERTMESH_DENSE_LAYOUT=rows asks for the checkpoint's; Rows otherwise.
BF16Layout resident_dense_layout();
// The layout resident q8 dense weights are placed in: Rows16 where its kernel runs (AVX512-VNNI), unless
// EXPERTMESH_DENSE_LAYOUT=rows asks for the converted one; Runs otherwise.
Q8Layout resident_q8_layout();
// Whether q8_q8w_matmul reads Rows16 q8 matrices here (AVX512-VNNI); elsewhere it refuses them.
bool q8_rows16_supported();
}  // namespace cpu

// Single-product conveniences over the grouped entries.
inline void matmul(const OpSet& ops, const float* x, int T, const MatrixBF16& w, const float* bias, float* out, int64_t ldo,
                   RowPath path = RowPath::Stream) {
  const DenseMatmul job{x, T, w, bias, out, ldo, path};
  ops.f32_bf16w_matmul(&job, 1);
}
inline void mxfp4_matmul(const OpSet& ops, const float* x, int n, const MxFp4Matrix& w, const float* bias, float* out) {
  const ExpertMatmul job{x, n, w, bias, out};
  ops.f32_mxfp4w_matmul(&job, 1);
}

}  // namespace gptoss
