// gpt_oss.h — the gpt-oss forward pass over a batch of sequence chunks (prefill chunks and decode tokens
// mixed), reading and extending a paged KV cache. Knows nothing about scheduling, sampling or tokens'
// meaning: it turns token ids into logits.
#pragma once

#include <initializer_list>
#include <memory>
#include <vector>

#include "../cpu/ops.h"
#include "weights.h"

namespace gptoss {

// Collective used between the ranks of an expert-parallel group; null for a single rank.
class AllReduce {
 public:
  virtual ~AllReduce() = default;
  virtual void sum(float* data, int64_t count) = 0;
};

// Paged KV storage for every layer of one rank, in two pools: full-attention layers and sliding-window
// layers each index their blocks by position (block = position / block_size). A sliding table may hold
// -1 for blocks that lie wholly before the window: the scheduler frees (or caches) those.
class KvCache {
 public:
  // The pools are allocated, zeroed, in the backend's memory (one allocation per pool kind), holding
  // elements of `type` (and, for FP8, each layer's row scales after its elements). With pad_block, each
  // pool has one more block, past the scheduler's ids, where the padding rows of a replayed decode graph
  // write their keys and values (runtime/decode_graphs.h).
  KvCache(const ModelConfig& c, const ShardInfo& s, int block_size, int num_full_blocks, int num_sliding_blocks,
          const DeviceMemory& memory, bool pad_block = false, KvType type = KvType::F32);
  KvLayer layer(int l) const;
  int block_size() const { return block_size_; }
  int num_full_blocks() const { return num_full_; }
  int num_sliding_blocks() const { return num_sliding_; }
  int window() const { return window_; }
  // The padding block's id in each pool, or -1 without one.
  int pad_block() const { return pad_ ? num_full_ : -1; }
  int pad_sliding_block() const { return pad_ ? num_sliding_ : -1; }
  KvType type() const { return type_; }
  // Capacity: bytes of both pools (padding included), bytes one token takes in every layer, and the
  // tokens each pool holds (blocks × block_size, padding excluded).
  uint64_t bytes() const { return full_.capacity() + sliding_kv_.capacity(); }
  uint64_t bytes_per_token() const;
  int64_t full_tokens() const { return static_cast<int64_t>(num_full_) * block_size_; }
  int64_t sliding_tokens() const { return static_cast<int64_t>(num_sliding_) * block_size_; }

 private:
  void allocate();
  int64_t layer_bytes(int blocks) const;

  std::vector<bool> sliding_;
  std::vector<int> index_in_kind_;
  int block_size_, num_full_, num_sliding_, window_, kv_heads_, head_dim_;
  bool pad_;
  KvType type_;
  int64_t block_elems_;
  const DeviceMemory* memory_;
  DeviceArray<uint8_t> full_, sliding_kv_;
};

struct SeqChunk {
  int num_tokens;
  int pos_begin;
  std::vector<int32_t> full_blocks;  // covers positions [0, pos_begin + num_tokens)
  std::vector<int32_t> sliding_blocks;  // by position too; entries wholly before the window may be -1
  bool all_logits;                   // logits for every row (teacher forcing) or only the last
};

// Numerics of the forward pass. Exact: fp32 activations everywhere (the golden tolerances' exact mode).
// Serving: the MXFP4 expert products round their activations to two int8 digits of one scale per token
// (ops.q8_mxfp4w_matmul), the bf16 dense products may split theirs into two bf16
// (ops.bf16x2_bf16w_matmul); everything else as in Exact. Weights converted to 8 bits (quantize_dense) are
// read in 8 bits (ops.q8_q8w_matmul) in either precision: Exact is exact only over bf16 dense weights.
enum class Precision { Exact, Serving };

// Prefill chunks of at least this many tokens take the panel path (a GEMM over packed weight panels) in
// the expert products (~16 tokens per expert on average at the 20b shape) and the unembedding of all
// positions, and at least kDensePanelChunkTokens in the other dense products (the kernel lab: the packed
// GEMM passes the streamed tiles from ~64 tokens on); shorter chunks and decode tokens stream. The choice
// depends on a token's own chunk only, so a sequence's numbers do not depend on what it is batched with.
constexpr int kPanelChunkTokens = 128;
constexpr int kDensePanelChunkTokens = 64;

struct Product;  // one dense product of a step (gpt_oss.cpp)

class Transformer {
 public:
  Transformer(std::shared_ptr<const ModelWeights> w, const OpSet& ops, AllReduce* all_reduce = nullptr);
  const ModelConfig& config() const { return w_->config; }
  void set_precision(Precision p) { precision_ = p; }
  Precision precision() const { return precision_; }
  const ModelWeights& weights() const { return *w_; }

  ~Transformer();

  // tokens: the step's rows, sequence after sequence. Returns logits [rows, vocab] for the requested rows
  // (per sequence: all of its rows, or its last row), in order, in the backend's memory; valid until the
  // next forward.
  const float* forward(const std::vector<int32_t>& tokens, const std::vector<SeqChunk>& seqs, KvCache& kv);
  // forward() in its two halves, for a caller that captures the launches once and replays them:
  // prepare() checks and uploads the step's plan and grows the scratch; launch() only launches ops,
  // reading what prepare() left. A captured launch() stays valid while buffers() does not change.
  void prepare(const std::vector<int32_t>& tokens, const std::vector<SeqChunk>& seqs, KvCache& kv);
  void launch(KvCache& kv) const;
  const float* logits() const;
  // Where each of the step's device buffers is now.
  std::vector<const void*> buffers() const;
  // Rows of logits the last forward returned.
  int logit_rows() const;

 private:
  struct Scratch;
  void plan(const std::vector<SeqChunk>& seqs, KvCache& kv, Scratch& s) const;
  void plan_head(const std::vector<SeqChunk>& seqs, Scratch& s) const;
  void head(Scratch& s) const;
  void dense(Scratch& s, std::initializer_list<Product> products) const;
  void attention_block(int l, Scratch& s, KvCache& kv) const;
  void mlp_block(int l, Scratch& s) const;

  std::shared_ptr<const ModelWeights> w_;
  const OpSet& ops_;
  AllReduce* all_reduce_;
  std::vector<float> inv_freq_;
  float concentration_;
  DeviceArray<float> inv_freq_dev_;
  Precision precision_ = Precision::Exact;
  std::unique_ptr<Scratch> scratch_;  // reused by every step
};

}  // namespace gptoss
