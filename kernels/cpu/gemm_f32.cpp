// gemm_f32.cpp — see gemm_f32.h. Microkernel: 4 weight rows × 6 tokens = 24 accumulators; per 16-wide
// k step 4 row loads + 6 activation loads feed 24 FMAs, so the FMA ports, not the loads, set the pace.
#include "gemm_f32.h"

#include <immintrin.h>

#include <algorithm>

namespace gptoss::cpu {

namespace {

constexpr int MR = 4, NC = 6;

// Processes k in [k0, k1) and carries the 24 vector accumulators in `state` between k chunks, so each
// chunk's rows of weights and activations stay in L1.
template <int R, int C>
__attribute__((target("avx512f,fma"))) void micro(const float* w, int64_t K, const float* x, int64_t k0, int64_t k1, __m512* state,
                                                  bool first, bool last, float* acc_out) {
  __m512 acc[R][C];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) acc[r][c] = first ? _mm512_setzero_ps() : state[r * NC + c];
  const int64_t K16 = k0 + ((k1 - k0) & ~int64_t{15});
  for (int64_t k = k0; k < K16; k += 16) {
    __m512 wv[R];
    for (int r = 0; r < R; ++r) wv[r] = _mm512_loadu_ps(w + r * K + k);
    for (int c = 0; c < C; ++c) {
      const __m512 xv = _mm512_loadu_ps(x + c * K + k);
      for (int r = 0; r < R; ++r) acc[r][c] = _mm512_fmadd_ps(wv[r], xv, acc[r][c]);
    }
  }
  if (K16 < k1) {
    const __mmask16 m = static_cast<__mmask16>((1u << (k1 - K16)) - 1);
    __m512 wv[R];
    for (int r = 0; r < R; ++r) wv[r] = _mm512_maskz_loadu_ps(m, w + r * K + K16);
    for (int c = 0; c < C; ++c) {
      const __m512 xv = _mm512_maskz_loadu_ps(m, x + c * K + K16);
      for (int r = 0; r < R; ++r) acc[r][c] = _mm512_fmadd_ps(wv[r], xv, acc[r][c]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) {
      if (last) acc_out[r * NC + c] = _mm512_reduce_add_ps(acc[r][c]);
      else state[r * NC + c] = acc[r][c];
    }
}

using Micro = void (*)(const float*, int64_t, const float*, int64_t, int64_t, __m512*, bool, bool, float*);

template <int R>
Micro micro_for(int c) {
  switch (c) {
    case 1: return micro<R, 1>;
    case 2: return micro<R, 2>;
    case 3: return micro<R, 3>;
    case 4: return micro<R, 4>;
    case 5: return micro<R, 5>;
    default: return micro<R, 6>;
  }
}

Micro micro_for(int r, int c) {
  switch (r) {
    case 1: return micro_for<1>(c);
    case 2: return micro_for<2>(c);
    case 3: return micro_for<3>(c);
    default: return micro_for<4>(c);
  }
}

}  // namespace

constexpr int64_t kChunk = 512;  // k per pass: 4 rows + 6 tokens × 512 floats ≈ 20 KB, inside L1

__attribute__((target("avx512f,fma"))) void gemm_panel_avx512(const float* panel, int nrows, int64_t K, const float* x, int T,
                                                             float* out, int64_t ldo, const float* bias) {
  const int row_tiles = (nrows + MR - 1) / MR;
  for (int t0 = 0; t0 < T; t0 += NC) {
    const int nc = std::min(NC, T - t0);
    alignas(64) __m512 state[(kPanelRows / MR) * MR * NC];
    for (int64_t k0 = 0; k0 < K; k0 += kChunk) {
      const int64_t k1 = std::min(K, k0 + kChunk);
      for (int rt = 0; rt < row_tiles; ++rt) {
        const int r0 = rt * MR, nr = std::min(MR, nrows - r0);
        float acc[MR * NC];
        micro_for(nr, nc)(panel + r0 * K, K, x + static_cast<int64_t>(t0) * K, k0, k1, state + rt * MR * NC, k0 == 0, k1 == K, acc);
        if (k1 == K)
          for (int r = 0; r < nr; ++r)
            for (int c = 0; c < nc; ++c) out[(t0 + c) * ldo + r0 + r] = acc[r * NC + c] + (bias ? bias[r0 + r] : 0.0f);
      }
    }
  }
}

}  // namespace gptoss::cpu
