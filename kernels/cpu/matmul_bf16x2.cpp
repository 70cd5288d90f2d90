// matmul_bf16x2.cpp — the dense products in serving precision (QKV, attention out, router, lm_head):
// out[t][n] = Σ_k x[t][k]·w[n][k] + b[n] with each activation split into two bf16, hi = bf16(x) and
// lo = bf16(x − hi) (x = hi + lo + e, |e| ≤ 2⁻¹⁶|x|), so that AVX512-BF16's vdpbf16ps multiplies bf16
// weight pairs by activation pairs exactly and sums them in fp32: two instructions (hi, lo) per 32
// weights and token, as many as fp32 FMAs take, but no widening of the weights and no sums across lanes.
//
// Over a Rows16 matrix (core/tensor.h) each (row, token) result is one chain in column-pair order:
// acc = dp(acc, w pair, hi pair), then dp(acc, w pair, lo pair), pair after pair, then + bias. Two tiles
// build that same chain, so a token's result does not depend on how many tokens share the product:
//  - token tile (16 tokens per 16-token block of the product): a group's 16 rows, each row's pair
//    broadcast against a vector of 16 tokens' pairs (activations transposed per block);
//  - row tile (the tokens after the last whole block): up to 4 groups × 4 tokens, each group's vector of
//    16 rows' pairs against a token's pair broadcast.
// Both take Stream and Panel rows alike (long prefill chunks are whole blocks but for their last few
// tokens: the token tile outruns the fp32 panel GEMM). Row-major matrices and hosts without AVX512-BF16
// take f32_bf16w_matmul (cpu/matmul.cpp), whose exact result is within this op's bound.
#include <immintrin.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "cpu_features.h"
#include "ops.h"
#include "simd.h"

namespace gptoss::cpu {

void f32_bf16w_matmul(const DenseMatmul* jobs, int num_jobs);

namespace {

constexpr int kTokenBlock = 16;  // tokens per token tile (one vector lane each)
constexpr int kItemGroups = 4;   // row groups per work item (and per row tile)
constexpr int kRowTokens = 4;    // tokens per row tile, at most
constexpr int64_t kPrefetchPairs = 32;  // a group's pair vector is one cache line: 2 KB ahead

bool has_bf16_dot() {
  static const bool yes = simd_level() == Simd::Avx512 && detect_cpu_features().avx512_bf16;
  return yes;
}

// hi and lo of elements 2p and 2p + 1 of row x (zero past cols), as two bf16 pairs.
struct SplitPair {
  uint32_t hi, lo;
};
SplitPair split_pair(const float* x, int64_t cols, int64_t p) {
  uint32_t hi = 0, lo = 0;
  for (int e = 0; e < 2; ++e) {
    const int64_t k = 2 * p + e;
    const float v = k < cols ? x[k] : 0.0f;
    const bf16_t h = f32_to_bf16(v);
    hi |= static_cast<uint32_t>(h) << (16 * e);
    lo |= static_cast<uint32_t>(f32_to_bf16(v - bf16_to_f32(h))) << (16 * e);
  }
  return {hi, lo};
}

// A product's activations, split: whole 16-token blocks transposed for the token tile
// (blocks[b][p] = 16 hi pairs, then 16 lo pairs), the remaining tokens row by row for the row tile
// (rest[t][p] = hi pair, lo pair).
struct SplitActs {
  std::vector<uint32_t> blocks, rest;
  int num_blocks = 0;
};

void split_activations(const DenseMatmul& m, SplitActs& a) {
  const int64_t K = m.w.cols, pairs = bf16_pairs(K);
  a.num_blocks = m.T / kTokenBlock;
  a.blocks.resize(static_cast<size_t>(a.num_blocks) * pairs * 2 * kTokenBlock);
  a.rest.resize(static_cast<size_t>(m.T - a.num_blocks * kTokenBlock) * pairs * 2);
  // Long prefill chunks: the split is a pass over the chunk's activations, shared out like the product.
#pragma omp parallel for schedule(static) if (m.T >= 64)
  for (int t = 0; t < m.T; ++t) {
    const float* x = m.x + static_cast<int64_t>(t) * K;
    const int b = t / kTokenBlock, lane = t % kTokenBlock, r = t - a.num_blocks * kTokenBlock;
    for (int64_t p = 0; p < pairs; ++p) {
      const SplitPair s = split_pair(x, K, p);
      if (b < a.num_blocks) {
        uint32_t* v = a.blocks.data() + (static_cast<int64_t>(b) * pairs + p) * 2 * kTokenBlock;
        v[lane] = s.hi, v[kTokenBlock + lane] = s.lo;
      } else {
        uint32_t* v = a.rest.data() + (static_cast<int64_t>(r) * pairs + p) * 2;
        v[0] = s.hi, v[1] = s.lo;
      }
    }
  }
}

// Where a tile writes: rows [row0, row0 + rows) of out (row stride ldo) for tokens from t0.
struct Dest {
  float* out;
  int64_t ldo;
  const float* bias;  // at row0, may be null
  int64_t row0;
  int rows;  // valid rows of the tile (≤ 16 × groups)
  int t0;
};

// Group g's 16 rows × a block of 16 tokens. w: the group's pair vectors [pairs][16].
__attribute__((target("avx512f,avx512bw,avx512bf16"))) void token_tile(const uint32_t* w, int64_t pairs, const uint32_t* x,
                                                                        const Dest& d) {
  __m512 acc[16];
  for (int i = 0; i < 16; ++i) acc[i] = _mm512_setzero_ps();
  for (int64_t p = 0; p < pairs; ++p) {
    _mm_prefetch(reinterpret_cast<const char*>(w + (p + kPrefetchPairs) * 16), _MM_HINT_T0);
    const __m512bh hi = (__m512bh)_mm512_loadu_si512(x + p * 32), lo = (__m512bh)_mm512_loadu_si512(x + p * 32 + 16);
    for (int i = 0; i < 16; ++i) {
      const __m512bh wi = (__m512bh)_mm512_set1_epi32(static_cast<int>(w[p * 16 + i]));
      acc[i] = _mm512_dpbf16_ps(acc[i], wi, hi);
      acc[i] = _mm512_dpbf16_ps(acc[i], wi, lo);
    }
  }
  alignas(64) float lanes[16];
  for (int i = 0; i < d.rows; ++i) {
    _mm512_store_ps(lanes, acc[i]);
    const float b = d.bias ? d.bias[i] : 0.0f;
    for (int t = 0; t < kTokenBlock; ++t) d.out[(d.t0 + t) * d.ldo + d.row0 + i] = lanes[t] + b;
  }
}

// NG groups (rows 16·NG) × NC tokens. w: the first group's pair vectors; group g's lie g·group apart.
template <int NG, int NC>
__attribute__((target("avx512f,avx512bw,avx512bf16"))) void row_tile(const uint32_t* w, int64_t group, int64_t pairs, const uint32_t* x,
                                                                      const Dest& d) {
  __m512 acc[NG][NC];
  for (int g = 0; g < NG; ++g)
    for (int c = 0; c < NC; ++c) acc[g][c] = _mm512_setzero_ps();
  for (int64_t p = 0; p < pairs; ++p) {
    __m512bh wv[NG];
    for (int g = 0; g < NG; ++g) {
      _mm_prefetch(reinterpret_cast<const char*>(w + g * group + (p + kPrefetchPairs) * 16), _MM_HINT_T0);
      wv[g] = (__m512bh)_mm512_loadu_si512(w + g * group + p * 16);
    }
    for (int c = 0; c < NC; ++c) {
      const uint32_t* xc = x + (c * pairs + p) * 2;
      const __m512bh hi = (__m512bh)_mm512_set1_epi32(static_cast<int>(xc[0])), lo = (__m512bh)_mm512_set1_epi32(static_cast<int>(xc[1]));
      for (int g = 0; g < NG; ++g) acc[g][c] = _mm512_dpbf16_ps(acc[g][c], wv[g], hi);
      for (int g = 0; g < NG; ++g) acc[g][c] = _mm512_dpbf16_ps(acc[g][c], wv[g], lo);
    }
  }
  for (int g = 0; g < NG; ++g) {
    const int valid = std::clamp(d.rows - 16 * g, 0, 16);
    const __mmask16 m = static_cast<__mmask16>((1u << valid) - 1);
    const __m512 b = d.bias ? _mm512_maskz_loadu_ps(m, d.bias + 16 * g) : _mm512_setzero_ps();
    for (int c = 0; c < NC; ++c) _mm512_mask_storeu_ps(d.out + (d.t0 + c) * d.ldo + d.row0 + 16 * g, m, _mm512_add_ps(acc[g][c], b));
  }
}

using RowTile = void (*)(const uint32_t*, int64_t, int64_t, const uint32_t*, const Dest&);

template <int NG>
RowTile row_tile_for(int nc) {
  static constexpr RowTile fns[kRowTokens] = {row_tile<NG, 1>, row_tile<NG, 2>, row_tile<NG, 3>, row_tile<NG, 4>};
  return fns[nc - 1];
}
RowTile pick_row_tile(int ng, int nc) {
  switch (ng) {
    case 1: return row_tile_for<1>(nc);
    case 2: return row_tile_for<2>(nc);
    case 3: return row_tile_for<3>(nc);
    default: return row_tile_for<4>(nc);
  }
}

// Rows [r0, r0 + 16·ng) ∩ the matrix, every token of m.
void run_item(const DenseMatmul& m, const SplitActs& a, int64_t r0, int ng) {
  const int64_t pairs = bf16_pairs(m.w.cols), group = pairs * 16;
  const auto* w = reinterpret_cast<const uint32_t*>(m.w.data + bf16_rows16_offset(m.w.cols, r0, 0));
  const int rows = static_cast<int>(std::min<int64_t>(16 * ng, m.w.rows - r0));
  const float* bias = m.bias ? m.bias + r0 : nullptr;
  for (int b = 0; b < a.num_blocks; ++b)
    for (int g = 0; g < ng && 16 * g < rows; ++g)
      token_tile(w + g * group, pairs, a.blocks.data() + static_cast<int64_t>(b) * pairs * 2 * kTokenBlock,
                 Dest{m.out, m.ldo, bias ? bias + 16 * g : nullptr, r0 + 16 * g, std::min(16, rows - 16 * g), b * kTokenBlock});
  const int first = a.num_blocks * kTokenBlock;
  for (int t = first; t < m.T; t += kRowTokens) {
    const int nc = std::min(kRowTokens, m.T - t);
    pick_row_tile(ng, nc)(w, group, pairs, a.rest.data() + static_cast<int64_t>(t - first) * pairs * 2,
                          Dest{m.out, m.ldo, bias, r0, rows, t});
  }
}

}  // namespace

// launchers
void bf16x2_bf16w_matmul(const DenseMatmul* jobs, int num_jobs) {
  thread_local std::vector<DenseMatmul> others;
  thread_local std::vector<int> mine;
  thread_local std::vector<SplitActs> acts;
  others.clear(), mine.clear();
  for (int j = 0; j < num_jobs; ++j) {
    const DenseMatmul& m = jobs[j];
    if (has_bf16_dot() && m.w.layout == BF16Layout::Rows16) mine.push_back(j);
    else others.push_back(m);
  }
  if (!others.empty()) f32_bf16w_matmul(others.data(), static_cast<int>(others.size()));
  if (mine.empty()) return;
  if (acts.size() < mine.size()) acts.resize(mine.size());
  struct Item {
    int job;
    int64_t r0;
  };
  thread_local std::vector<Item> items;
  items.clear();
  for (size_t i = 0; i < mine.size(); ++i) {
    const DenseMatmul& m = jobs[mine[i]];
    const DenseMatmul* prev = i > 0 ? &jobs[mine[i - 1]] : nullptr;
    if (prev && prev->x == m.x && prev->T == m.T && prev->w.cols == m.w.cols) acts[i] = acts[i - 1];  // QKV share their input
    else split_activations(m, acts[i]);
    for (int64_t r0 = 0; r0 < m.w.rows; r0 += 16 * kItemGroups) items.push_back({static_cast<int>(i), r0});
  }
  // The lists are this thread's (thread_local): the region's threads read them through these pointers.
  const int64_t count = static_cast<int64_t>(items.size());
  const Item* list = items.data();
  const int* job_of = mine.data();
  const SplitActs* split = acts.data();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < count; ++i) {
    const DenseMatmul& m = jobs[job_of[list[i].job]];
    const int64_t r0 = list[i].r0;
    run_item(m, split[list[i].job], r0, static_cast<int>(std::min<int64_t>(kItemGroups, (m.w.rows - r0 + 15) / 16)));
  }
}

BF16Layout resident_dense_layout() {
  static const BF16Layout layout = [] {
    const char* want = std::getenv("EXPERTMESH_DENSE_LAYOUT");
    return has_bf16_dot() && !(want && std::strcmp(want, "rows") == 0) ? BF16Layout::Rows16 : BF16Layout::Rows;
  }();
  return layout;
}

}  // namespace gptoss::cpu
