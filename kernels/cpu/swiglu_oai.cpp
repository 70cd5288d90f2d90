// swiglu_oai.cpp — gpt-oss's clamped SwiGLU (spec §4.4, pitfall 6): gate = even rows, up = odd rows;
// gate clamped above at limit, up clamped to ±limit; z = gate·σ(α·gate)·(up + 1).
#include <algorithm>
#include <cmath>

#include "ops.h"
#include "simd.h"
#include "vec_exp.h"

namespace gptoss::cpu {

// kernels
// AVX-512: 16 units at a time; gate/up are de-interleaved with two permutes.
__attribute__((target("avx512f,fma"))) static void swiglu_row_avx512(const float* u, int I, float limit, float alpha, float* z) {
  const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  const __m512i odd = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
  const __m512 lim = _mm512_set1_ps(limit), nlim = _mm512_set1_ps(-limit), one = _mm512_set1_ps(1.0f);
  int i = 0;
  for (; i + 16 <= I; i += 16) {
    const __m512 a = _mm512_loadu_ps(u + 2 * i), b = _mm512_loadu_ps(u + 2 * i + 16);
    const __m512 gate = _mm512_min_ps(_mm512_permutex2var_ps(a, even, b), lim);
    const __m512 up = _mm512_max_ps(_mm512_min_ps(_mm512_permutex2var_ps(a, odd, b), lim), nlim);
    const __m512 sig = _mm512_div_ps(one, _mm512_add_ps(one, exp16(_mm512_mul_ps(_mm512_set1_ps(-alpha), gate))));
    _mm512_storeu_ps(z + i, _mm512_mul_ps(_mm512_mul_ps(gate, sig), _mm512_add_ps(up, one)));
  }
  for (; i < I; ++i) {
    const float gate = std::min(u[2 * i], limit);
    const float up = std::clamp(u[2 * i + 1], -limit, limit);
    z[i] = gate / (1.0f + std::exp(-alpha * gate)) * (up + 1.0f);
  }
}

static void swiglu_row(const float* u, int I, float limit, float alpha, float* z) {
  for (int i = 0; i < I; ++i) {
    const float gate = std::min(u[2 * i], limit);
    const float up = std::clamp(u[2 * i + 1], -limit, limit);
    z[i] = gate / (1.0f + std::exp(-alpha * gate)) * (up + 1.0f);
  }
}

// launchers
void f32_swiglu_oai(const float* u, int n, int I, float limit, float alpha, float* z) {
  const bool vec = simd_level() == Simd::Avx512;
#pragma omp parallel for schedule(static) if (n > 4)
  for (int t = 0; t < n; ++t) {
    if (vec) swiglu_row_avx512(u + static_cast<int64_t>(t) * 2 * I, I, limit, alpha, z + static_cast<int64_t>(t) * I);
    else swiglu_row(u + static_cast<int64_t>(t) * 2 * I, I, limit, alpha, z + static_cast<int64_t>(t) * I);
  }
}

}  // namespace gptoss::cpu
