// sdpa_sinks.cpp — causal (optionally sliding-window) attention with per-head sinks (spec §4.2, pitfall 4),
// over the paged KV cache plus the step's own k/v rows. Online softmax whose running max starts at the
// sink; the sink joins the denominator only. Also the KV store that writes a step's rows into the pages.
#include <algorithm>
#include <cmath>
#include <vector>

#include "ops.h"

namespace gptoss::cpu {

// kernels
static inline const float* kv_slot(const KvLayer& kv, const AttnSeq& s, int pos, int head, bool value) {
  const int64_t span = static_cast<int64_t>(s.num_blocks) * kv.block_size;
  const int64_t idx = kv.ring ? pos % span : pos;
  const int32_t block = s.blocks[idx / kv.block_size];
  const int slot = static_cast<int>(idx % kv.block_size);
  return kv.pool + block * kv.block_floats() + (value ? static_cast<int64_t>(kv.kv_heads) * kv.block_size * kv.head_dim : 0) +
         (static_cast<int64_t>(head) * kv.block_size + slot) * kv.head_dim;
}

static void attend_one(const float* q, const AttnSeq& s, int pos, int kv_head, const float* k_new, const float* v_new,
                       int64_t ldkv, const KvLayer& kv, float sink, float scale, int window, float* out) {
  const int D = kv.head_dim;
  const int lo = window > 0 ? std::max(0, pos - window + 1) : 0;
  float m = sink, l = 0.0f;
  float acc[512];
  for (int d = 0; d < D; ++d) acc[d] = 0.0f;
  for (int j = lo; j <= pos; ++j) {
    const bool cached = j < s.pos_begin;
    const float* k = cached ? kv_slot(kv, s, j, kv_head, false) : k_new + (s.token_begin + j - s.pos_begin) * ldkv + kv_head * D;
    const float* v = cached ? kv_slot(kv, s, j, kv_head, true) : v_new + (s.token_begin + j - s.pos_begin) * ldkv + kv_head * D;
    float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
    for (int d = 0; d < D; ++d) dot += q[d] * k[d];
    const float score = dot * scale;
    if (score > m) {
      const float r = std::exp(m - score);
      l *= r;
      for (int d = 0; d < D; ++d) acc[d] *= r;
      m = score;
    }
    const float p = std::exp(score - m);
    l += p;
#pragma omp simd
    for (int d = 0; d < D; ++d) acc[d] += p * v[d];
  }
  l += std::exp(sink - m);
  const float inv = 1.0f / l;
  for (int d = 0; d < D; ++d) out[d] = acc[d] * inv;
}

// launchers
void f32_sdpa_sinks(const float* q, int64_t ldq, const float* k_new, const float* v_new, int64_t ldkv, const AttnSeq* seqs,
                    int num_seqs, const KvLayer& kv, int q_heads, const float* sinks, float scale, int window, float* out,
                    int64_t ldo) {
  const int D = kv.head_dim, group = q_heads / kv.kv_heads;
  // Flatten (sequence, token, head) into one parallel loop: prefill and decode rows share the cores.
  std::vector<std::pair<int, int>> rows;  // (seq index, token index within seq)
  for (int i = 0; i < num_seqs; ++i)
    for (int t = 0; t < seqs[i].num_tokens; ++t) rows.emplace_back(i, t);
  const int64_t work = static_cast<int64_t>(rows.size()) * q_heads;
#pragma omp parallel for schedule(dynamic, 4)
  for (int64_t w = 0; w < work; ++w) {
    const auto [si, t] = rows[w / q_heads];
    const int h = static_cast<int>(w % q_heads);
    const AttnSeq& s = seqs[si];
    const int row = s.token_begin + t;
    attend_one(q + row * ldq + h * D, s, s.pos_begin + t, h / group, k_new, v_new, ldkv, kv, sinks[h], scale, window,
               out + row * ldo + h * D);
  }
}

void f32_kv_store(const float* k_new, const float* v_new, int64_t ldkv, const AttnSeq* seqs, int num_seqs, const KvLayer& kv) {
  const int D = kv.head_dim;
  for (int i = 0; i < num_seqs; ++i) {
    const AttnSeq& s = seqs[i];
    const int64_t span = static_cast<int64_t>(s.num_blocks) * kv.block_size;
    // A ring keeps only its last `span` positions: earlier rows of a long chunk would be overwritten anyway.
    const int first = kv.ring ? std::max(0, s.num_tokens - static_cast<int>(span)) : 0;
    for (int t = first; t < s.num_tokens; ++t) {
      const int row = s.token_begin + t;
      for (int h = 0; h < kv.kv_heads; ++h) {
        float* kd = const_cast<float*>(kv_slot(kv, s, s.pos_begin + t, h, false));
        float* vd = const_cast<float*>(kv_slot(kv, s, s.pos_begin + t, h, true));
        std::copy_n(k_new + row * ldkv + h * D, D, kd);
        std::copy_n(v_new + row * ldkv + h * D, D, vd);
      }
    }
  }
}

}  // namespace gptoss::cpu
