// sdpa_sinks.cpp — causal (optionally sliding-window) attention with per-head sinks (spec §4.2, pitfall 4),
// over the paged KV cache plus the step's own k/v rows; the sink joins the denominator only. Rows (prefill
// chunks and decode alike) gather their kv head's keys once per work item and take a two-pass softmax on
// AVX-512 (attend_heads); hosts without it, and contexts too long to gather, take an online softmax whose
// running max starts at the sink, reading each key where it lies (attend_one).
// Also the KV store that writes a step's rows into the pages.
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

// The vector path (AVX-512): keys of a kv head are transposed once into tiles of 16 keys
// (Kt[j / 16][d][j % 16], 4 KiB each, read front to back: a plain column layout put a tile's D loads 4 KiB
// apart, all in one L1 set) so 16 scores come from D FMAs with no horizontal sums; softmax is two-pass
// with a vector exp; P·V accumulates rows of V. H query heads of one kv group go together, so that each
// key and value load serves H heads and the FMAs run in 2·H (scores) and H·D/16 (P·V) independent chains
// instead of one and D/16 (a single chain of dependent FMAs waits on each one's latency). Each head's
// arithmetic is the same in the same order whatever H is.
constexpr int kKeyTile = 16;

inline __mmask16 key_mask(int J, int lo, int hi) {  // keys J … J + 15 that lie in [lo, hi]
  if (J + kKeyTile - 1 < lo || J > hi) return 0;
  const int first = std::max(lo, J) - J, last = std::min(hi, J + kKeyTile - 1) - J;
  return static_cast<__mmask16>(((2u << last) - 1) & ~((1u << first) - 1));
}

// Softmax numerators in place: scores[j] ← exp(scores[j] − mx) for j < n; returns 1 / (Σ + exp(sink − mx)).
__attribute__((target("avx512f,fma"))) inline float exp_scores(float* scores, int n, float mx, float sink) {
  __m512 vsum = _mm512_setzero_ps();
  for (int j0 = 0; j0 < n; j0 += 16) {
    const __mmask16 m = n - j0 >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << (n - j0)) - 1);
    const __m512 p = _mm512_maskz_mov_ps(m, exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, scores + j0), _mm512_set1_ps(mx))));
    _mm512_mask_storeu_ps(scores + j0, m, p);
    vsum = _mm512_add_ps(vsum, p);
  }
  return 1.0f / (_mm512_reduce_add_ps(vsum) + std::exp(sink - mx));
}

template <int H>
__attribute__((target("avx512f,fma"))) void attend_heads(const float* q, int64_t ldh, const float* kt, const float* v, int D, int lo,
                                                         int hi, const float* sinks, float scale, float* scores, int64_t lds, float* out) {
  // scores[h · lds + j − lo] for j in [lo, hi] (kKeyTile floats of room before each head's and 2 · kKeyTile
  // after); head h's query at q + h · ldh, its output at out + h · ldh; value rows D floats apart
  const int n = hi - lo + 1;
  __m512 vmax[H];
  for (int h = 0; h < H; ++h) vmax[h] = _mm512_set1_ps(sinks[h]);
  const int64_t tile = static_cast<int64_t>(D) * kKeyTile;
  for (int J = lo - lo % kKeyTile; J <= hi; J += 2 * kKeyTile) {
    const __mmask16 m0 = key_mask(J, lo, hi), m1 = key_mask(J + kKeyTile, lo, hi);
    const float* t0 = kt + J / kKeyTile * tile;
    const float* t1 = m1 ? t0 + tile : t0;
    __m512 a0[H], a1[H];
    for (int h = 0; h < H; ++h) a0[h] = _mm512_setzero_ps(), a1[h] = _mm512_setzero_ps();
    for (int d = 0; d < D; ++d) {
      const __m512 k0 = _mm512_maskz_loadu_ps(m0, t0 + d * kKeyTile), k1 = _mm512_maskz_loadu_ps(m1, t1 + d * kKeyTile);
      for (int h = 0; h < H; ++h) {
        const __m512 qd = _mm512_set1_ps(q[h * ldh + d]);
        a0[h] = _mm512_fmadd_ps(qd, k0, a0[h]);
        a1[h] = _mm512_fmadd_ps(qd, k1, a1[h]);
      }
    }
    for (int h = 0; h < H; ++h) {
      const __m512 s0 = _mm512_mul_ps(a0[h], _mm512_set1_ps(scale)), s1 = _mm512_mul_ps(a1[h], _mm512_set1_ps(scale));
      _mm512_mask_storeu_ps(scores + h * lds + (J - lo), m0, s0);
      _mm512_mask_storeu_ps(scores + h * lds + (J + kKeyTile - lo), m1, s1);
      const __m512 first = _mm512_mask_max_ps(vmax[h], m0, vmax[h], s0);
      vmax[h] = _mm512_mask_max_ps(first, m1, first, s1);
    }
  }
  float inv_z[H];
  for (int h = 0; h < H; ++h) inv_z[h] = exp_scores(scores + h * lds, n, _mm512_reduce_max_ps(vmax[h]), sinks[h]);
  __m512 acc[H][4];
  for (int h = 0; h < H; ++h)
    for (int b = 0; b < 4; ++b) acc[h][b] = _mm512_setzero_ps();
  const int dv = D / 16;
  for (int j = 0; j < n; ++j) {
    const float* vr = v + static_cast<int64_t>(lo + j) * D;
    __m512 vb[4];
    for (int b = 0; b < dv; ++b) vb[b] = _mm512_loadu_ps(vr + 16 * b);
    for (int h = 0; h < H; ++h) {
      const __m512 p = _mm512_set1_ps(scores[h * lds + j]);
      for (int b = 0; b < dv; ++b) acc[h][b] = _mm512_fmadd_ps(p, vb[b], acc[h][b]);
    }
  }
  for (int h = 0; h < H; ++h)
    for (int b = 0; b < dv; ++b) _mm512_storeu_ps(out + h * ldh + 16 * b, _mm512_mul_ps(acc[h][b], _mm512_set1_ps(inv_z[h])));
}

// Keys and values one work item gathers, at most (per thread, kept between calls): beyond it rows take
// attend_one, which reads each key where it lies.
constexpr int64_t kMaxGatheredBytes = int64_t{16} << 20;
constexpr int kRowBlock = 64;  // rows of one sequence per work item

// One work item: rows [row0, row0 + rows) of sequence `seq` (chunk-relative) against kv head `kvh`, i.e.
// those rows for every query head of the kv group.
struct AttnItem {
  int seq, kvh, row0, rows;
};

// Positions [first, first + count) of kv head `kvh` for attend_heads: keys in tiles
// [key tile][d][kKeyTile], values [key][d]; cached rows widened from the pool, then the step's rows.
struct GatheredKeys {
  std::vector<float> kt, vt;
  int first = 0, count = 0;
};

void gather_keys(const AttnSeq& s, int kvh, const float* k_new, const float* v_new, int64_t ldkv, const KvLayer& kv, GatheredKeys& g) {
  const int D = kv.head_dim;
  const int64_t tile = static_cast<int64_t>(D) * kKeyTile;
  g.kt.assign(static_cast<size_t>((g.count + kKeyTile - 1) / kKeyTile * tile), 0.0f);
  g.vt.resize(static_cast<size_t>(g.count) * D);
  float kbuf[512], vbuf[512];
  for (int j = 0; j < g.count; ++j) {
    const int pos = g.first + j;
    const bool cached = pos < s.pos_begin;
    const int64_t row = s.token_begin + pos - s.pos_begin;
    const float* k = cached ? cached_row(kv, s, pos, kvh, false, kbuf) : k_new + row * ldkv + kvh * D;
    const float* v = cached ? cached_row(kv, s, pos, kvh, true, vbuf) : v_new + row * ldkv + kvh * D;
    float* kt = g.kt.data() + j / kKeyTile * tile + j % kKeyTile;
    for (int d = 0; d < D; ++d) kt[d * kKeyTile] = k[d];
    std::copy_n(v, D, g.vt.data() + static_cast<int64_t>(j) * D);
  }
}

struct AttnArgs {
  const float *q, *k_new, *v_new, *sinks;
  int64_t ldq, ldkv, ldo;
  const AttnSeq* seqs;
  const KvLayer* kv;
  int q_heads, window;
  float scale;
  float* out;
};

// One item on the vector path: its kv head's keys gathered once for all its rows and query heads, H
// query heads per attend_heads call. Returns false (nothing written) when they exceed
// kMaxGatheredBytes or the host lacks AVX-512.
bool attend_gathered(const AttnArgs& a, const AttnItem& it) {
  const KvLayer& kv = *a.kv;
  const int D = kv.head_dim, group = a.q_heads / kv.kv_heads;
  const AttnSeq& s = a.seqs[it.seq];
  const int first_pos = s.pos_begin + it.row0, last_pos = first_pos + it.rows - 1;
  const int first = a.window > 0 ? std::max(0, first_pos - a.window + 1) : 0, count = last_pos - first + 1;
  if (simd_level() != Simd::Avx512 || D % 16 != 0 || D > 64 || int64_t{count} * D * 2 * sizeof(float) > kMaxGatheredBytes) return false;
  thread_local GatheredKeys g;
  thread_local std::vector<float> scores;
  g.first = first, g.count = count;
  gather_keys(s, it.kvh, a.k_new, a.v_new, a.ldkv, kv, g);
  const int H = group % 4 == 0 ? 4 : group % 2 == 0 ? 2 : 1;
  const auto heads = H == 4 ? attend_heads<4> : H == 2 ? attend_heads<2> : attend_heads<1>;
  const int64_t lds = count + 3 * kKeyTile;
  scores.resize(static_cast<size_t>(H * lds));
  for (int t = it.row0; t < it.row0 + it.rows; ++t) {
    const int pos = s.pos_begin + t, lo = (a.window > 0 ? std::max(0, pos - a.window + 1) : 0) - first;
    const int64_t row = s.token_begin + t;
    for (int h = it.kvh * group; h < (it.kvh + 1) * group; h += H)
      heads(a.q + row * a.ldq + h * D, D, g.kt.data(), g.vt.data(), D, lo, pos - first, a.sinks + h, a.scale, scores.data() + kKeyTile, lds,
            a.out + row * a.ldo + h * D);
  }
  return true;
}

// launchers
void f32_sdpa_sinks(const float* q, int64_t ldq, const float* k_new, const float* v_new, int64_t ldkv, const AttnSeq* seqs,
                    int num_seqs, const KvLayer& kv, int q_heads, const float* sinks, float scale, int window, float* out,
                    int64_t ldo, float*) {
  const int D = kv.head_dim, group = q_heads / kv.kv_heads;
  // Work items (sequence, kv head, up to kRowBlock rows): prefill and decode rows share one parallel loop.
  thread_local std::vector<AttnItem> items;  // reused
  items.clear();
  for (int i = 0; i < num_seqs; ++i)
    for (int h = 0; h < kv.kv_heads; ++h)
      for (int r = 0; r < seqs[i].num_tokens; r += kRowBlock) items.push_back({i, h, r, std::min(kRowBlock, seqs[i].num_tokens - r)});
  const AttnArgs args{q, k_new, v_new, sinks, ldq, ldkv, ldo, seqs, &kv, q_heads, window, scale, out};
  const int64_t count = static_cast<int64_t>(items.size());
  const AttnItem* list = items.data();
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t i = 0; i < count; ++i) {
    const AttnItem& it = list[i];
    if (attend_gathered(args, it)) continue;
    const AttnSeq& s = seqs[it.seq];
    for (int t = it.row0; t < it.row0 + it.rows; ++t)
      for (int h = it.kvh * group; h < (it.kvh + 1) * group; ++h)
        attend_one(q + (s.token_begin + t) * ldq + h * D, s, s.pos_begin + t, it.kvh, k_new, v_new, ldkv, kv, sinks[h], scale, window,
                   out + (s.token_begin + t) * ldo + h * D);
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
