// matmul_q8.cpp — dense products over q8 weights (the q8 dense-weight mode: QKV, attention out and the
// unembedding as 8-bit codes with one fp32 scale per 32 weights, converted from bf16 at load):
//   out[t][n] = Σ_b s[n][b] · Σ_{k ∈ b} (code[n][k] − 128) · x[t][k] + bias[n].
// Stream rows (decode, short chunks) take integer dot products with AVX512-VNNI, the activations written
// as the expert products write them (cpu/moe_mxfp4_q8_matmul.cpp): two int8 digits of one scale per token,
// x ≈ (q_hi + q_lo / 128) · d, error ≤ d / 256 per element. vpdpbusd multiplies the unsigned codes by the
// signed digits; the +128 offset of the codes is taken out of each block's sum by −128 · (128 · Σq_hi + Σq_lo),
// computed with the activations. A block's integer sum 128 · s_hi + s_lo fits int32 (|s| < 2^27), is
// widened to fp32 once and scaled by its block's scale. Half the bytes of bf16 per weight, and per token
// and 64 weights 2 integer dot products instead of 4 FMAs. Panel rows (long prefill chunks) widen 48-row
// panels to fp32 (codes × scales) for the packed fp32 GEMM, with the exact activations. Hosts without
// AVX512-VNNI take a plain fp32 loop over the dequantized weights for stream rows: more accurate, slower.
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <utility>
#include <vector>

#include "cpu_features.h"
#include "gemm_f32.h"
#include "ops.h"
#include "simd.h"

namespace gptoss::cpu {

// kernels
namespace {

// One 512-bit step covers 64 weights: two 32-weight blocks (lanes 0–7 block 2j, lanes 8–15 block 2j + 1).
constexpr int kStepWeights = 64;

// One token's activations for the integer kernel: hi and lo digits [steps][64] (zero past K), and per step
// 16 int32 lanes holding each block's offset correction in its first lane (0 elsewhere), the start of the
// low digits' sum; d = the token's scale / 128, applied once to the finished dot product.
struct Q8Act {
  const int8_t* hi;
  const int8_t* lo;
  const int32_t* corr;
  float d;
};

struct Q8Acts {
  std::vector<int8_t> hi, lo;
  std::vector<int32_t> corr;
  std::vector<float> d;
  int64_t steps = 0;
  Q8Act token(int t) const {
    const int64_t o = t * steps * kStepWeights;
    return {hi.data() + o, lo.data() + o, corr.data() + t * steps * 16, d[t]};
  }
};

__attribute__((target("avx512f"))) float row_amax(const float* x, int64_t K) {
  __m512 m = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 16 <= K; k += 16) m = _mm512_max_ps(m, _mm512_abs_ps(_mm512_loadu_ps(x + k)));
  float out = _mm512_reduce_max_ps(m);
  for (; k < K; ++k) out = std::max(out, std::abs(x[k]));
  return out;
}

// The digits of each element (cvtps rounds to nearest even; |x / d| ≤ 127 needs no clamp on hi, and the
// low digit lies in [−64, 64]).
__attribute__((target("avx512f,avx512bw"))) void quantize(const float* x, int T, int64_t K, Q8Acts& out) {
  const int64_t nb = K / 32;
  out.steps = (K + kStepWeights - 1) / kStepWeights;
  out.hi.assign(static_cast<size_t>(T * out.steps * kStepWeights), 0);
  out.lo.assign(out.hi.size(), 0);
  out.corr.assign(static_cast<size_t>(T * out.steps * 16), 0);
  out.d.assign(static_cast<size_t>(T), 0.0f);
  const __m512 r128 = _mm512_set1_ps(128.0f);
  for (int t = 0; t < T; ++t) {
    const float amax = row_amax(x + t * K, K);
    const __m512 inv = _mm512_set1_ps(amax > 0.0f ? 127.0f / amax : 0.0f);
    out.d[t] = amax / 127.0f / 128.0f;
    for (int64_t b = 0; b < nb; ++b) {
      const float* xb = x + t * K + b * 32;
      const __m512 v0 = _mm512_mul_ps(_mm512_loadu_ps(xb), inv), v1 = _mm512_mul_ps(_mm512_loadu_ps(xb + 16), inv);
      const __m512i h0 = _mm512_cvtps_epi32(v0), h1 = _mm512_cvtps_epi32(v1);
      const __m512i l0 = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_sub_ps(v0, _mm512_cvtepi32_ps(h0)), r128));
      const __m512i l1 = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_sub_ps(v1, _mm512_cvtepi32_ps(h1)), r128));
      const int64_t o = t * out.steps * kStepWeights + b * 32;
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out.hi.data() + o), _mm512_cvtepi32_epi8(h0));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out.hi.data() + o + 16), _mm512_cvtepi32_epi8(h1));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out.lo.data() + o), _mm512_cvtepi32_epi8(l0));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out.lo.data() + o + 16), _mm512_cvtepi32_epi8(l1));
      const int32_t sum = 128 * _mm512_reduce_add_epi32(_mm512_add_epi32(h0, h1)) + _mm512_reduce_add_epi32(_mm512_add_epi32(l0, l1));
      out.corr[t * out.steps * 16 + (b / 2) * 16 + (b % 2) * 8] = -128 * sum;
    }
  }
}

constexpr int kPrefetchBytes = 8192;

// NR weight rows (`stride` rows apart) against NC tokens; one accumulator per (row, token), updated in the
// same order whatever NR and NC are, so a token's result never depends on its neighbours. Block scales
// are loaded 16 at a time (8 steps) and spread to their 8 lanes by one permute per step.
template <int NR, int NC>
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni"))) void rows_q8w(const MatrixQ8& w, int64_t r0, int64_t stride,
                                                                             const Q8Act* act, float* out, int64_t ldo) {
  const int64_t K = w.cols, nb = K / 32, steps = (K + kStepWeights - 1) / kStepWeights;
  const __m512i lane_of[8] = {
      _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0), _mm512_set_epi32(3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2),
      _mm512_set_epi32(5, 5, 5, 5, 5, 5, 5, 5, 4, 4, 4, 4, 4, 4, 4, 4), _mm512_set_epi32(7, 7, 7, 7, 7, 7, 7, 7, 6, 6, 6, 6, 6, 6, 6, 6),
      _mm512_set_epi32(9, 9, 9, 9, 9, 9, 9, 9, 8, 8, 8, 8, 8, 8, 8, 8),
      _mm512_set_epi32(11, 11, 11, 11, 11, 11, 11, 11, 10, 10, 10, 10, 10, 10, 10, 10),
      _mm512_set_epi32(13, 13, 13, 13, 13, 13, 13, 13, 12, 12, 12, 12, 12, 12, 12, 12),
      _mm512_set_epi32(15, 15, 15, 15, 15, 15, 15, 15, 14, 14, 14, 14, 14, 14, 14, 14)};
  __m512 acc[NR][NC];
  for (int r = 0; r < NR; ++r)
    for (int c = 0; c < NC; ++c) acc[r][c] = _mm512_setzero_ps();
  __m512 s16[NR];
  for (int64_t g = 0; g < steps; ++g) {
    if ((g & 7) == 0) {
      const int64_t n16 = std::min<int64_t>(16, nb - 2 * g);
      for (int r = 0; r < NR; ++r)
        s16[r] = _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << n16) - 1), w.scales + (r0 + r * stride) * nb + 2 * g);
    }
    const int64_t left = K - g * kStepWeights;
    for (int r = 0; r < NR; ++r) {
      const uint8_t* p = w.codes + (r0 + r * stride) * K + g * kStepWeights;
      __m512i wv;
      if (left >= kStepWeights) {
        _mm_prefetch(reinterpret_cast<const char*>(p + kPrefetchBytes), _MM_HINT_T1);
        wv = _mm512_loadu_si512(p);
      } else {
        wv = _mm512_maskz_loadu_epi8((1ull << left) - 1, p);
      }
      const __m512 sc = _mm512_permutexvar_ps(lane_of[g & 7], s16[r]);
      for (int c = 0; c < NC; ++c) {
        const int64_t o = g * kStepWeights;
        const __m512i hi = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wv, _mm512_loadu_si512(act[c].hi + o));
        __m512i sum = _mm512_dpbusd_epi32(_mm512_loadu_si512(act[c].corr + g * 16), wv, _mm512_loadu_si512(act[c].lo + o));
        sum = _mm512_add_epi32(sum, _mm512_slli_epi32(hi, 7));
        acc[r][c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), sc, acc[r][c]);
      }
    }
  }
  for (int r = 0; r < NR; ++r)
    for (int c = 0; c < NC; ++c) out[c * ldo + r * stride] = _mm512_reduce_add_ps(acc[r][c]) * act[c].d;
}

using RowsFn = void (*)(const MatrixQ8&, int64_t, int64_t, const Q8Act*, float*, int64_t);

template <int... I>
constexpr std::array<RowsFn, sizeof...(I)> rows_table(std::integer_sequence<int, I...>) {
  return {rows_q8w<I / 4 + 1, I % 4 + 1>...};
}
// rows_fn[(nr − 1) · 4 + (nc − 1)]
constexpr auto rows_fn = rows_table(std::make_integer_sequence<int, 16>{});

// One row's dot product with exact activations (hosts without VNNI): per block, then scaled.
float row_dot_plain(const MatrixQ8& w, int64_t r, const float* x) {
  const int64_t nb = w.cols / 32;
  float acc = 0.0f;
  for (int64_t b = 0; b < nb; ++b) {
    float s = 0.0f;
    for (int k = 0; k < 32; ++k) s += static_cast<float>(static_cast<int>(w.codes[r * w.cols + b * 32 + k]) - 128) * x[b * 32 + k];
    acc += s * w.scales[r * nb + b];
  }
  return acc;
}

// Widens rows [r0, r0 + rows) to fp32 for the packed GEMM.
__attribute__((target("avx512f,avx512bw"))) void pack_q8_panel(const MatrixQ8& w, int64_t r0, int rows, float* panel) {
  const int64_t K = w.cols, nb = K / 32;
  const __m512i offset = _mm512_set1_epi32(128);
  for (int r = 0; r < rows; ++r)
    for (int64_t b = 0; b < nb; ++b) {
      const __m512 s = _mm512_set1_ps(w.scales[(r0 + r) * nb + b]);
      const uint8_t* p = w.codes + (r0 + r) * K + b * 32;
      for (int h = 0; h < 2; ++h) {
        const __m512i c = _mm512_sub_epi32(_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * h))), offset);
        _mm512_storeu_ps(panel + r * K + b * 32 + 16 * h, _mm512_mul_ps(_mm512_cvtepi32_ps(c), s));
      }
    }
}

bool has_vnni() {
  static const bool yes = [] { return simd_level() == Simd::Avx512 && detect_cpu_features().avx512_vnni; }();
  return yes;
}

// Work items: a panel of kPanelRows rows, or 4 stream rows a quarter of the matrix apart (four sequential
// streams per thread), then the rows past 4Q one at a time.
struct Item {
  int job;
  int nr;
  int64_t r0, stride;
};

std::vector<Item>& plan_items(const DenseQ8Matmul* jobs, int num_jobs, bool panels) {
  thread_local std::vector<Item> items;
  items.clear();
  for (int j = 0; j < num_jobs; ++j) {
    const int64_t rows = jobs[j].w.rows;
    if (panels && jobs[j].path == RowPath::Panel) {
      for (int64_t r0 = 0; r0 < rows; r0 += kPanelRows) items.push_back({j, static_cast<int>(std::min<int64_t>(kPanelRows, rows - r0)), r0, 1});
      continue;
    }
    const int64_t q = rows / 4;
    for (int64_t g = 0; g < q; ++g) items.push_back({j, 4, g, q});
    for (int64_t r = 4 * q; r < rows; ++r) items.push_back({j, 1, r, 1});
  }
  return items;
}

// Stream rows of one item, token tiles of up to 4.
void stream_item(const DenseQ8Matmul& m, const Item& it, const Q8Acts* acts, bool vnni) {
  const int64_t K = m.w.cols;
  for (int t0 = 0; t0 < m.T; t0 += 4) {
    const int nc = std::min(4, m.T - t0);
    float* o = m.out + static_cast<int64_t>(t0) * m.ldo + it.r0;
    if (vnni) {
      Q8Act tok[4];
      for (int c = 0; c < nc; ++c) tok[c] = acts->token(t0 + c);
      rows_fn[(it.nr - 1) * 4 + (nc - 1)](m.w, it.r0, it.stride, tok, o, m.ldo);
    } else {
      for (int c = 0; c < nc; ++c)
        for (int r = 0; r < it.nr; ++r) o[c * m.ldo + r * it.stride] = row_dot_plain(m.w, it.r0 + r * it.stride, m.x + (t0 + c) * K);
    }
    if (m.bias)
      for (int c = 0; c < nc; ++c)
        for (int r = 0; r < it.nr; ++r) o[c * m.ldo + r * it.stride] += m.bias[it.r0 + r * it.stride];
  }
}

}  // namespace

// launchers
void q8_q8w_matmul(const DenseQ8Matmul* jobs, int num_jobs) {
  for (int j = 0; j < num_jobs; ++j)
    check(jobs[j].w.cols % 32 == 0, gptoss_status_invalid_argument,
          "q8_q8w_matmul: q8 weights need a multiple of 32 columns, got " + std::to_string(jobs[j].w.cols));
  const bool avx512 = simd_level() == Simd::Avx512, vnni = has_vnni();
  const std::vector<Item>& items = plan_items(jobs, num_jobs, avx512);
  // Per job: its activations quantized (stream rows with VNNI) or transposed (panel rows), once.
  thread_local std::vector<Q8Acts> acts;
  thread_local std::vector<std::vector<float>> transposed;
  if (static_cast<int>(acts.size()) < num_jobs) acts.resize(num_jobs), transposed.resize(num_jobs);
  for (int j = 0; j < num_jobs; ++j) {
    const DenseQ8Matmul& m = jobs[j];
    const bool same_input = j > 0 && jobs[j - 1].x == m.x && jobs[j - 1].T == m.T && jobs[j - 1].w.cols == m.w.cols &&
                            jobs[j - 1].path == m.path;  // QKV share their input
    if (avx512 && m.path == RowPath::Panel) {
      if (same_input) transposed[j] = transposed[j - 1];
      else transposed[j].resize(transposed_size(m.T, m.w.cols)), transpose_activations(m.x, m.T, m.w.cols, transposed[j].data());
    } else if (vnni) {
      if (same_input) acts[j] = acts[j - 1];
      else quantize(m.x, m.T, m.w.cols, acts[j]);
    }
  }
  const int64_t count = static_cast<int64_t>(items.size());
  const Item* list = items.data();
  const Q8Acts* qa = acts.data();
  const auto* xTs = transposed.data();
#pragma omp parallel
  {
    thread_local std::vector<float> panel;
#pragma omp for schedule(static)
    for (int64_t i = 0; i < count; ++i) {
      const Item& it = list[i];
      const DenseQ8Matmul& m = jobs[it.job];
      if (avx512 && m.path == RowPath::Panel) {
        panel.resize(static_cast<size_t>(kPanelRows) * m.w.cols);
        pack_q8_panel(m.w, it.r0, it.nr, panel.data());
        gemm_panel_avx512(panel.data(), it.nr, m.w.cols, xTs[it.job].data(), m.T, m.out + it.r0, m.ldo, m.bias ? m.bias + it.r0 : nullptr);
        continue;
      }
      stream_item(m, it, qa + it.job, vnni);
    }
  }
}

}  // namespace gptoss::cpu
