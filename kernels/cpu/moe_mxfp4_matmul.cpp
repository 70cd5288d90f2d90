// moe_mxfp4_matmul.cpp — expert projections straight from the packed MXFP4 bytes (spec §3): each 16-byte
// block holds 32 E2M1 codes (element 2j in the low nibble of byte j), times 2^(scale − 127). No
// dequantized copy exists: codes are decoded in registers inside the dot product (a 16-entry table in
// one vector register), the block scale multiplies the 32-element partial sum once, and each decoded
// block is used for every token routed to the expert. Activations are first re-ordered per block so
// that even/odd elements line up with the low/high nibbles.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "gemm_f32.h"
#include "mxfp4_rows16.h"
#include "ops.h"
#include "simd.h"

namespace gptoss::cpu {

// kernels
namespace {

constexpr float kFp4[16] = {+0.0f, +0.5f, +1.0f, +1.5f, +2.0f, +3.0f, +4.0f, +6.0f,
                            -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};

struct ScaleTable {
  float v[256];
  ScaleTable() {
    for (int s = 0; s < 256; ++s) v[s] = std::ldexp(1.0f, s - 127);
  }
};
const ScaleTable kScale;

// Scalar reference path (also the edge-tile path).
void row_scalar(const uint8_t* blocks, const uint8_t* scales, int64_t nb, const float* x, int64_t K, int n, float* out,
                int64_t ldo) {
  for (int t = 0; t < n; ++t) {
    float acc = 0.0f;
    for (int64_t g = 0; g < nb; ++g) {
      float s = 0.0f;
      for (int j = 0; j < 16; ++j) {
        s += kFp4[blocks[g * 16 + j] & 0x0F] * x[t * K + g * 32 + 2 * j];
        s += kFp4[blocks[g * 16 + j] >> 4] * x[t * K + g * 32 + 2 * j + 1];
      }
      acc += s * kScale.v[scales[g]];
    }
    out[t * ldo] = acc;
  }
}

// AVX-512: x' block = [x0, x2, …, x30 | x1, x3, …, x31].
void permute_avx512(const float* x, int n, int64_t K, float* xp) {
  for (int t = 0; t < n; ++t)
    for (int64_t b = 0; b < K; b += 32)
      for (int j = 0; j < 16; ++j) {
        xp[t * K + b + j] = x[t * K + b + 2 * j];
        xp[t * K + b + 16 + j] = x[t * K + b + 2 * j + 1];
      }
}

// Decode and small batches (NC ≤ 4 tokens): one row at a time so each thread reads one sequential
// stream of bytes, software prefetch ahead of it, each block decoded once for all NC tokens, two
// accumulators per token to break the FMA chain. vpermps reads only the low 4 bits of each index,
// so the low nibble needs no mask.
template <int NC>
__attribute__((target("avx512f,avx512bw,avx512vl,fma"))) void row_avx512_stream(const uint8_t* blocks, const uint8_t* scales,
                                                                                int64_t nb, const float* xp, int64_t K,
                                                                                float* out, int64_t ldo) {
  const __m512 lut = _mm512_loadu_ps(kFp4);
  __m512 acc[2][NC];
  for (int c = 0; c < NC; ++c) acc[0][c] = acc[1][c] = _mm512_setzero_ps();
  for (int64_t g = 0; g < nb; ++g) {
    if ((g & 3) == 0) _mm_prefetch(reinterpret_cast<const char*>(blocks + g * 16 + 8192), _MM_HINT_T0);
    const __m512i b = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blocks + g * 16)));
    // The scale multiplies the block's partial sum (not the codes): no overflow for extreme scale bytes.
    const __m512 s = _mm512_set1_ps(kScale.v[scales[g]]);
    const __m512 wl = _mm512_permutexvar_ps(b, lut);
    const __m512 wh = _mm512_permutexvar_ps(_mm512_srli_epi32(b, 4), lut);
    for (int c = 0; c < NC; ++c) {
      const __m512 part = _mm512_fmadd_ps(wh, _mm512_loadu_ps(xp + c * K + g * 32 + 16), _mm512_mul_ps(wl, _mm512_loadu_ps(xp + c * K + g * 32)));
      acc[g & 1][c] = _mm512_fmadd_ps(part, s, acc[g & 1][c]);
    }
  }
  for (int c = 0; c < NC; ++c) out[c * ldo] = _mm512_reduce_add_ps(_mm512_add_ps(acc[0][c], acc[1][c]));
}

// Decodes a panel of MXFP4 rows to fp32 (scale applied: exact, as the reference dequantizes) for the
// packed GEMM. Natural element order, so activations need no re-ordering on this path.
__attribute__((target("avx512f,avx512bw,avx512vl,fma"))) void pack_mxfp4_panel(const uint8_t* blocks, const uint8_t* scales,
                                                                                int rows, int64_t nb, float* panel) {
  const __m512 lut = _mm512_loadu_ps(kFp4);
  const __m512i even = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  const __m512i odd = _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
  for (int r = 0; r < rows; ++r)
    for (int64_t g = 0; g < nb; ++g) {
      const __m512i b = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blocks + (r * nb + g) * 16)));
      const __m512 s = _mm512_set1_ps(kScale.v[scales[r * nb + g]]);
      const __m512 lo = _mm512_mul_ps(_mm512_permutexvar_ps(b, lut), s);                          // elements 0,2,…,30
      const __m512 hi = _mm512_mul_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(b, 4), lut), s);  // elements 1,3,…,31
      float* dst = panel + r * nb * 32 + g * 32;
      _mm512_storeu_ps(dst, _mm512_permutex2var_ps(lo, even, hi));
      _mm512_storeu_ps(dst + 16, _mm512_permutex2var_ps(lo, odd, hi));
    }
}

// AVX2: x' block = [x0,x2..x14 | x1,x3..x15 | x16,x18..x30 | x17..x31]; the sign bit of a code is applied
// by XOR after an 8-entry magnitude lookup.
void permute_avx2(const float* x, int n, int64_t K, float* xp) {
  for (int t = 0; t < n; ++t)
    for (int64_t b = 0; b < K; b += 32)
      for (int h = 0; h < 2; ++h)
        for (int j = 0; j < 8; ++j) {
          xp[t * K + b + 16 * h + j] = x[t * K + b + 16 * h + 2 * j];
          xp[t * K + b + 16 * h + 8 + j] = x[t * K + b + 16 * h + 2 * j + 1];
        }
}

__attribute__((target("avx2,fma"))) inline __m256 decode8(__m256i codes, __m256 mag) {
  const __m256 v = _mm256_permutevar8x32_ps(mag, _mm256_and_si256(codes, _mm256_set1_epi32(7)));
  const __m256i sign = _mm256_slli_epi32(_mm256_and_si256(codes, _mm256_set1_epi32(8)), 28);
  return _mm256_xor_ps(v, _mm256_castsi256_ps(sign));
}

template <int NC>
__attribute__((target("avx2,fma"))) void rows_avx2(const uint8_t* blocks, const uint8_t* scales, int64_t nb, const float* xp,
                                                    int64_t K, float* out, int64_t ldo) {
  const __m256 mag = _mm256_loadu_ps(kFp4);
  __m256 acc[NC];
  for (int c = 0; c < NC; ++c) acc[c] = _mm256_setzero_ps();
  for (int64_t g = 0; g < nb; ++g) {
    __m256 w[4];
    for (int h = 0; h < 2; ++h) {
      const __m256i bytes = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(blocks + g * 16 + 8 * h)));
      w[2 * h] = decode8(_mm256_and_si256(bytes, _mm256_set1_epi32(0x0F)), mag);
      w[2 * h + 1] = decode8(_mm256_srli_epi32(bytes, 4), mag);
    }
    const __m256 sc = _mm256_set1_ps(kScale.v[scales[g]]);
    for (int c = 0; c < NC; ++c) {
      const float* xb = xp + c * K + g * 32;
      __m256 s = _mm256_mul_ps(w[0], _mm256_loadu_ps(xb));
      for (int q = 1; q < 4; ++q) s = _mm256_fmadd_ps(w[q], _mm256_loadu_ps(xb + 8 * q), s);
      acc[c] = _mm256_fmadd_ps(s, sc, acc[c]);
    }
  }
  for (int c = 0; c < NC; ++c) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc[c]), _mm256_extractf128_ps(acc[c], 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    out[c * ldo] = _mm_cvtss_f32(s);
  }
}

}  // namespace

// launchers
// Work items of a group: (job, first row) of a panel (packed GEMM) or of a 4-row streaming tile — 16 rows,
// one group, where the weights lie as Rows16 (unpacked into a per-thread buffer first).
void f32_mxfp4w_matmul(const ExpertMatmul* jobs, int num_jobs) {
  const Simd simd = simd_level();
  constexpr int CC = 4;
  const auto tile_rows = [](const ExpertMatmul& m) { return m.w.layout == MxFp4Layout::Rows16 ? 16 : 4; };
  thread_local std::vector<std::pair<int, int64_t>> items;
  thread_local std::vector<std::vector<float>> permuted;  // per job: activations re-ordered for streaming
  items.clear();
  if (static_cast<int>(permuted.size()) < num_jobs) permuted.resize(num_jobs);
  for (int j = 0; j < num_jobs; ++j) {
    const ExpertMatmul& m = jobs[j];
    const bool packed = simd == Simd::Avx512 && m.path == RowPath::Panel;
    if (packed) {
      permuted[j].resize(transposed_size(m.n, m.w.cols));
      transpose_activations(m.x, m.n, m.w.cols, permuted[j].data());
    } else if (simd != Simd::Scalar) {
      permuted[j].resize(static_cast<size_t>(m.n) * m.w.cols);
      (simd == Simd::Avx512 ? permute_avx512 : permute_avx2)(m.x, m.n, m.w.cols, permuted[j].data());
    }
    for (int64_t r0 = 0; r0 < m.w.rows; r0 += packed ? kPanelRows : tile_rows(m)) items.emplace_back(j, r0);
  }
  const int64_t count = static_cast<int64_t>(items.size());
  const auto* list = items.data();
  const auto* perm = permuted.data();
#pragma omp parallel
  {
    thread_local std::vector<float> panel;
    thread_local std::vector<uint8_t> unpacked_blocks, unpacked_scales;
#pragma omp for schedule(static)
    for (int64_t i = 0; i < count; ++i) {
      const auto [j, r0] = list[i];
      const ExpertMatmul& m = jobs[j];
      const int64_t rows = m.w.rows, K = m.w.cols, nb = K / 32;
      const float* bias = m.bias ? m.bias + r0 : nullptr;
      if (simd == Simd::Avx512 && m.path == RowPath::Panel) {
        const int nr = static_cast<int>(std::min<int64_t>(kPanelRows, rows - r0));
        panel.resize(static_cast<size_t>(kPanelRows) * K);
        const RowsView w = rows_of(m.w, r0, nr, unpacked_blocks, unpacked_scales);
        pack_mxfp4_panel(w.blocks, w.scales, nr, nb, panel.data());
        gemm_panel_avx512(panel.data(), nr, K, perm[j].data(), m.n, m.out + r0, rows, bias);
        continue;
      }
      const float* xs = simd == Simd::Scalar ? m.x : perm[j].data();
      const int nr = static_cast<int>(std::min<int64_t>(tile_rows(m), rows - r0));
      const RowsView w = rows_of(m.w, r0, nr, unpacked_blocks, unpacked_scales);
      for (int t0 = 0; t0 < m.n; t0 += CC) {
        const int nc = std::min(CC, m.n - t0);
        float* o = m.out + static_cast<int64_t>(t0) * rows + r0;
        const float* xt = xs + static_cast<int64_t>(t0) * K;
        for (int r = 0; r < nr; ++r) {
          const uint8_t* b = w.blocks + r * nb * 16;
          const uint8_t* s = w.scales + r * nb;
          if (simd == Simd::Avx512) {
            switch (nc) {
              case 1: row_avx512_stream<1>(b, s, nb, xt, K, o + r, rows); break;
              case 2: row_avx512_stream<2>(b, s, nb, xt, K, o + r, rows); break;
              case 3: row_avx512_stream<3>(b, s, nb, xt, K, o + r, rows); break;
              default: row_avx512_stream<4>(b, s, nb, xt, K, o + r, rows); break;
            }
          } else if (simd == Simd::Avx2) {
            for (int c = 0; c < nc; ++c) rows_avx2<1>(b, s, nb, xt + c * K, K, o + r + c * rows, rows);
          } else {
            row_scalar(b, s, nb, xt, K, nc, o + r, rows);
          }
        }
        if (bias)
          for (int c = 0; c < nc; ++c)
            for (int r = 0; r < nr; ++r) o[c * rows + r] += bias[r];
      }
    }
  }
}

}  // namespace gptoss::cpu
