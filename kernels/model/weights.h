// weights.h — what one rank holds of a gpt-oss model, as typed views. Large matrices point into the
// memory-mapped checkpoint (bf16, MXFP4 packed — never dequantized); small vectors (norm gains, biases,
// sinks) are widened to fp32 once at load. A rank of an expert-parallel group holds only its share:
// its kv heads (and their q heads) and the experts of its placement.
#pragma once

#include <cstdint>
#include <deque>
#include <type_traits>
#include <memory>
#include <string>
#include <vector>

#include "../core/config.h"
#include "../core/tensor.h"

namespace gptoss {

class Checkpoint;

struct Linear {
  MatrixBF16 w;
  Span<float> bias;  // empty = no bias
  MatrixQ8 q8;       // the same weights in 8 bits (quantize_dense), or empty: the products read these
};

struct Expert {
  MxFp4Matrix w1;          // [2I, H], gate/up interleaved rows
  Span<float> b1;          // [2I]
  MxFp4Matrix w2;          // [H, I]
  Span<float> b2;          // [H]
};

struct AttentionWeights {
  Span<float> norm;  // [H]
  Linear q, k, v;           // local heads
  Linear o;                 // [H, local q width]; bias only on rank 0 (partial sums are all-reduced)
  Span<float> sinks;  // [local q heads]
};

struct MoEWeights {
  Span<float> norm;                  // [H]
  Linear router;                     // [E, H], replicated
  Span<int32_t> local_of_global;     // expert id -> index into experts, or -1 when another rank holds it
  std::vector<Expert> experts;       // this rank's experts
  Span<ExpertProj> w1_table, w2_table;  // the same experts' projections by slot, as the MoE ops read them
};

struct LayerWeights {
  bool sliding = false;
  AttentionWeights attn;
  MoEWeights moe;
};

// Which share of the model a rank loads.
struct ShardSpec {
  int rank = 0;
  int world = 1;
  std::vector<int> experts;  // global expert ids for this rank; empty = contiguous split by rank
};

struct ShardInfo {
  int rank = 0, world = 1;
  int q_head_begin = 0, q_head_end = 0, kv_head_begin = 0, kv_head_end = 0;
  std::vector<int> experts;
  uint64_t expert_bytes = 0;  // MXFP4 bytes (blocks + scales) this rank references
};

struct ModelWeights {
  ModelConfig config;
  ShardInfo shard;
  MatrixBF16 embed;        // [V, H]
  Span<float> final_norm;
  MatrixBF16 lm_head;      // [V, H]
  MatrixQ8 lm_head_q8;     // the q8 dense-weight mode's unembedding, or empty
  std::vector<LayerWeights> layers;
  std::shared_ptr<const Checkpoint> checkpoint;  // keeps the mappings alive
  std::shared_ptr<const void> storage;           // owns what the Spans (and, once placed, the matrices) view
};

// Host storage of the loader's small vectors (widened to fp32), viewed by Spans.
struct HostVectors {
  std::deque<std::vector<float>> f32;
  std::deque<std::vector<int32_t>> i32;
  std::deque<std::vector<ExpertProj>> projections;
  template <class T>
  Span<T> keep(std::vector<T> v) {
    auto& list = [this]() -> auto& {
      if constexpr (std::is_same_v<T, float>) return f32;
      else if constexpr (std::is_same_v<T, int32_t>) return i32;
      else return projections;
    }();
    list.push_back(std::move(v));
    return Span<T>{list.back().data(), static_cast<int64_t>(list.back().size())};
  }
};

// The experts' projections by slot (MoEWeights::w1_table / w2_table).
inline std::vector<ExpertProj> projections(const std::vector<Expert>& experts, MxFp4Matrix Expert::*w, Span<float> Expert::*b) {
  std::vector<ExpertProj> out;
  for (const Expert& e : experts) out.push_back({e.*w, (e.*b).data()});
  return out;
}

std::shared_ptr<const ModelWeights> load_weights(const std::string& dir, const ShardSpec& shard);

// The q8 dense-weight modes: the same weights with the unembedding (and, with `attention`, the attention
// projections) also as 8-bit codes with one fp32 scale per 32 weights (loader/quantize_dense.cpp), which
// the forward pass then reads instead of their bf16 form. The result owns the converted matrices and
// keeps `host` alive.
std::shared_ptr<const ModelWeights> quantize_dense(std::shared_ptr<const ModelWeights> host, bool attention);
// One matrix's conversion: codes [rows, cols] (+128 offset), scales [rows, cols / 32].
void quantize_q8_rows(const MatrixBF16& w, uint8_t* codes, float* scales);

struct DeviceMemory;
// The layouts (core/tensor.h) place_weights writes: of the MXFP4 experts, of the dense products' bf16
// matrices (attention projections, router, unembedding; the embedding table stays Rows: it is read by
// row), and of the q8 dense-weight mode's matrices.
struct WeightLayouts {
  MxFp4Layout experts = MxFp4Layout::Rows;
  BF16Layout dense = BF16Layout::Rows;
  Q8Layout q8 = Q8Layout::Runs;
};
// The weights in a backend's memory: the same views over copies made once (bf16 matrices packed to
// ld = cols, MXFP4 experts still packed, each in the layout `layouts` says, and small vectors), owned by
// the result. Where device memory is host memory the host weights are returned as they are.
std::shared_ptr<const ModelWeights> place_weights(std::shared_ptr<const ModelWeights> host, const DeviceMemory& memory,
                                                  WeightLayouts layouts = {});

}  // namespace gptoss
