// matmul.cpp — dense linear layers with bf16 weights (QKV, attention out, router, lm_head).
// out[t][n] = Σ_k x[t][k]·w[n][k] + b[n], fp32 accumulation.
// Register-blocked over R weight rows × C tokens: each weight vector is widened from bf16 once and used
// for C tokens, each activation vector once for R rows. Threads split the output rows, so every weight
// row is read once per step for all T tokens. Variants: AVX-512, AVX2, scalar (picked by simd_level()).
#include <immintrin.h>

#include <algorithm>

#include <vector>

#include "gemm_f32.h"
#include "ops.h"
#include "simd.h"

namespace gptoss::cpu {

// kernels
namespace {

constexpr int R = 4;  // weight rows per tile
constexpr int C = 4;  // tokens per tile

struct Tile {
  const bf16_t* w;  // row r0
  int64_t ld, K;
  const float* x;  // token t0
  int64_t ldx;
  int nr, nc;  // rows / tokens actually in this tile (≤ R, ≤ C)
  float* acc;  // [R][C]
};

void tile_scalar(const Tile& t) {
  for (int r = 0; r < t.nr; ++r)
    for (int c = 0; c < t.nc; ++c) {
      float s = 0.0f;
      for (int64_t k = 0; k < t.K; ++k) s += bf16_to_f32(t.w[r * t.ld + k]) * t.x[c * t.ldx + k];
      t.acc[r * C + c] = s;
    }
}

__attribute__((target("avx2,fma"))) inline __m256 widen8(const bf16_t* p) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))), 16));
}

__attribute__((target("avx2,fma"))) inline float hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

template <int NR, int NC>
__attribute__((target("avx2,fma"))) void tile_avx2_fixed(const Tile& t) {
  __m256 acc[NR][NC];
  for (int r = 0; r < NR; ++r)
    for (int c = 0; c < NC; ++c) acc[r][c] = _mm256_setzero_ps();
  const int64_t K8 = t.K & ~int64_t{7};
  for (int64_t k = 0; k < K8; k += 8) {
    __m256 w[NR];
    for (int r = 0; r < NR; ++r) w[r] = widen8(t.w + r * t.ld + k);
    for (int c = 0; c < NC; ++c) {
      const __m256 xv = _mm256_loadu_ps(t.x + c * t.ldx + k);
      for (int r = 0; r < NR; ++r) acc[r][c] = _mm256_fmadd_ps(w[r], xv, acc[r][c]);
    }
  }
  for (int r = 0; r < NR; ++r)
    for (int c = 0; c < NC; ++c) {
      float s = hsum8(acc[r][c]);
      for (int64_t k = K8; k < t.K; ++k) s += bf16_to_f32(t.w[r * t.ld + k]) * t.x[c * t.ldx + k];
      t.acc[r * C + c] = s;
    }
}

__attribute__((target("avx512f,avx512bw,avx512vl,fma"))) inline __m512 widen16(const bf16_t* p) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))), 16));
}

__attribute__((target("avx512f,avx512bw,avx512vl,fma"))) inline __m512 widen16_masked(const bf16_t* p, __mmask16 m) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p)), 16));
}

template <int NR, int NC>
__attribute__((target("avx512f,avx512bw,avx512vl,fma"))) void tile_avx512_fixed(const Tile& t) {
  __m512 acc[NR][NC];
  for (int r = 0; r < NR; ++r)
    for (int c = 0; c < NC; ++c) acc[r][c] = _mm512_setzero_ps();
  const int64_t K16 = t.K & ~int64_t{15};
  for (int64_t k = 0; k < K16; k += 16) {
    __m512 w[NR];
    for (int r = 0; r < NR; ++r) w[r] = widen16(t.w + r * t.ld + k);
    for (int c = 0; c < NC; ++c) {
      const __m512 xv = _mm512_loadu_ps(t.x + c * t.ldx + k);
      for (int r = 0; r < NR; ++r) acc[r][c] = _mm512_fmadd_ps(w[r], xv, acc[r][c]);
    }
  }
  if (K16 < t.K) {
    const __mmask16 m = static_cast<__mmask16>((1u << (t.K - K16)) - 1);
    __m512 w[NR];
    for (int r = 0; r < NR; ++r) w[r] = widen16_masked(t.w + r * t.ld + K16, m);
    for (int c = 0; c < NC; ++c) {
      const __m512 xv = _mm512_maskz_loadu_ps(m, t.x + c * t.ldx + K16);
      for (int r = 0; r < NR; ++r) acc[r][c] = _mm512_fmadd_ps(w[r], xv, acc[r][c]);
    }
  }
  for (int r = 0; r < NR; ++r)
    for (int c = 0; c < NC; ++c) t.acc[r * C + c] = _mm512_reduce_add_ps(acc[r][c]);
}

// Full tiles take the fixed-size path; edge tiles (fewer rows or tokens) the 1×1 path per pair.
template <void (*Full)(const Tile&), void (*One)(const Tile&)>
void tile_dispatch(const Tile& t) {
  if (t.nr == R && t.nc == C) return Full(t);
  for (int r = 0; r < t.nr; ++r)
    for (int c = 0; c < t.nc; ++c) {
      float a[R * C];
      One(Tile{t.w + r * t.ld, t.ld, t.K, t.x + c * t.ldx, t.ldx, 1, 1, a});
      t.acc[r * C + c] = a[0];
    }
}

// Decode (one token): R rows × 1 token keeps more rows in flight per weight stream.
template <void (*Rows)(const Tile&), void (*One)(const Tile&)>
void tile_dispatch_single(const Tile& t) {
  if (t.nr == R) return Rows(t);
  for (int r = 0; r < t.nr; ++r) {
    float a[R * C];
    One(Tile{t.w + r * t.ld, t.ld, t.K, t.x, t.ldx, 1, 1, a});
    t.acc[r * C] = a[0];
  }
}

using TileFn = void (*)(const Tile&);

TileFn pick(Simd s, bool single) {
  switch (s) {
    case Simd::Avx512:
      return single ? tile_dispatch_single<tile_avx512_fixed<R, 1>, tile_avx512_fixed<1, 1>>
                    : tile_dispatch<tile_avx512_fixed<R, C>, tile_avx512_fixed<1, 1>>;
    case Simd::Avx2:
      return single ? tile_dispatch_single<tile_avx2_fixed<R, 1>, tile_avx2_fixed<1, 1>>
                    : tile_dispatch<tile_avx2_fixed<R, C>, tile_avx2_fixed<1, 1>>;
    case Simd::Scalar: return tile_scalar;
  }
  return tile_scalar;
}

}  // namespace

// Widens a panel of bf16 rows to fp32 for the packed GEMM.
__attribute__((target("avx512f,avx512bw,avx512vl,fma"))) void pack_bf16_panel(const bf16_t* w, int64_t ld, int rows, int64_t K,
                                                                               float* panel) {
  for (int r = 0; r < rows; ++r) {
    int64_t k = 0;
    for (; k + 16 <= K; k += 16) _mm512_storeu_ps(panel + r * K + k, widen16(w + r * ld + k));
    for (; k < K; ++k) panel[r * K + k] = bf16_to_f32(w[r * ld + k]);
  }
}

// Tokens from which the packed-panel GEMM beats the streaming kernel (measured with bench/bench_ops).
constexpr int kPackedMinTokens = 4;

// launchers
void f32_bf16w_matmul(const float* x, int T, const MatrixBF16& w, const float* bias, float* out, int64_t ldo) {
  const int64_t N = w.rows, K = w.cols;
  if (simd_level() == Simd::Avx512 && T >= kPackedMinTokens) {
    const int64_t panels = (N + kPanelRows - 1) / kPanelRows;
#pragma omp parallel
    {
      thread_local std::vector<float> panel;
      panel.resize(static_cast<size_t>(kPanelRows) * K);
#pragma omp for schedule(static)
      for (int64_t p = 0; p < panels; ++p) {
        const int64_t r0 = p * kPanelRows;
        const int nr = static_cast<int>(std::min<int64_t>(kPanelRows, N - r0));
        pack_bf16_panel(w.data + r0 * w.ld, w.ld, nr, K, panel.data());
        gemm_panel_avx512(panel.data(), nr, K, x, T, out + r0, ldo, bias ? bias + r0 : nullptr);
      }
    }
    return;
  }
  const TileFn tile = pick(simd_level(), T == 1);
  const int64_t row_tiles = (N + R - 1) / R;
#pragma omp parallel for schedule(static)
  for (int64_t rt = 0; rt < row_tiles; ++rt) {
    const int64_t r0 = rt * R;
    const int nr = static_cast<int>(std::min<int64_t>(R, N - r0));
    for (int t0 = 0; t0 < T; t0 += C) {
      const int nc = std::min(C, T - t0);
      float acc[R * C];
      tile(Tile{w.data + r0 * w.ld, w.ld, K, x + static_cast<int64_t>(t0) * K, K, nr, nc, acc});
      for (int r = 0; r < nr; ++r)
        for (int c = 0; c < nc; ++c) out[(t0 + c) * ldo + r0 + r] = acc[r * C + c] + (bias ? bias[r0 + r] : 0.0f);
    }
  }
}

void f32_bf16w_unembed(const float* x, int T, const MatrixBF16& w, float* logits) {
  f32_bf16w_matmul(x, T, w, nullptr, logits, w.rows);
}

}  // namespace gptoss::cpu
