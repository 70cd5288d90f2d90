// bf16_rows16.cpp — unpack_bf16_rows16 (cpu/bf16_rows16.h): whole aligned groups 16 pairs at a time by an
// AVX-512 16 × 16 transpose of 32-bit lanes (16 pair vectors in, 16 rows' pairs out), anything else pair
// by pair.
#include "bf16_rows16.h"

#include <immintrin.h>

#include <cstring>

#include "simd.h"

namespace gptoss::cpu {

namespace {

// Pairs [p0, p0 + 16) of the 16 rows of group g into out rows 0..15 (row stride ld).
__attribute__((target("avx512f"))) void transpose_16_pairs(const bf16_t* group, int64_t p0, bf16_t* out, int64_t ld) {
  __m512i a[16], b[16], c[16];
  for (int p = 0; p < 16; ++p) a[p] = _mm512_loadu_si512(group + (p0 + p) * 32);
  for (int k = 0; k < 8; ++k) {
    b[2 * k] = _mm512_unpacklo_epi32(a[2 * k], a[2 * k + 1]);
    b[2 * k + 1] = _mm512_unpackhi_epi32(a[2 * k], a[2 * k + 1]);
  }
  // c[4k + j], 128-bit lane L: pairs 4k .. 4k + 3 of row 4L + j.
  for (int k = 0; k < 4; ++k) {
    c[4 * k] = _mm512_unpacklo_epi64(b[4 * k], b[4 * k + 2]);
    c[4 * k + 1] = _mm512_unpackhi_epi64(b[4 * k], b[4 * k + 2]);
    c[4 * k + 2] = _mm512_unpacklo_epi64(b[4 * k + 1], b[4 * k + 3]);
    c[4 * k + 3] = _mm512_unpackhi_epi64(b[4 * k + 1], b[4 * k + 3]);
  }
  // Row 4L + j: lane L of c[j], c[4 + j], c[8 + j], c[12 + j] (a 4 × 4 transpose of 128-bit lanes).
  for (int j = 0; j < 4; ++j) {
    const __m512i d0 = _mm512_shuffle_i32x4(c[j], c[4 + j], _MM_SHUFFLE(1, 0, 1, 0));
    const __m512i d1 = _mm512_shuffle_i32x4(c[j], c[4 + j], _MM_SHUFFLE(3, 2, 3, 2));
    const __m512i d2 = _mm512_shuffle_i32x4(c[8 + j], c[12 + j], _MM_SHUFFLE(1, 0, 1, 0));
    const __m512i d3 = _mm512_shuffle_i32x4(c[8 + j], c[12 + j], _MM_SHUFFLE(3, 2, 3, 2));
    const __m512i rows[4] = {_mm512_shuffle_i32x4(d0, d2, _MM_SHUFFLE(2, 0, 2, 0)), _mm512_shuffle_i32x4(d0, d2, _MM_SHUFFLE(3, 1, 3, 1)),
                             _mm512_shuffle_i32x4(d1, d3, _MM_SHUFFLE(2, 0, 2, 0)), _mm512_shuffle_i32x4(d1, d3, _MM_SHUFFLE(3, 1, 3, 1))};
    for (int L = 0; L < 4; ++L) _mm512_storeu_si512(out + (4 * L + j) * ld + 2 * p0, rows[L]);
  }
}

// Pairs [from, pairs) of rows r0 .. r0 + n − 1, one at a time (an odd last column: its element alone).
void unpack_pairs(const MatrixBF16& m, int64_t r0, int n, int64_t from, bf16_t* out, int64_t ld) {
  const int64_t pairs = bf16_pairs(m.cols), whole = m.cols / 2;
  for (int i = 0; i < n; ++i) {
    const bf16_t* src = m.data + bf16_rows16_offset(m.cols, r0 + i, 0);
    bf16_t* dst = out + i * ld;
    for (int64_t p = from; p < whole; ++p) std::memcpy(dst + 2 * p, src + 32 * p, 4);  // pair p lies 16 lanes on
    if (whole < pairs) dst[2 * whole] = src[32 * whole];
  }
}

}  // namespace

void unpack_bf16_rows16(const MatrixBF16& m, int64_t r0, int n, bf16_t* out, int64_t ld) {
  const int64_t whole = m.cols / 2;
  int done = 0;
  if (simd_level() == Simd::Avx512)
    for (; r0 % 16 == 0 && n - done >= 16; done += 16, r0 += 16, out += 16 * ld) {
      const bf16_t* group = m.data + bf16_rows16_offset(m.cols, r0, 0);
      int64_t p = 0;
      for (; p + 16 <= whole; p += 16) transpose_16_pairs(group, p, out, ld);
      unpack_pairs(m, r0, 16, p, out, ld);
    }
  unpack_pairs(m, r0, n - done, 0, out, ld);
}

}  // namespace gptoss::cpu
