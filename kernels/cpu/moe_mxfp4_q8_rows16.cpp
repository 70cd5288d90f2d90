// moe_mxfp4_q8_rows16.cpp — the serving-precision expert product's stream kernel for matrices placed as
// Rows16 (core/tensor.h; the CPU engine's resident experts): the same two int8 digits per activation and
// the same integer block sums as cpu/moe_mxfp4_q8_matmul.cpp, with 16 rows side by side in the lanes of
// one register instead of one row's blocks. One 64-byte load gives 16 rows × 8 codes; vpdpbusd multiplies
// each row's four codes by the same four activation digits, broadcast from memory inside the instruction,
// so a row's block sum builds up in its own lane and nothing is summed across lanes: per token, one shift,
// add, conversion and FMA per block of 16 rows, where the Rows kernel spends them per 4 blocks of one row
// (PERFORMANCE, kernel lab "The experts as Rows16").
//
// The block's correction for the unsigned codes (−12 · (128 · Σq_hi + Σq_lo), an integer, the same for
// every row) starts the low digits' sum, so it costs no instruction; the block scales of 16 rows are one
// vector.
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <utility>
#include <vector>

#include "moe_mxfp4_q8.h"
#include "q8_digits.h"

namespace gptoss::cpu {

// kernels
namespace {

// One token's activations for Rows16 products: per block, 64 digit bytes in the order the pieces read
// them (for piece i: the high digits of elements 8i, 8i + 2, 8i + 4, 8i + 6 — the low nibbles — then of
// 8i + 1, …, 8i + 7, the high nibbles; after the 32 high digits, the low digits the same way), the
// block's correction (an int32, the low digits' chain starts at it), and d = the token's scale · ½ / 128 ·
// 2^kScaleBias.
using Rows16Token = DigitToken<int32_t>;
using Rows16Buffer = DigitBuffer<int32_t>;

__attribute__((target("avx512f,avx512bw"))) void quantize_rows16(const float* x, int n, int64_t K, Rows16Buffer& out) {
  const int64_t nb = K / 32;
  out.reset(n, nb * 64, nb);
  // Elements 0..15 of a block (and 16..31 the same way) in piece order.
  const __m512i order = _mm512_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7, 8, 10, 12, 14, 9, 11, 13, 15);
  for (int t = 0; t < n; ++t) {
    const float amax = row_amax(x + t * K, K);
    const __m512 inv = _mm512_set1_ps(amax > 0.0f ? 127.0f / amax : 0.0f);
    out.d[t] = std::ldexp(amax / 127.0f * 0.5f / 128.0f, kScaleBias);
    for (int64_t b = 0; b < nb; ++b) {
      const auto [h0, l0] = two_digits(x + t * K + b * 32, inv);
      const auto [h1, l1] = two_digits(x + t * K + b * 32 + 16, inv);
      int8_t* q = out.q.data() + (t * nb + b) * 64;
      _mm_storeu_si128(reinterpret_cast<__m128i*>(q), _mm512_cvtepi32_epi8(_mm512_permutexvar_epi32(order, h0)));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(q + 16), _mm512_cvtepi32_epi8(_mm512_permutexvar_epi32(order, h1)));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(q + 32), _mm512_cvtepi32_epi8(_mm512_permutexvar_epi32(order, l0)));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(q + 48), _mm512_cvtepi32_epi8(_mm512_permutexvar_epi32(order, l1)));
      const int32_t sum = 128 * _mm512_reduce_add_epi32(_mm512_add_epi32(h0, h1)) + _mm512_reduce_add_epi32(_mm512_add_epi32(l0, l1));
      out.corr[t * nb + b] = -12 * sum;
    }
  }
}

// One group of 16 rows against NC tokens: per block, the group's four pieces decoded once (eight registers
// of w'), then for each token two chains of eight dot products (high and low digits) and one FMA by the 16
// rows' scales. One accumulator per token, updated in the same order whatever NC is, so a token's result
// never depends on its neighbours. The first `valid` rows are written (the last group may be padding).
template <int NC>
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx512vbmi"))) void group_q8_vnni(
    const uint8_t* blocks, const uint8_t* scales, int64_t nb, const Rows16Token* act, const float* bias, int valid, float* out,
    int64_t ldo) {
  const CodeDecoder decode;
  __m512 acc[NC];
  for (int c = 0; c < NC; ++c) acc[c] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* p = blocks + b * 256;
    for (int i = 0; i < 4; ++i) _mm_prefetch(reinterpret_cast<const char*>(p + kPrefetchBytes + 64 * i), _MM_HINT_T1);
    if ((b & 3) == 0) _mm_prefetch(reinterpret_cast<const char*>(scales + b * 16 + kPrefetchBytes / 16), _MM_HINT_T1);
    __m512i w[8];
    for (int i = 0; i < 4; ++i) {
      const __m512i v = _mm512_loadu_si512(p + 64 * i);
      w[2 * i] = decode.low_nibbles(v);
      w[2 * i + 1] = decode.high_nibbles(v);
    }
    const __m512 sw = scale_multipliers(_mm_loadu_si128(reinterpret_cast<const __m128i*>(scales + b * 16)));
    for (int c = 0; c < NC; ++c) {
      const int32_t* q = reinterpret_cast<const int32_t*>(act[c].q + b * 64);
      __m512i hi = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w[0], _mm512_set1_epi32(q[0]));
      __m512i lo = _mm512_dpbusd_epi32(_mm512_set1_epi32(act[c].corr[b]), w[0], _mm512_set1_epi32(q[8]));
      for (int j = 1; j < 8; ++j) {
        hi = _mm512_dpbusd_epi32(hi, w[j], _mm512_set1_epi32(q[j]));
        lo = _mm512_dpbusd_epi32(lo, w[j], _mm512_set1_epi32(q[8 + j]));
      }
      acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(lo, _mm512_slli_epi32(hi, 7))), sw, acc[c]);
    }
  }
  const __mmask16 rows = static_cast<__mmask16>((1u << valid) - 1);
  const __m512 b16 = bias ? _mm512_maskz_loadu_ps(rows, bias) : _mm512_setzero_ps();
  for (int c = 0; c < NC; ++c) _mm512_mask_storeu_ps(out + c * ldo, rows, _mm512_fmadd_ps(acc[c], _mm512_set1_ps(act[c].d), b16));
}

constexpr int kTokensPerTile = 4;
using GroupFn = void (*)(const uint8_t*, const uint8_t*, int64_t, const Rows16Token*, const float*, int, float*, int64_t);
template <int... I>
constexpr std::array<GroupFn, sizeof...(I)> group_table(std::integer_sequence<int, I...>) {
  return {group_q8_vnni<I + 1>...};
}
// group_fn[nc − 1]
constexpr auto group_fn = group_table(std::make_integer_sequence<int, kTokensPerTile>{});

}  // namespace

// launchers
void q8_rows16_stream(const ExpertMatmul* jobs, const int* which, int count) {
  thread_local std::vector<Rows16Buffer> acts;
  struct Item {
    int job;
    int64_t group;
  };
  thread_local std::vector<Item> work;
  if (static_cast<int>(acts.size()) < count) acts.resize(count);
  work.clear();
  for (int i = 0; i < count; ++i) {
    const ExpertMatmul& m = jobs[which[i]];
    quantize_rows16(m.x, m.n, m.w.cols, acts[i]);
    for (int64_t g = 0; g < rows16_padded_rows(m.w.rows) / 16; ++g) work.push_back({i, g});
  }
  const int64_t items = static_cast<int64_t>(work.size());
  const Item* list = work.data();
  const Rows16Buffer* qa = acts.data();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < items; ++i) {
    const auto [a, g] = list[i];
    const ExpertMatmul& m = jobs[which[a]];
    const int64_t rows = m.w.rows, nb = m.w.cols / 32;
    const int valid = static_cast<int>(std::min<int64_t>(16, rows - 16 * g));
    for (int t0 = 0; t0 < m.n; t0 += kTokensPerTile) {
      const int nc = std::min(kTokensPerTile, m.n - t0);
      Rows16Token tok[kTokensPerTile];
      for (int c = 0; c < nc; ++c) tok[c] = qa[a].token(t0 + c);
      group_fn[nc - 1](m.w.blocks + g * nb * 256, m.w.scales + g * nb * 16, nb, tok, m.bias ? m.bias + 16 * g : nullptr, valid,
                       m.out + static_cast<int64_t>(t0) * rows + 16 * g, rows);
    }
  }
}

}  // namespace gptoss::cpu
