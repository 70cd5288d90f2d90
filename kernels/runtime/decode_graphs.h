// decode_graphs.h — decode steps replayed from captured launch graphs. A decode-only step of n
// sequences (one new token each, last-row logits) is padded to the smallest bucket B ≥ n of
// 1, 2, 4, …, 128 and runs the bucket's graph: Transformer::prepare rewrites the step's inputs in place
// (ids, positions, block tables) and the graph, captured from Transformer::launch on the first step of
// that bucket, replays every kernel without a launch from the host. Padding rows are token 0 at
// position 0 of the KV cache's padding block, so they never touch a sequence's cache; rows are
// independent in every op (batch invariance), so the real rows' logits are those of an eager step.
// Graphs are dropped when the step's buffers have moved since they were captured (a larger step grew
// the scratch) or the precision changed (on device backends that also moves the KV pools). Other
// steps (prefill, more than 128 sequences, a backend without graphs, several ranks) run eagerly.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "../model/gpt_oss.h"

namespace gptoss {

class DecodeGraphs {
 public:
  static constexpr std::array<int, 8> kBuckets = {1, 2, 4, 8, 16, 32, 64, 128};
  // The bucket a decode step of n sequences replays, or 0 when none fits (n < 1 or n > 128).
  static constexpr int bucket(int n) {
    for (int b : kBuckets)
      if (n >= 1 && n <= b) return b;
    return 0;
  }

  DecodeGraphs(const OpSet& ops, bool enabled);
  ~DecodeGraphs();
  DecodeGraphs(const DecodeGraphs&) = delete;
  DecodeGraphs& operator=(const DecodeGraphs&) = delete;

  bool enabled() const { return enabled_; }
  // Runs the step through its bucket's graph when it is a decode step that fits one; returns false
  // (nothing done) when the caller should run it eagerly. The logits of the first seqs.size() rows are
  // then at t.logits().
  bool run(Transformer& t, KvCache& kv, const std::vector<int32_t>& tokens, const std::vector<SeqChunk>& seqs);
  // Drops every captured graph (the precision changed, or the scratch moved).
  void clear();
  // Replays and captures so far (tests).
  uint64_t replays() const { return replays_; }
  uint64_t captures() const { return captures_; }

 private:
  const OpSet& ops_;
  const bool enabled_;
  std::array<void*, kBuckets.size()> graphs_{};
  Precision captured_precision_ = Precision::Exact;
  std::vector<const void*> captured_buffers_;  // the step buffers every graph held reads and writes
  uint64_t replays_ = 0, captures_ = 0;
};

}  // namespace gptoss
