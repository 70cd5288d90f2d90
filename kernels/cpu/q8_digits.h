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

}  // namespace gptoss::cpu
