// moe_mxfp4_q8.h — what the two stream kernels of the serving-precision expert product share:
// cpu/moe_mxfp4_q8_matmul.cpp (matrices laid out as Rows, and the op's entry) and
// cpu/moe_mxfp4_q8_rows16.cpp (Rows16, core/tensor.h).
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <vector>

#include "ops.h"

namespace gptoss::cpu {

// Block scales are applied as 2^(e − 127 − kScaleBias) and the finished sum multiplied back by
// 2^kScaleBias (exact: powers of two), so that integer sums up to 2^31 times the largest scale (2^127)
// stay finite in fp32; scales below 2^(kScaleBias − 126) (no real checkpoint has them) count as 0.
constexpr int kScaleBias = 64;

// How far ahead of the bytes they read the stream kernels prefetch into L2 (and the scale bytes of the
// same rows: PERFORMANCE, kernel lab "Decode-shaped expert products").
constexpr int kPrefetchBytes = 16384;

// Codes → w' = 2 · value + 12 ∈ [0, 24] (the unsigned operand of vpdpbusd) through vpermb, which reads the
// low 6 bits of each index byte: a 64-entry table repeating the 16 values ignores the bits above the
// nibble, so low nibbles need no mask and high nibbles only vpmultishiftqb (each byte ← bits 4..11 of its
// own and the next byte). Shuffle-port work, leaving the other vector port to the dot products.
struct CodeDecoder {
  __m512i lut, high;
  __attribute__((target("avx512f,avx512bw,avx512vbmi"))) CodeDecoder()
      : lut(_mm512_broadcast_i32x4(_mm_setr_epi8(12, 13, 14, 15, 16, 18, 20, 24, 12, 11, 10, 9, 8, 6, 4, 0))),
        high(_mm512_set1_epi64(0x3C342C241C140C04ll)) {}  // bit offsets 4, 12, …, 60
  __attribute__((target("avx512f,avx512bw,avx512vbmi"))) __m512i low_nibbles(__m512i w) const { return _mm512_permutexvar_epi8(w, lut); }
  __attribute__((target("avx512f,avx512bw,avx512vbmi"))) __m512i high_nibbles(__m512i w) const {
    return _mm512_permutexvar_epi8(_mm512_multishift_epi64_epi8(high, w), lut);
  }
};

// 16 block-scale bytes e as the fp32 multipliers 2^(e − 127 − kScaleBias): e − kScaleBias (saturated at
// 0, which reads as 0) written into the exponent field.
__attribute__((target("avx512f,avx512bw,avx512vl"))) inline __m512 scale_multipliers(__m128i e) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu8_epi32(_mm_subs_epu8(e, _mm_set1_epi8(kScaleBias))), 23));
}

// One token's activations as the stream kernels read them: its digits q (laid out as each kernel says), one
// correction per block for the unsigned codes (Corr: what the kernel adds it as), and d, the token's scale
// times whatever the kernel leaves to the finished dot product.
template <class Corr>
struct DigitToken {
  const int8_t* q;
  const Corr* corr;
  float d;
};

// The tokens of one job: token t's digits at q[t · q_stride], its corrections at corr[t · corr_stride].
template <class Corr>
struct DigitBuffer {
  std::vector<int8_t> q;
  std::vector<Corr> corr;
  std::vector<float> d;  // per token
  int64_t q_stride = 0, corr_stride = 0;
  // Sized for n tokens, digits and corrections zeroed.
  void reset(int n, int64_t q_bytes, int64_t corrections) {
    q_stride = q_bytes, corr_stride = corrections;
    q.assign(static_cast<size_t>(n * q_bytes), 0);
    corr.assign(static_cast<size_t>(n * corrections), Corr{});
    d.assign(static_cast<size_t>(n), 0.0f);
  }
  DigitToken<Corr> token(int t) const { return {q.data() + t * q_stride, corr.data() + t * corr_stride, d[t]}; }
};

// The stream products of the jobs jobs[which[0..count)], all laid out as Rows16, with AVX512-VNNI.
void q8_rows16_stream(const ExpertMatmul* jobs, const int* which, int count);

}  // namespace gptoss::cpu
