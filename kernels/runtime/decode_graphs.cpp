// decode_graphs.cpp — see decode_graphs.h.
#include "decode_graphs.h"

namespace gptoss {

namespace {

bool is_decode(const std::vector<SeqChunk>& seqs) {
  for (const SeqChunk& q : seqs)
    if (q.num_tokens != 1 || q.all_logits) return false;
  return true;
}

// One padding row: token 0 at position 0, its keys and values in the padding blocks.
SeqChunk padding_chunk(const KvCache& kv) { return SeqChunk{1, 0, {kv.pad_block()}, {kv.pad_sliding_block()}, false}; }

}  // namespace

DecodeGraphs::DecodeGraphs(const OpSet& ops, bool enabled)
    : ops_(ops), enabled_(enabled && ops.graphs.begin != nullptr) {}

DecodeGraphs::~DecodeGraphs() { clear(); }

void DecodeGraphs::clear() {
  for (void*& g : graphs_) {
    if (g != nullptr) ops_.graphs.release(g);
    g = nullptr;
  }
}

bool DecodeGraphs::run(Transformer& t, KvCache& kv, const std::vector<int32_t>& tokens, const std::vector<SeqChunk>& seqs) {
  const int B = bucket(static_cast<int>(seqs.size()));
  if (!enabled_ || B == 0 || kv.pad_block() < 0 || !is_decode(seqs)) return false;
  std::vector<int32_t> padded_tokens = tokens;
  std::vector<SeqChunk> padded = seqs;
  padded_tokens.resize(B, 0);
  padded.resize(B, padding_chunk(kv));
  t.prepare(padded_tokens, padded, kv);
  std::vector<const void*> buffers = t.buffers();
  if (buffers != captured_buffers_ || t.precision() != captured_precision_) clear();
  captured_buffers_ = std::move(buffers);
  captured_precision_ = t.precision();
  size_t slot = 0;
  while (kBuckets[slot] != B) ++slot;
  void*& graph = graphs_[slot];
  if (graph == nullptr) {
    void* g = ops_.graphs.begin();
    try {
      t.launch(kv);
      ops_.graphs.end(g);
    } catch (...) {
      ops_.graphs.release(g);
      throw;
    }
    graph = g;
    ++captures_;
  }
  ops_.graphs.replay(graph);
  ++replays_;
  return true;
}

}  // namespace gptoss
