// gemm_i16.cpp — see gemm_i16.h.
#include "gemm_i16.h"

#include <immintrin.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "q8_digits.h"

namespace gptoss::cpu {

// v = round(fl(x · 127 / max|x|) · 128) to nearest even: equal to 128 · q_hi + q_lo of the streamed
// products' two digits (quantize_q8 in cpu/moe_mxfp4_q8_matmul.cpp: the product by 128 is exact and so is
// the digits' remainder), never past ±16,320.
__attribute__((target("avx512f,avx512bw"))) void quantize_i16(const float* x, int T, int64_t K, float unit,
                                                              I16Activations& out) {
  const int tiles = (T + kI16TokenTile - 1) / kI16TokenTile;
  out.T = T, out.K = K;
  out.xT.assign(static_cast<size_t>(tiles) * kI16TokenTile * K, 0);
  out.d.assign(static_cast<size_t>(tiles) * kI16TokenTile, 0.0f);
  auto* pairs = reinterpret_cast<int32_t*>(out.xT.data());  // [tile][k / 2][kI16TokenTile]
  for (int t = 0; t < T; ++t) {
    const float amax = row_amax(x + t * K, K);
    out.d[t] = amax / 127.0f * (unit / 128.0f);
    const __m512 inv = _mm512_set1_ps(amax > 0.0f ? 127.0f / amax : 0.0f), r128 = _mm512_set1_ps(128.0f);
    int32_t* dst = pairs + static_cast<int64_t>(t / kI16TokenTile) * kI16TokenTile * K / 2 + t % kI16TokenTile;
    for (int64_t k = 0; k < K; k += 32) {
      const __m512i v0 = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_mul_ps(_mm512_loadu_ps(x + t * K + k), inv), r128));
      const __m512i v1 = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_mul_ps(_mm512_loadu_ps(x + t * K + k + 16), inv), r128));
      alignas(64) int32_t p[16];  // 16 pairs (k, k + 1) as int16 × 2
      _mm256_store_si256(reinterpret_cast<__m256i*>(p), _mm512_cvtepi32_epi16(v0));
      _mm256_store_si256(reinterpret_cast<__m256i*>(p + 8), _mm512_cvtepi32_epi16(v1));
      for (int j = 0; j < 16; ++j) dst[(k / 2 + j) * kI16TokenTile] = p[j];
    }
  }
}

namespace {

constexpr int kTokenVectors = kI16TokenTile / 16;
// Blocks of K per pass over the panel's rows: the activation tile's share (8 blocks × 64 tokens × 64 B
// = 32 KiB) stays in L1 while every row of the panel uses it.
constexpr int kBlocksPerPass = 8;

// acc[MR][kTokenVectors][16] += MR weight rows × 16·TV tokens over `nb` blocks: MR·TV int32 block sums in
// registers, each scaled into its fp32 accumulator (in memory, touched once per block) when its block ends.
// Each k pair broadcasts one row's two weights against 16 tokens' two activations.
template <int MR, int TV>
__attribute__((target("avx512f,avx512bw,avx512vnni"))) void micro(const int16_t* w, int64_t K, const float* sc, int64_t ldsc,
                                                                  const int16_t* xt, int nb, float* acc) {
  for (int b = 0; b < nb; ++b) {
    __m512i sum[MR][TV];
    for (int r = 0; r < MR; ++r)
      for (int v = 0; v < TV; ++v) sum[r][v] = _mm512_setzero_si512();
    const int16_t* wb = w + b * 32;
    const int16_t* xb = xt + b * 32 * kI16TokenTile;
#pragma GCC unroll 16
    for (int kp = 0; kp < 16; ++kp) {
      __m512i xv[TV];
      for (int v = 0; v < TV; ++v) xv[v] = _mm512_loadu_si512(xb + kp * 2 * kI16TokenTile + 32 * v);
      for (int r = 0; r < MR; ++r) {
        int32_t pair;
        __builtin_memcpy(&pair, wb + r * K + 2 * kp, sizeof pair);
        const __m512i bw = _mm512_set1_epi32(pair);
        for (int v = 0; v < TV; ++v) sum[r][v] = _mm512_dpwssd_epi32(sum[r][v], bw, xv[v]);
      }
    }
    for (int r = 0; r < MR; ++r) {
      const __m512 s = _mm512_set1_ps(sc[r * ldsc + b]);
      for (int v = 0; v < TV; ++v) {
        float* a = acc + (r * kTokenVectors + v) * 16;
        _mm512_store_ps(a, _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum[r][v]), s, _mm512_load_ps(a)));
      }
    }
    // Keeps the accumulators in memory: held in registers beside the block sums they would spill.
    asm volatile("" ::: "memory");
  }
}

using Micro = void (*)(const int16_t*, int64_t, const float*, int64_t, const int16_t*, int, float*);

template <int TV, int... R>
constexpr Micro pick_rows(int nr, std::integer_sequence<int, R...>) {
  constexpr Micro fns[] = {micro<R + 1, TV>...};
  return fns[nr - 1];
}

// Weight rows per micro tile: 4 × 64 tokens = 16 independent block sums (the kernel lab measured 4 and 6
// rows alike, 8 slower).
constexpr int kMicroRows = 4;

Micro pick(int nr, int tv) {
  constexpr auto rows = std::make_integer_sequence<int, kMicroRows>{};
  switch (tv) {
    case 1: return pick_rows<1>(nr, rows);
    case 2: return pick_rows<2>(nr, rows);
    case 3: return pick_rows<3>(nr, rows);
    default: return pick_rows<4>(nr, rows);
  }
}

}  // namespace

__attribute__((target("avx512f"))) void gemm_i16_panel(const int16_t* panel, const float* scales, int nrows,
                                                       const I16Activations& a, float* out, int64_t ldo, const float* bias) {
  const int64_t K = a.K, nb = K / 32;
  thread_local std::vector<float> buffer;
  buffer.resize(static_cast<size_t>(nrows) * kI16TokenTile + 16);
  // 64-byte aligned accumulators: [row][token vector][16]
  float* acc = buffer.data() + (16 - reinterpret_cast<uintptr_t>(buffer.data()) / sizeof(float) % 16) % 16;
  for (int t0 = 0; t0 < a.T; t0 += kI16TokenTile) {
    const int valid = std::min(kI16TokenTile, a.T - t0);
    const int tv = (valid + 15) / 16;
    const int16_t* xt = a.xT.data() + static_cast<int64_t>(t0) * K;
    std::fill(acc, acc + static_cast<size_t>(nrows) * kI16TokenTile, 0.0f);
    for (int64_t b0 = 0; b0 < nb; b0 += kBlocksPerPass) {
      const int n = static_cast<int>(std::min<int64_t>(kBlocksPerPass, nb - b0));
      for (int r0 = 0; r0 < nrows; r0 += kMicroRows)
        pick(std::min(kMicroRows, nrows - r0), tv)(panel + r0 * K + b0 * 32, K, scales + r0 * nb + b0, nb,
                                                   xt + b0 * 32 * kI16TokenTile, n, acc + r0 * kI16TokenTile);
    }
    alignas(64) float tmp[16];
    for (int v = 0; v < tv; ++v) {
      const __m512 dv = _mm512_loadu_ps(a.d.data() + t0 + 16 * v);
      for (int r = 0; r < nrows; ++r) {
        _mm512_store_ps(tmp, _mm512_mul_ps(_mm512_load_ps(acc + (r * kTokenVectors + v) * 16), dv));
        const float bb = bias ? bias[r] : 0.0f;
        for (int i = 0; i < 16 && 16 * v + i < valid; ++i) out[(t0 + 16 * v + i) * ldo + r] = tmp[i] + bb;
      }
    }
  }
}

}  // namespace gptoss::cpu
