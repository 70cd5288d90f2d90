// matmul_q8_rows16.cpp — q8_q8w_matmul over Rows16 q8 matrices (core/tensor.h), the CPU engine's resident
// layout for the q8 dense-weight mode where AVX512-VNNI is present:
//   out[t][n] = d_t · Σ_b s[n][b] · Σ_{k ∈ b} (code[n][k] − 128) · (128 · hi[t][k] + lo[t][k]) + bias[n],
// with the activations as the other int8-digit products write them (cpu/q8_digits.h: two digits of one
// scale per token, error ≤ d / 256 per element), here in column order.
//
// One 64-byte load holds four codes of the same columns for each of a group's 16 rows, so a token's four
// digits broadcast against it make one `vpdpbusd` per digit, each row's block sum building up in its own
// lane: no sums across lanes and no widening of the codes. A block's integer sum is exact in any order;
// it is then scaled into the (row, token) accumulator block after block, so a result is the same chain of
// float operations whatever the tile, and a token's output does not depend on the other tokens of the
// product (batch invariance). The +128 offset of the codes is taken out of each block's sum by starting
// the low digits' sum at −128 · (128 · Σhi + Σlo) of that block; the sum 128 · s_hi + s_lo fits int32.
//
// A tile is up to 4 groups × 2 tokens or 2 groups × 4 tokens (eight (group, token) pairs: three registers
// each). Every row path (decode and long prefill chunks) takes it: per 64 weights and token it costs two
// integer dot products, half the multiply instructions of the fp32 panel GEMM.
#include <immintrin.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "cpu_features.h"
#include "ops.h"
#include "q8_digits.h"
#include "simd.h"

namespace gptoss::cpu {

namespace {

constexpr int kItemGroups = 4;           // row groups per work item
constexpr int kTileTokens = 4;           // tokens per tile, at most
constexpr int64_t kPrefetchBytes = 2048;  // ahead in a group's code stream (four blocks)

// A product's activations: per token K hi digits and K lo digits in column order (4 bytes of padding so
// a piece's broadcast stays inside), per block the low sum's starting value, and d = scale / 128.
struct Digits {
  std::vector<int8_t> hi, lo;
  std::vector<int32_t> start;
  std::vector<float> d;
  int64_t stride = 0, nb = 0;
};

// Four digits (one vpdpbusd lane's) as one int32, to broadcast.
inline int32_t four(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// One token's view of Digits.
struct TokenDigits {
  const int8_t* hi;
  const int8_t* lo;
  const int32_t* start;
};

__attribute__((target("avx512f,avx512bw"))) void make_digits(const float* x, int T, int64_t K, Digits& a) {
  a.nb = K / 32, a.stride = K + 4;
  a.hi.assign(static_cast<size_t>(T * a.stride), 0);
  a.lo.assign(a.hi.size(), 0);
  a.start.assign(static_cast<size_t>(T * a.nb), 0);
  a.d.assign(static_cast<size_t>(T), 0.0f);
  // Long prefill chunks: a pass over the chunk's activations, shared out like the product.
#pragma omp parallel for schedule(static) if (T >= 64)
  for (int t = 0; t < T; ++t) {
    const float* xt = x + static_cast<int64_t>(t) * K;
    const float amax = row_amax(xt, K);
    const __m512 inv = _mm512_set1_ps(amax > 0.0f ? 127.0f / amax : 0.0f);
    a.d[t] = amax / 127.0f / 128.0f;
    for (int64_t b = 0; b < a.nb; ++b) {
      const Digits16 d0 = two_digits(xt + b * 32, inv), d1 = two_digits(xt + b * 32 + 16, inv);
      int8_t* hi = a.hi.data() + t * a.stride + b * 32;
      int8_t* lo = a.lo.data() + t * a.stride + b * 32;
      _mm_storeu_si128(reinterpret_cast<__m128i*>(hi), _mm512_cvtepi32_epi8(d0.hi));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(hi + 16), _mm512_cvtepi32_epi8(d1.hi));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(lo), _mm512_cvtepi32_epi8(d0.lo));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(lo + 16), _mm512_cvtepi32_epi8(d1.lo));
      const int32_t sum = 128 * _mm512_reduce_add_epi32(_mm512_add_epi32(d0.hi, d1.hi)) + _mm512_reduce_add_epi32(_mm512_add_epi32(d0.lo, d1.lo));
      a.start[t * a.nb + b] = -128 * sum;
    }
  }
}

// Where a tile writes: rows [row0, row0 + rows) of out (row stride ldo) for tokens t0, t0 + 1, ...
struct Dest {
  float* out;
  int64_t ldo;
  const float* bias;  // at row0, may be null
  const float* d;     // the tokens' d, from t0
  int64_t row0;
  int rows;  // valid rows of the tile (≤ 16 × groups)
  int t0;
};

// NG groups (rows 16·NG) × NC tokens. codes / scales: the first group's; group g's lie g·nb blocks on.
template <int NG, int NC>
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni"))) void tile(const uint8_t* codes, const float* scales, int64_t nb,
                                                                          const TokenDigits* x, const Dest& d) {
  __m512 acc[NG][NC];
  for (int g = 0; g < NG; ++g)
    for (int c = 0; c < NC; ++c) acc[g][c] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    __m512i hs[NG][NC], ls[NG][NC];
    for (int g = 0; g < NG; ++g)
      for (int c = 0; c < NC; ++c) hs[g][c] = _mm512_setzero_si512(), ls[g][c] = _mm512_set1_epi32(x[c].start[b]);
    for (int i = 0; i < 8; ++i) {
      __m512i wv[NG];
      for (int g = 0; g < NG; ++g) {
        const uint8_t* p = codes + ((g * nb + b) * 8 + i) * 64;
        _mm_prefetch(reinterpret_cast<const char*>(p + kPrefetchBytes), _MM_HINT_T0);
        wv[g] = _mm512_loadu_si512(p);
      }
      for (int c = 0; c < NC; ++c) {
        const __m512i h = _mm512_set1_epi32(four(x[c].hi + b * 32 + 4 * i));
        const __m512i l = _mm512_set1_epi32(four(x[c].lo + b * 32 + 4 * i));
        for (int g = 0; g < NG; ++g) hs[g][c] = _mm512_dpbusd_epi32(hs[g][c], wv[g], h);
        for (int g = 0; g < NG; ++g) ls[g][c] = _mm512_dpbusd_epi32(ls[g][c], wv[g], l);
      }
    }
    for (int g = 0; g < NG; ++g) {
      const __m512 s = _mm512_loadu_ps(scales + (g * nb + b) * 16);
      for (int c = 0; c < NC; ++c)
        acc[g][c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(_mm512_slli_epi32(hs[g][c], 7), ls[g][c])), s, acc[g][c]);
    }
  }
  for (int g = 0; g < NG; ++g) {
    const int valid = std::clamp(d.rows - 16 * g, 0, 16);
    const __mmask16 m = static_cast<__mmask16>((1u << valid) - 1);
    const __m512 bias = d.bias ? _mm512_maskz_loadu_ps(m, d.bias + 16 * g) : _mm512_setzero_ps();
    for (int c = 0; c < NC; ++c)
      _mm512_mask_storeu_ps(d.out + (d.t0 + c) * d.ldo + d.row0 + 16 * g, m, _mm512_fmadd_ps(acc[g][c], _mm512_set1_ps(d.d[c]), bias));
  }
}

using Tile = void (*)(const uint8_t*, const float*, int64_t, const TokenDigits*, const Dest&);

// The tile for ng groups × nc tokens (ng ≤ 2 where nc > 2).
Tile pick_tile(int ng, int nc) {
  static constexpr Tile narrow[4][2] = {{tile<1, 1>, tile<1, 2>}, {tile<2, 1>, tile<2, 2>}, {tile<3, 1>, tile<3, 2>}, {tile<4, 1>, tile<4, 2>}};
  static constexpr Tile wide[2][2] = {{tile<1, 3>, tile<1, 4>}, {tile<2, 3>, tile<2, 4>}};
  return nc <= 2 ? narrow[ng - 1][nc - 1] : wide[ng - 1][nc - 3];
}

// Rows [r0, r0 + 16·kItemGroups) ∩ the matrix, every token of m.
void run_item(const DenseQ8Matmul& m, const Digits& a, int64_t r0) {
  const int64_t nb = a.nb;
  const int rows = static_cast<int>(std::min<int64_t>(16 * kItemGroups, m.w.rows - r0)), groups = (rows + 15) / 16;
  const uint8_t* codes = m.w.codes + q8_rows16_piece_offset(nb, r0, 0, 0);
  const float* scales = m.w.scales + rows16_scale_offset(nb, r0, 0);
  const float* bias = m.bias ? m.bias + r0 : nullptr;
  TokenDigits x[kTileTokens];
  for (int t = 0; t < m.T; t += kTileTokens) {
    const int nc = std::min(kTileTokens, m.T - t);
    for (int c = 0; c < nc; ++c)
      x[c] = {a.hi.data() + (t + c) * a.stride, a.lo.data() + (t + c) * a.stride, a.start.data() + (t + c) * nb};
    const int step = nc <= 2 ? groups : 2;  // groups per tile
    for (int g = 0; g < groups; g += step) {
      const int ng = std::min(step, groups - g);
      pick_tile(ng, nc)(codes + g * nb * 512, scales + g * nb * 16, nb, x,
                        Dest{m.out, m.ldo, bias ? bias + 16 * g : nullptr, a.d.data() + t, r0 + 16 * g, rows - 16 * g, t});
    }
  }
}

}  // namespace

bool q8_rows16_supported() {
  static const bool yes = simd_level() == Simd::Avx512 && detect_cpu_features().avx512_vnni;
  return yes;
}

Q8Layout resident_q8_layout() {
  static const Q8Layout layout = [] {
    const char* want = std::getenv("EXPERTMESH_DENSE_LAYOUT");
    return q8_rows16_supported() && !(want && std::strcmp(want, "rows") == 0) ? Q8Layout::Rows16 : Q8Layout::Runs;
  }();
  return layout;
}

// launchers
void q8_rows16_matmul(const DenseQ8Matmul* jobs, int num_jobs) {
  check(q8_rows16_supported(), gptoss_status_unsupported_argument,
        "q8_q8w_matmul: Rows16 q8 weights need AVX512-VNNI (place_weights writes them only where it is present)");
  thread_local std::vector<Digits> acts;
  thread_local std::vector<int> act_of;
  struct Item {
    int job;
    int64_t r0;
  };
  thread_local std::vector<Item> items;
  if (static_cast<int>(acts.size()) < num_jobs) acts.resize(num_jobs);
  act_of.assign(num_jobs, 0), items.clear();
  for (int j = 0; j < num_jobs; ++j) {
    const DenseQ8Matmul& m = jobs[j];
    const bool same_input = j > 0 && jobs[j - 1].x == m.x && jobs[j - 1].T == m.T && jobs[j - 1].w.cols == m.w.cols;  // QKV
    act_of[j] = same_input ? act_of[j - 1] : j;
    if (!same_input) make_digits(m.x, m.T, m.w.cols, acts[j]);
    if (m.T > 0)
      for (int64_t r0 = 0; r0 < m.w.rows; r0 += 16 * kItemGroups) items.push_back({j, r0});
  }
  // The lists are this thread's (thread_local): the region's threads read them through these pointers.
  const int64_t count = static_cast<int64_t>(items.size());
  const Item* list = items.data();
  const int* source = act_of.data();
  const Digits* digits = acts.data();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < count; ++i) run_item(jobs[list[i].job], digits[source[list[i].job]], list[i].r0);
}

}  // namespace gptoss::cpu
