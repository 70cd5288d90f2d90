// sdpa_sinks.cpp — causal (optionally sliding-window) attention with per-head sinks (spec §4.2, pitfall 4),
// over the paged KV cache plus the step's own k/v rows. Online softmax whose running max starts at the
// sink; the sink joins the denominator only. Also the KV store that writes a step's rows into the pages.
#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "../core/bf16.h"
#include "../core/fp8.h"
#include "ops.h"
#include "simd.h"
#include "vec_exp.h"

namespace gptoss::cpu {

// kernels
// Element index of (pos, head) in the pool: K, or V with `value`.
static inline int64_t kv_index(const KvLayer& kv, const AttnSeq& s, int pos, int head, bool value) {
  const int32_t block = s.blocks[pos / kv.block_size];
  const int slot = pos % kv.block_size;
  return block * kv.block_elems() + (value ? static_cast<int64_t>(kv.kv_heads) * kv.block_size * kv.head_dim : 0) +
         (static_cast<int64_t>(head) * kv.block_size + slot) * kv.head_dim;
}

// Every e4m3 code's value: a cached fp8 row decodes by lookup.
static const float* e4m3_table() {
  static const auto table = [] {
    std::array<float, 256> t{};
    for (int c = 0; c < 256; ++c) t[c] = e4m3_to_f32(static_cast<uint8_t>(c));
    return t;
  }();
  return table.data();
}

// A cached key or value row as fp32: in place for an fp32 pool, widened into `buf` otherwise.
static inline const float* cached_row(const KvLayer& kv, const AttnSeq& s, int pos, int head, bool value, float* buf) {
  const int64_t at = kv_index(kv, s, pos, head, value);
  if (kv.type == KvType::F32) return static_cast<const float*>(kv.pool) + at;
  if (kv.type == KvType::FP8) {
    const uint8_t* src = static_cast<const uint8_t*>(kv.pool) + at;
    const float scale = kv.scales[at / kv.head_dim], *table = e4m3_table();
    for (int d = 0; d < kv.head_dim; ++d) buf[d] = table[src[d]] * scale;
    return buf;
  }
  const bf16_t* src = static_cast<const bf16_t*>(kv.pool) + at;
#pragma omp simd
  for (int d = 0; d < kv.head_dim; ++d) buf[d] = bf16_to_f32(src[d]);
  return buf;
}

// Stores one row of D elements at element index `at` in the pool's type.
static void store_row(const KvLayer& kv, int64_t at, const float* x) {
  const int D = kv.head_dim;
  if (kv.type == KvType::F32) {
    std::copy_n(x, D, static_cast<float*>(kv.pool) + at);
  } else if (kv.type == KvType::BF16) {
    bf16_t* dst = static_cast<bf16_t*>(kv.pool) + at;
    for (int d = 0; d < D; ++d) dst[d] = f32_to_bf16(x[d]);
  } else {
    float amax = 0.0f;
    for (int d = 0; d < D; ++d) amax = std::max(amax, std::fabs(x[d]));  // a NaN element stays out of the scale
    const float scale = fp8_row_scale(amax);
    uint8_t* dst = static_cast<uint8_t*>(kv.pool) + at;
    for (int d = 0; d < D; ++d) dst[d] = fp8_encode(x[d], scale);
    kv.scales[at / D] = scale;
  }
}

static void attend_one(const float* q, const AttnSeq& s, int pos, int kv_head, const float* k_new, const float* v_new,
                       int64_t ldkv, const KvLayer& kv, float sink, float scale, int window, float* out) {
  const int D = kv.head_dim;
  const int lo = window > 0 ? std::max(0, pos - window + 1) : 0;
  float m = sink, l = 0.0f;
  float acc[512], kbuf[512], vbuf[512];
  for (int d = 0; d < D; ++d) acc[d] = 0.0f;
  for (int j = lo; j <= pos; ++j) {
    const bool cached = j < s.pos_begin;
    const float* k = cached ? cached_row(kv, s, j, kv_head, false, kbuf) : k_new + (s.token_begin + j - s.pos_begin) * ldkv + kv_head * D;
    const float* v = cached ? cached_row(kv, s, j, kv_head, true, vbuf) : v_new + (s.token_begin + j - s.pos_begin) * ldkv + kv_head * D;
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

// Prefill fast path (AVX-512) for a chunk that starts at position 0, so every key is one of the chunk's
// own rows: keys of each kv head are transposed once (Kt[d][j]) so 16 scores come from 64 FMAs with no
// horizontal sums; softmax is two-pass with a vector exp; P·V accumulates rows of V.
__attribute__((target("avx512f,fma"))) void attend_prefill_row(const float* q, const float* kt, int n_keys_total, const float* v,
                                                               int64_t ldv, int D, int lo, int hi, float sink, float scale,
                                                               float* scores, float* out) {
  // scores[j - lo] for j in [lo, hi]
  const int n = hi - lo + 1;
  __m512 vmax = _mm512_set1_ps(sink);
  for (int j0 = 0; j0 < n; j0 += 16) {
    const __mmask16 m = n - j0 >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << (n - j0)) - 1);
    __m512 acc = _mm512_setzero_ps();
    for (int d = 0; d < D; ++d) acc = _mm512_fmadd_ps(_mm512_set1_ps(q[d]), _mm512_maskz_loadu_ps(m, kt + static_cast<int64_t>(d) * n_keys_total + lo + j0), acc);
    acc = _mm512_mul_ps(acc, _mm512_set1_ps(scale));
    _mm512_mask_storeu_ps(scores + j0, m, acc);
    vmax = _mm512_mask_max_ps(vmax, m, vmax, acc);
  }
  const float mx = _mm512_reduce_max_ps(vmax);
  __m512 vsum = _mm512_setzero_ps();
  for (int j0 = 0; j0 < n; j0 += 16) {
    const __mmask16 m = n - j0 >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << (n - j0)) - 1);
    const __m512 p = _mm512_maskz_mov_ps(m, exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, scores + j0), _mm512_set1_ps(mx))));
    _mm512_mask_storeu_ps(scores + j0, m, p);
    vsum = _mm512_add_ps(vsum, p);
  }
  const float z = _mm512_reduce_add_ps(vsum) + std::exp(sink - mx);
  __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
  const int dv = D / 16;
  for (int j = 0; j < n; ++j) {
    const __m512 p = _mm512_set1_ps(scores[j]);
    const float* vr = v + static_cast<int64_t>(lo + j) * ldv;
    for (int b = 0; b < dv; ++b) acc[b] = _mm512_fmadd_ps(p, _mm512_loadu_ps(vr + 16 * b), acc[b]);
  }
  const __m512 inv = _mm512_set1_ps(1.0f / z);
  for (int b = 0; b < dv; ++b) _mm512_storeu_ps(out + 16 * b, _mm512_mul_ps(acc[b], inv));
}

// launchers
void f32_sdpa_sinks(const float* q, int64_t ldq, const float* k_new, const float* v_new, int64_t ldkv, const AttnSeq* seqs,
                    int num_seqs, const KvLayer& kv, int q_heads, const float* sinks, float scale, int window, float* out,
                    int64_t ldo, float*) {
  const int D = kv.head_dim, group = q_heads / kv.kv_heads;
  // Flatten (sequence, token, head) into one parallel loop: prefill and decode rows share the cores.
  thread_local std::vector<std::pair<int, int>> rows;  // (seq index, token index within seq), reused
  rows.clear();
  for (int i = 0; i < num_seqs; ++i)
    for (int t = 0; t < seqs[i].num_tokens; ++t) rows.emplace_back(i, t);
  // Sequences that start at position 0 with head_dim a multiple of 16 (≤ 64) take the prefill path.
  const bool vec = simd_level() == Simd::Avx512 && D % 16 == 0 && D <= 64;
  thread_local std::vector<std::vector<float>> kt;  // per sequence: [kv_head][d][n_tokens], reused
  if (static_cast<int>(kt.size()) < num_seqs) kt.resize(num_seqs);
  for (auto& k : kt) k.clear();
  for (int i = 0; vec && i < num_seqs; ++i) {
    const AttnSeq& s = seqs[i];
    if (s.pos_begin != 0 || s.num_tokens < 16) continue;
    kt[i].resize(static_cast<size_t>(kv.kv_heads) * D * s.num_tokens);
    for (int h = 0; h < kv.kv_heads; ++h)
      for (int t = 0; t < s.num_tokens; ++t)
        for (int d = 0; d < D; ++d)
          kt[i][(static_cast<size_t>(h) * D + d) * s.num_tokens + t] = k_new[(s.token_begin + t) * ldkv + h * D + d];
  }
  const int64_t work = static_cast<int64_t>(rows.size()) * q_heads;
  const auto* rows_data = rows.data();
  const auto* kt_data = kt.data();
#pragma omp parallel for schedule(dynamic, 4)
  for (int64_t w = 0; w < work; ++w) {
    const auto [si, t] = rows_data[w / q_heads];
    const int h = static_cast<int>(w % q_heads);
    const AttnSeq& s = seqs[si];
    const int row = s.token_begin + t;
    if (!kt_data[si].empty()) {
      thread_local std::vector<float> scores;
      scores.resize(s.num_tokens);
      const int kvh = h / group;
      const int lo = window > 0 ? std::max(0, t - window + 1) : 0;
      attend_prefill_row(q + row * ldq + h * D, kt_data[si].data() + static_cast<size_t>(kvh) * D * s.num_tokens, s.num_tokens,
                         v_new + s.token_begin * ldkv + kvh * D, ldkv, D, lo, t, sinks[h], scale, scores.data(),
                         out + row * ldo + h * D);
      continue;
    }
    attend_one(q + row * ldq + h * D, s, s.pos_begin + t, h / group, k_new, v_new, ldkv, kv, sinks[h], scale, window,
               out + row * ldo + h * D);
  }
}

void f32_kv_store(const float* k_new, const float* v_new, int64_t ldkv, const AttnSeq* seqs, int num_seqs, const KvLayer& kv) {
  const int D = kv.head_dim;
  for (int i = 0; i < num_seqs; ++i) {
    const AttnSeq& s = seqs[i];
    for (int t = 0; t < s.num_tokens; ++t) {
      const int row = s.token_begin + t;
      for (int h = 0; h < kv.kv_heads; ++h) {
        store_row(kv, kv_index(kv, s, s.pos_begin + t, h, false), k_new + row * ldkv + h * D);
        store_row(kv, kv_index(kv, s, s.pos_begin + t, h, true), v_new + row * ldkv + h * D);
      }
    }
  }
}

}  // namespace gptoss::cpu
