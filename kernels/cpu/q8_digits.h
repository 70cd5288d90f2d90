// q8_digits.h — shared by the two int8-digit products (cpu/matmul_q8.cpp, cpu/moe_mxfp4_q8_matmul.cpp),
// which write a token's activations as two int8 digits of one scale, max|x| / 127 over the token's row.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace gptoss::cpu {

// max |x[k]| over a row of K values.
__attribute__((target("avx512f"))) inline float row_amax(const float* x, int64_t K) {
  __m512 m = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 16 <= K; k += 16) m = _mm512_max_ps(m, _mm512_abs_ps(_mm512_loadu_ps(x + k)));
  float out = _mm512_reduce_max_ps(m);
  for (; k < K; ++k) out = std::max(out, std::abs(x[k]));
  return out;
}

// The two digits of 16 elements x[0..15] given inv = 1 / d: hi = x / d rounded to nearest even and
// lo = (x / d − hi) · 128 rounded the same way (|x / d| ≤ 127 needs no clamp; |lo| ≤ 64).
struct Digits16 {
  __m512i hi, lo;
};
__attribute__((target("avx512f"))) inline Digits16 two_digits(const float* x, __m512 inv) {
  const __m512 v = _mm512_mul_ps(_mm512_loadu_ps(x), inv);
  const __m512i hi = _mm512_cvtps_epi32(v);
  return {hi, _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_sub_ps(v, _mm512_cvtepi32_ps(hi)), _mm512_set1_ps(128.0f)))};
}

}  // namespace gptoss::cpu
