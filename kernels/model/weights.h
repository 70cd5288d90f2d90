// weights.h — what one rank holds of a gpt-oss model, as typed views. Large matrices point into the
// memory-mapped checkpoint (bf16, MXFP4 packed — never dequantized); small vectors (norm gains, biases,
// sinks) are widened to fp32 once at load. A rank of an expert-parallel group holds only its share:
// its kv heads (and their q heads) and the experts of its placement.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "../core/config.h"
#include "../core/tensor.h"

namespace gptoss {

class Checkpoint;

struct Linear {
  MatrixBF16 w;
  std::vector<float> bias;  // empty = no bias
};

struct Expert {
  MxFp4Matrix w1;          // [2I, H], gate/up interleaved rows
  std::vector<float> b1;   // [2I]
  MxFp4Matrix w2;          // [H, I]
  std::vector<float> b2;   // [H]
};

struct AttentionWeights {
  std::vector<float> norm;  // [H]
  Linear q, k, v;           // local heads
  Linear o;                 // [H, local q width]; bias only on rank 0 (partial sums are all-reduced)
  std::vector<float> sinks; // [local q heads]
};

struct MoEWeights {
  std::vector<float> norm;           // [H]
  Linear router;                     // [E, H], replicated
  std::vector<int> local_of_global;  // expert id -> index into experts, or -1 when another rank holds it
  std::vector<Expert> experts;       // this rank's experts
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
  std::vector<float> final_norm;
  MatrixBF16 lm_head;      // [V, H]
  std::vector<LayerWeights> layers;
  std::shared_ptr<const Checkpoint> checkpoint;  // keeps the mappings alive
};

std::shared_ptr<const ModelWeights> load_weights(const std::string& dir, const ShardSpec& shard);

}  // namespace gptoss
