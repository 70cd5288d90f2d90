// mxfp4_rows16.cpp — unpack_rows16 (cpu/mxfp4_rows16.h): whole aligned groups by an AVX-512 4 × 16
// transpose of each block's four pieces, anything else piece by piece.
#include "mxfp4_rows16.h"

#include <immintrin.h>

#include <cstring>

#include "simd.h"

namespace gptoss::cpu {

namespace {

// The 16 rows of group g (rows 16g .. 16g + 15) into out rows 0..15.
__attribute__((target("avx512f"))) void unpack_group_avx512(const MxFp4Matrix& m, int64_t g, uint8_t* blocks, uint8_t* scales) {
  const int64_t nb = m.cols / 32;
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* src = m.blocks + (g * nb + b) * 256;
    const __m512i z0 = _mm512_loadu_si512(src), z1 = _mm512_loadu_si512(src + 64);
    const __m512i z2 = _mm512_loadu_si512(src + 128), z3 = _mm512_loadu_si512(src + 192);
    // In each 128-bit lane l: pieces 0–3 of rows 4l + j, for j = 0..3 in order.
    const __m512i a = _mm512_unpacklo_epi32(z0, z1), c = _mm512_unpackhi_epi32(z0, z1);
    const __m512i d = _mm512_unpacklo_epi32(z2, z3), e = _mm512_unpackhi_epi32(z2, z3);
    const __m512i row[4] = {_mm512_unpacklo_epi64(a, d), _mm512_unpackhi_epi64(a, d), _mm512_unpacklo_epi64(c, e),
                            _mm512_unpackhi_epi64(c, e)};
    for (int j = 0; j < 4; ++j) {
      const auto dst = [&](int l) { return reinterpret_cast<__m128i*>(blocks + ((4 * l + j) * nb + b) * 16); };
      _mm_storeu_si128(dst(0), _mm512_castsi512_si128(row[j]));
      _mm_storeu_si128(dst(1), _mm512_extracti32x4_epi32(row[j], 1));
      _mm_storeu_si128(dst(2), _mm512_extracti32x4_epi32(row[j], 2));
      _mm_storeu_si128(dst(3), _mm512_extracti32x4_epi32(row[j], 3));
    }
    const uint8_t* s = m.scales + (g * nb + b) * 16;
    for (int r = 0; r < 16; ++r) scales[r * nb + b] = s[r];
  }
}

}  // namespace

void unpack_rows16(const MxFp4Matrix& m, int64_t r0, int n, uint8_t* blocks, uint8_t* scales) {
  const int64_t nb = m.cols / 32;
  int64_t r = r0;
  for (; r < r0 + n; ++r) {
    if (r % 16 == 0 && r + 16 <= r0 + n && simd_level() == Simd::Avx512) {
      unpack_group_avx512(m, r / 16, blocks + (r - r0) * nb * 16, scales + (r - r0) * nb);
      r += 15;
      continue;
    }
    for (int64_t b = 0; b < nb; ++b) {
      for (int i = 0; i < 4; ++i) std::memcpy(blocks + ((r - r0) * nb + b) * 16 + 4 * i, m.blocks + rows16_piece_offset(nb, r, b, i), 4);
      scales[(r - r0) * nb + b] = m.scales[rows16_scale_offset(nb, r, b)];
    }
  }
}

}  // namespace gptoss::cpu
