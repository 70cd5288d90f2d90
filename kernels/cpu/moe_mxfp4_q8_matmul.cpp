// moe_mxfp4_q8_matmul.cpp — the serving-precision expert product (the engine's "default" precision):
// integer dot products with AVX512-VNNI (vpdpbusd, 64 byte products per instruction), as the fastest CPU
// engines do, with activations written as two int8 digits per element so that accuracy stays close to fp32:
//   x ≈ (q_hi + q_lo / 128) · d,   d = max|x| / 127 over the token's row,
// q_hi = round(x / d) ∈ [−127, 127] and q_lo = round((x / d − q_hi) · 128) ∈ [−64, 64]: the rounding error
// is at most d / 256 per element (one int8 digit alone, d / 2, moved the golden logits by 4–8 % through
// routing flips, over the 3e-2 serving tolerance). MXFP4 codes become small integers by one byte shuffle;
// each block's two integer sums are combined as s_hi · 128 + s_lo, scaled in fp32 by 2^(scale − 127), and
// the finished dot product by d / 128. test/test_ops.cpp checks the error bound Σ|w| · d / 256 per element
// against a double-precision reference.
//
// Why integers: decoding E2M1 to fp32 costs ~7 vector µops per 32 codes (cpu/moe_mxfp4_matmul.cpp), which
// keeps a core below its share of DRAM bandwidth at decode; here 128 codes cost ~9 shared µops plus ~9 per
// token.
//
// vpdpbusd multiplies unsigned by signed bytes, so the codes map to w' = 2·value + 12 ∈ [0, 24] and each
// block's sum is corrected by −12 · (128 · Σq_hi + Σq_lo), precomputed with the activations as an exact
// fp32 integer per block and added once per 16 blocks (corrections × block scales, one FMA into the same
// accumulator) rather than as an int32 vector loaded per token and step, which was a fifth of the
// kernel's per-token loads (PERFORMANCE, kernel lab "Decode-shaped expert products"); the ½ is folded
// into the scale. Panel products (rows of long prefill chunks) multiply the same rounded activations as
// one int16 each (128 · q_hi + q_lo) by 48-row panels of the codes as int16 (2 · value) in the integer
// GEMM of cpu/gemm_i16.cpp (`vpdpwssd`: 32 products per instruction, twice the fp32 FMA's, where two int8
// digits would cost as many instructions per weight as fp32 FMAs). Hosts without AVX512-VNNI take the
// exact fp32 path for every product: more accurate, never less.
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <utility>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "cpu_features.h"
#include "gemm_f32.h"
#include "gemm_i16.h"
#include "moe_mxfp4_q8.h"
#include "mxfp4_rows16.h"
#include "ops.h"
#include "q8_digits.h"
#include "simd.h"

namespace gptoss::cpu {

void f32_mxfp4w_matmul(const ExpertMatmul* jobs, int num_jobs);

// kernels
namespace {

// One 512-bit step covers 4 blocks (64 packed bytes, 128 codes): 128-bit lane i holds block i.
constexpr int kBlocksPerStep = 4;

// One token's activations, quantized and laid out per step: q[step][4][64] (high digits of the 16 even
// elements of each block, lane by lane, then of the odd ones, matching low/high nibbles; then the low
// digits the same way) and corr[block] (the block's correction as an fp32 integer, 0 past the last block
// up to a multiple of 16); d = the token's scale · ½ / 128, applied once to each finished dot product.
using Q8Token = DigitToken<float>;
using Q8Buffer = DigitBuffer<float>;

// The two digits of each element (two_digits). The token's scale d is max|x| / 127 over its whole row
// (row_amax): one scale per token keeps the per-token work of the dot product to integer sums, one
// conversion and one FMA per 4 blocks; with two digits, per-32-block scales measured no more accurate on
// the golden checkpoints.
__attribute__((target("avx512f,avx512bw"))) void quantize_q8(const float* x, int n, int64_t K, Q8Buffer& out) {
  const int64_t nb = K / 32;
  const int64_t steps = (nb + kBlocksPerStep - 1) / kBlocksPerStep;
  out.reset(n, steps * 256, (nb + 15) / 16 * 16);
  const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  for (int t = 0; t < n; ++t) {
    const float amax = row_amax(x + t * K, K);
    const __m512 inv = _mm512_set1_ps(amax > 0.0f ? 127.0f / amax : 0.0f);
    out.d[t] = std::ldexp(amax / 127.0f * 0.5f / 128.0f, kScaleBias);
    for (int64_t b = 0; b < nb; ++b) {
      const auto [h0, l0] = two_digits(x + t * K + b * 32, inv);
      const auto [h1, l1] = two_digits(x + t * K + b * 32 + 16, inv);
      const int64_t step = t * steps + b / kBlocksPerStep, lane = b % kBlocksPerStep;
      int8_t* q = out.q.data() + step * 256 + lane * 16;
      _mm_storeu_si128(reinterpret_cast<__m128i*>(q), _mm512_cvtepi32_epi8(_mm512_permutex2var_epi32(h0, even, h1)));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(q + 64), _mm512_cvtepi32_epi8(_mm512_permutex2var_epi32(h0, odd, h1)));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(q + 128), _mm512_cvtepi32_epi8(_mm512_permutex2var_epi32(l0, even, l1)));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(q + 192), _mm512_cvtepi32_epi8(_mm512_permutex2var_epi32(l0, odd, l1)));
      const int32_t sum = 128 * _mm512_reduce_add_epi32(_mm512_add_epi32(h0, h1)) + _mm512_reduce_add_epi32(_mm512_add_epi32(l0, l1));
      out.corr[t * out.corr_stride + b] = static_cast<float>(-12 * sum);  // |·| < 2^23: exact
    }
  }
}

// NR weight rows (`stride` rows apart) against NC tokens, the rows' byte streams interleaved step by step
// (several hardware prefetch streams per thread) plus a software prefetch kPrefetchBytes ahead into L2,
// and as far ahead in rows for the rows' scale bytes (otherwise a scale line missing every few rows
// stalls the row: PERFORMANCE, kernel lab "Decode-shaped expert products").
// Per step the rows' codes are decoded first, then each token's digits are loaded once and go to every
// row (loading them per row and token, as before, ran at 0.5–0.7× the speed in the kernel lab). One
// accumulator per (row, token), updated in the same order whatever NR and NC are, so a token's result
// never depends on its neighbours.

template <int NR, int NC>
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx512vbmi"))) void rows_q8_vnni(const uint8_t* blocks,
                                                                                            const uint8_t* scales, int64_t nb,
                                                                                            const Q8Token* act, float* out,
                                                                                            int64_t ldo, int64_t stride) {
  const CodeDecoder decode;
  // Block scales: 16 exponent bytes widened once per 4 steps; step j's lane i takes block 4j + i.
  const __m512i lane_of[4] = {_mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0),
                              _mm512_set_epi32(7, 7, 7, 7, 6, 6, 6, 6, 5, 5, 5, 5, 4, 4, 4, 4),
                              _mm512_set_epi32(11, 11, 11, 11, 10, 10, 10, 10, 9, 9, 9, 9, 8, 8, 8, 8),
                              _mm512_set_epi32(15, 15, 15, 15, 14, 14, 14, 14, 13, 13, 13, 13, 12, 12, 12, 12)};
  __m512 acc[NR][NC];
  for (int r = 0; r < NR; ++r)
    for (int c = 0; c < NC; ++c) acc[r][c] = _mm512_setzero_ps();
  __m512 sw16[NR];
  const int64_t steps = (nb + kBlocksPerStep - 1) / kBlocksPerStep, row_bytes = nb * 16;
  for (int64_t g = 0; g < steps; ++g) {
    const int64_t left = std::min<int64_t>(kBlocksPerStep, nb - g * kBlocksPerStep);
    if ((g & 3) == 0) {
      const int64_t n16 = std::min<int64_t>(16, nb - g * kBlocksPerStep);
      for (int r = 0; r < NR; ++r) {
        const uint8_t* s = scales + r * stride * nb + g * kBlocksPerStep;
        _mm_prefetch(reinterpret_cast<const char*>(s + kPrefetchBytes / 16), _MM_HINT_T1);
        sw16[r] = scale_multipliers(_mm_maskz_loadu_epi8(static_cast<__mmask16>((1u << n16) - 1), s));
      }
      // The 16 blocks' corrections (lanes past the last block: 0 · scale 0).
      for (int c = 0; c < NC; ++c) {
        const __m512 corr = _mm512_loadu_ps(act[c].corr + g * kBlocksPerStep);
        for (int r = 0; r < NR; ++r) acc[r][c] = _mm512_fmadd_ps(corr, sw16[r], acc[r][c]);
      }
    }
    __m512i wl[NR], wh[NR];
    __m512 sw[NR];
    for (int r = 0; r < NR; ++r) {
      const uint8_t* b = blocks + r * stride * row_bytes + g * 64;
      __m512i w;
      if (left == kBlocksPerStep) {
        _mm_prefetch(reinterpret_cast<const char*>(b + kPrefetchBytes), _MM_HINT_T1);
        w = _mm512_loadu_si512(b);
      } else {
        w = _mm512_maskz_loadu_epi8((1ull << (16 * left)) - 1, b);
      }
      wl[r] = decode.low_nibbles(w);
      wh[r] = decode.high_nibbles(w);
      sw[r] = _mm512_permutexvar_ps(lane_of[g & 3], sw16[r]);
    }
    for (int c = 0; c < NC; ++c) {
      const int8_t* q = act[c].q + g * 256;
      const __m512i q0 = _mm512_loadu_si512(q), q1 = _mm512_loadu_si512(q + 64), q2 = _mm512_loadu_si512(q + 128), q3 = _mm512_loadu_si512(q + 192);
      for (int r = 0; r < NR; ++r) {
        __m512i hi = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wl[r], q0);
        hi = _mm512_dpbusd_epi32(hi, wh[r], q1);
        __m512i sum = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wl[r], q2);
        sum = _mm512_dpbusd_epi32(sum, wh[r], q3);
        sum = _mm512_add_epi32(sum, _mm512_slli_epi32(hi, 7));
        acc[r][c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), sw[r], acc[r][c]);
      }
    }
  }
  for (int r = 0; r < NR; ++r)
    for (int c = 0; c < NC; ++c) out[c * ldo + r * stride] = _mm512_reduce_add_ps(acc[r][c]) * act[c].d;
}

using RowsFn = void (*)(const uint8_t*, const uint8_t*, int64_t, const Q8Token*, float*, int64_t, int64_t);

template <int... I>
constexpr std::array<RowsFn, sizeof...(I)> rows_table(std::integer_sequence<int, I...>) {
  return {rows_q8_vnni<I / 4 + 1, I % 4 + 1>...};
}
// rows_fn[(nr − 1) · 4 + (nc − 1)]
constexpr auto rows_fn = rows_table(std::make_integer_sequence<int, 16>{});

// Block multipliers of the panel GEMM: 2^(e − 127 − kScaleBias), 0 where the stream kernel's saturating
// exponent is 0 (the ½ of the doubled codes and 2^kScaleBias go into the token's d, as there).
struct PanelScales {
  float v[256];
  PanelScales() {
    for (int e = 0; e < 256; ++e) v[e] = e > kScaleBias ? std::ldexp(1.0f, e - 127 - kScaleBias) : 0.0f;
  }
};
const PanelScales kPanelScale;

// A panel of MXFP4 rows as int16 weights 2 · value ∈ [−12, 12] (exact), in natural element order: each
// 32-bit lane holds the pair (element 2j, element 2j + 1) of byte j's low and high nibble.
__attribute__((target("avx512f,avx512bw"))) void pack_i16_panel(const uint8_t* blocks, const uint8_t* scales, int rows,
                                                                int64_t nb, int16_t* panel, float* sc) {
  const __m512i lut = _mm512_setr_epi32(0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12);
  const __m512i low = _mm512_set1_epi32(0xFFFF);
  for (int64_t g = 0; g < rows * nb; ++g) {
    const __m512i b = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blocks + g * 16)));
    const __m512i even = _mm512_permutexvar_epi32(b, lut), odd = _mm512_permutexvar_epi32(_mm512_srli_epi32(b, 4), lut);
    _mm512_storeu_si512(panel + g * 32, _mm512_or_si512(_mm512_and_si512(even, low), _mm512_slli_epi32(odd, 16)));
    sc[g] = kPanelScale.v[scales[g]];
  }
}

// The panel jobs: each job's activations rounded once, then 48-row panels dealt to the threads.
void panel_products(const ExpertMatmul* jobs, const std::vector<int>& which) {
  thread_local std::vector<I16Activations> acts;
  thread_local std::vector<std::pair<int, int64_t>> items;
  if (acts.size() < which.size()) acts.resize(which.size());
  items.clear();
  for (size_t i = 0; i < which.size(); ++i)
    for (int64_t r0 = 0; r0 < jobs[which[i]].w.rows; r0 += kPanelRows) items.emplace_back(static_cast<int>(i), r0);
  // thread_local names another thread's copy inside the region: hand the threads pointers.
  const int64_t count = static_cast<int64_t>(items.size()), num = static_cast<int64_t>(which.size());
  const auto* list = items.data();
  I16Activations* rounded = acts.data();
  const int* job = which.data();
#pragma omp parallel
  {
#pragma omp for schedule(dynamic)
    for (int64_t i = 0; i < num; ++i) {
      const ExpertMatmul& m = jobs[job[i]];
      quantize_i16(m.x, m.n, m.w.cols, std::ldexp(0.5f, kScaleBias), rounded[i]);
    }
    thread_local std::vector<int16_t> panel;
    thread_local std::vector<float> sc;
    thread_local std::vector<uint8_t> unpacked_blocks, unpacked_scales;
    // Dealt one by one: items cost their job's token count (compute-bound, ≥ 0.1 ms each), and routing
    // leaves some experts many more tokens than others.
#pragma omp for schedule(dynamic)
    for (int64_t i = 0; i < count; ++i) {
      const auto [a, r0] = list[i];
      const ExpertMatmul& m = jobs[job[a]];
      const int64_t nb = m.w.cols / 32;
      const int nr = static_cast<int>(std::min<int64_t>(kPanelRows, m.w.rows - r0));
      panel.resize(static_cast<size_t>(kPanelRows) * m.w.cols), sc.resize(static_cast<size_t>(kPanelRows) * nb);
      const RowsView w = rows_of(m.w, r0, nr, unpacked_blocks, unpacked_scales);
      pack_i16_panel(w.blocks, w.scales, nr, nb, panel.data(), sc.data());
      gemm_i16_panel(panel.data(), sc.data(), nr, rounded[a], m.out + r0, m.w.rows, m.bias ? m.bias + r0 : nullptr);
    }
  }
}

bool has_vnni() {
  static const bool yes = [] {
    const CpuFeatures f = detect_cpu_features();
    return simd_level() == Simd::Avx512 && f.avx512_vnni && f.avx512_vbmi;
  }();
  return yes;
}

}  // namespace

MxFp4Layout resident_expert_layout() {
  static const MxFp4Layout layout = [] {
    const char* want = std::getenv("EXPERTMESH_EXPERT_LAYOUT");
    return has_vnni() && !(want && std::strcmp(want, "rows") == 0) ? MxFp4Layout::Rows16 : MxFp4Layout::Rows;
  }();
  return layout;
}

// launchers
void q8_mxfp4w_matmul(const ExpertMatmul* jobs, int num_jobs) {
  thread_local std::vector<ExpertMatmul> exact;
  thread_local std::vector<int> quantized, panels, rows16;
  thread_local std::vector<Q8Buffer> acts;
  exact.clear(), quantized.clear(), panels.clear(), rows16.clear();
  for (int j = 0; j < num_jobs; ++j) {
    const ExpertMatmul& m = jobs[j];
    if (!has_vnni() || m.w.cols % 32 != 0) {
      exact.push_back(m);
    } else {
      (m.path == RowPath::Panel ? panels : m.w.layout == MxFp4Layout::Rows16 ? rows16 : quantized).push_back(j);
    }
  }
  if (!exact.empty()) f32_mxfp4w_matmul(exact.data(), static_cast<int>(exact.size()));
  if (!panels.empty()) panel_products(jobs, panels);
  if (!rows16.empty()) q8_rows16_stream(jobs, rows16.data(), static_cast<int>(rows16.size()));
  if (quantized.empty()) return;
  if (acts.size() < quantized.size()) acts.resize(quantized.size());
  // Work items: NR = 4 rows a quarter of the matrix apart (rows g, g + Q, g + 2Q, g + 3Q), so that each
  // thread reads four separate sequential streams (one stream per core stays well below its share of
  // DRAM bandwidth); rows past 4Q one at a time.
  struct Item {
    int job;
    int nr;
    int64_t r0, stride;
  };
  thread_local std::vector<Item> work;
  work.clear();
  constexpr int CC = 4;
  for (size_t i = 0; i < quantized.size(); ++i) {
    const ExpertMatmul& m = jobs[quantized[i]];
    quantize_q8(m.x, m.n, m.w.cols, acts[i]);
    const int64_t q = m.w.rows / 4;
    for (int64_t g = 0; g < q; ++g) work.push_back({static_cast<int>(i), 4, g, q});
    for (int64_t r = 4 * q; r < m.w.rows; ++r) work.push_back({static_cast<int>(i), 1, r, 1});
  }
  const int64_t count = static_cast<int64_t>(work.size());
  const Item* list = work.data();
  const auto* qa = acts.data();
  const int* which = quantized.data();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < count; ++i) {
    const Item& it = list[i];
    const ExpertMatmul& m = jobs[which[it.job]];
    const int64_t rows = m.w.rows, nb = m.w.cols / 32;
    for (int t0 = 0; t0 < m.n; t0 += CC) {
      const int nc = std::min(CC, m.n - t0);
      Q8Token tok[CC];
      for (int c = 0; c < nc; ++c) tok[c] = qa[it.job].token(t0 + c);
      float* o = m.out + static_cast<int64_t>(t0) * rows + it.r0;
      rows_fn[(it.nr - 1) * 4 + (nc - 1)](m.w.blocks + it.r0 * nb * 16, m.w.scales + it.r0 * nb, nb, tok, o, rows, it.stride);
      if (m.bias)
        for (int c = 0; c < nc; ++c)
          for (int r = 0; r < it.nr; ++r) o[c * rows + r * it.stride] += m.bias[it.r0 + r * it.stride];
    }
  }
}

}  // namespace gptoss::cpu
