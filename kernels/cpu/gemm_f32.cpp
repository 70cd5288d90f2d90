// gemm_f32.cpp — see gemm_f32.h.
#include "gemm_f32.h"

#include <immintrin.h>

#include <algorithm>
#include <utility>

namespace gptoss::cpu {

void transpose_activations(const float* x, int T, int64_t K, float* xT) {
  for (int t0 = 0; t0 < T; t0 += kTokenTile) {
    float* tile = xT + static_cast<int64_t>(t0) * K;  // tile (t0 / 32) starts at t0 * K
    for (int64_t k0 = 0; k0 < K; k0 += 64) {
      const int64_t k1 = std::min(K, k0 + 64);
      for (int j = 0; j < kTokenTile; ++j) {
        const int t = t0 + j;
        for (int64_t k = k0; k < k1; ++k) tile[k * kTokenTile + j] = t < T ? x[static_cast<int64_t>(t) * K + k] : 0.0f;
      }
    }
  }
}

namespace {

template <int NR, int TV>
__attribute__((target("avx512f,fma"))) void micro(const float* w, int64_t K, const float* xT, int ldt, float* out, int64_t ldo,
                                                  int valid, const float* bias) {
  __m512 acc[NR][TV];
  for (int r = 0; r < NR; ++r)
    for (int v = 0; v < TV; ++v) acc[r][v] = _mm512_setzero_ps();
  for (int64_t k = 0; k < K; ++k) {
    __m512 xv[TV];
    for (int v = 0; v < TV; ++v) xv[v] = _mm512_loadu_ps(xT + k * ldt + 16 * v);
    for (int r = 0; r < NR; ++r) {
      const __m512 b = _mm512_set1_ps(w[r * K + k]);
      for (int v = 0; v < TV; ++v) acc[r][v] = _mm512_fmadd_ps(b, xv[v], acc[r][v]);
    }
  }
  alignas(64) float tmp[16];
  for (int r = 0; r < NR; ++r)
    for (int v = 0; v < TV; ++v) {
      _mm512_store_ps(tmp, acc[r][v]);
      const float b = bias ? bias[r] : 0.0f;
      for (int i = 0; i < 16 && 16 * v + i < valid; ++i) out[(16 * v + i) * ldo + r] = tmp[i] + b;
    }
}

using Micro = void (*)(const float*, int64_t, const float*, int, float*, int64_t, int, const float*);

template <int TV, int... R>
constexpr Micro pick_rows(int nr, std::integer_sequence<int, R...>) {
  Micro fns[] = {micro<R + 1, TV>...};
  return fns[nr - 1];
}

Micro pick(int nr, int tv) {
  return tv == 2 ? pick_rows<2>(nr, std::make_integer_sequence<int, 12>{}) : pick_rows<1>(nr, std::make_integer_sequence<int, 12>{});
}

}  // namespace

void gemm_panel_avx512(const float* panel, int nrows, int64_t K, const float* xT, int T, float* out, int64_t ldo,
                       const float* bias) {
  constexpr int NR = 12;
  for (int t0 = 0; t0 < T; t0 += kTokenTile) {
    const int tv = T - t0 > 16 ? 2 : 1;
    const int valid = std::min(kTokenTile, T - t0);
    for (int r0 = 0; r0 < nrows; r0 += NR) {
      const int nr = std::min(NR, nrows - r0);
      pick(nr, tv)(panel + r0 * K, K, xT + static_cast<int64_t>(t0) * K, kTokenTile, out + static_cast<int64_t>(t0) * ldo + r0, ldo,
                   valid, bias ? bias + r0 : nullptr);
    }
  }
}

}  // namespace gptoss::cpu
