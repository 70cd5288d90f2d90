// matmul_q8.cpp — dense products over q8 weights (the q8 dense-weight mode: QKV, attention out and the
// unembedding as 8-bit codes with one fp32 scale per 32 weights, converted from bf16 at load):
//   out[t][n] = Σ_b s[n][b] · Σ_{k ∈ b} (code[n][k] − 128) · x[t][k] + bias[n].
// Stream rows (decode, short chunks) take integer dot products with AVX512-VNNI, the activations written
// as the expert products write them (cpu/moe_mxfp4_q8_matmul.cpp): two int8 digits of one scale per token,
// x ≈ (q_hi + q_lo / 128) · d, error ≤ d / 256 per element. The codes lie in runs of 16 blocks (core/tensor.h),
// and the digits are laid out the same way, so each 64-byte load feeds four codes of each of 16 blocks to
// `vpdpbusd` and a run's 16 block sums build up in the lanes of two registers (high and low digits), in
// chains independent of each other: per token and 64 weights two integer dot products and the digit
// loads, with the scaling (shift, add, convert, one FMA by the run's 16 scales) once per run. vpdpbusd
// multiplies the unsigned codes by the signed digits; the +128 offset of the codes is taken out of each
// block's sum by −128 · (128 · Σq_hi + Σq_lo), computed with the activations; a block's integer sum
// 128 · s_hi + s_lo fits int32 (|s| < 2^27). Four rows go together, a quarter of the matrix apart, so that
// one load of a token's digits serves four rows and four sequential streams per thread keep the bus busy
// (the kernel lab measured 2, 4, 6 and 8 rows, and software prefetch, which did not help). Panel
// rows (long prefill chunks) widen 48-row panels to fp32 (codes × scales) for the packed fp32 GEMM, with
// the exact activations. Hosts without AVX512-VNNI take a plain fp32 loop over the dequantized weights for
// stream rows: more accurate, slower. Rows16 matrices (resident weights) go to cpu/matmul_q8_rows16.cpp.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "cpu_features.h"
#include "gemm_f32.h"
#include "ops.h"
#include "q8_digits.h"
#include "simd.h"

namespace gptoss::cpu {

// kernels
namespace {

// One token's activations for the integer kernel, in the weights' run order (zero past K, padded by one
// load): hi and lo digits, and per run 16 int32 lanes holding each block's offset correction (the start of
// its low digits' sum); d = the token's scale / 128, applied once to the finished dot product.
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
  int64_t stride = 0, runs = 0;
  Q8Act token(int t) const { return {hi.data() + t * stride, lo.data() + t * stride, corr.data() + t * runs * kQ8RunBlocks, d[t]}; }
};

// The digits of each element (cvtps rounds to nearest even; |x / d| ≤ 127 needs no clamp on hi, and the
// low digit lies in [−64, 64]), each block's eight 4-digit pieces put where its codes' pieces lie.
__attribute__((target("avx512f,avx512bw"))) void quantize(const float* x, int T, int64_t K, Q8Acts& out) {
  const int64_t nb = K / 32;
  out.stride = K + 64;
  out.runs = (nb + kQ8RunBlocks - 1) / kQ8RunBlocks;
  out.hi.assign(static_cast<size_t>(T * out.stride), 0);
  out.lo.assign(out.hi.size(), 0);
  out.corr.assign(static_cast<size_t>(T * out.runs * kQ8RunBlocks), 0);
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
      alignas(16) int8_t hb[32], lb[32];
      _mm_store_si128(reinterpret_cast<__m128i*>(hb), _mm512_cvtepi32_epi8(h0));
      _mm_store_si128(reinterpret_cast<__m128i*>(hb + 16), _mm512_cvtepi32_epi8(h1));
      _mm_store_si128(reinterpret_cast<__m128i*>(lb), _mm512_cvtepi32_epi8(l0));
      _mm_store_si128(reinterpret_cast<__m128i*>(lb + 16), _mm512_cvtepi32_epi8(l1));
      for (int piece = 0; piece < 8; ++piece) {
        const int64_t o = t * out.stride + q8_code_offset(K, b * 32 + piece * 4);
        std::memcpy(out.hi.data() + o, hb + piece * 4, 4);
        std::memcpy(out.lo.data() + o, lb + piece * 4, 4);
      }
      const int32_t sum = 128 * _mm512_reduce_add_epi32(_mm512_add_epi32(h0, h1)) + _mm512_reduce_add_epi32(_mm512_add_epi32(l0, l1));
      out.corr[t * out.runs * kQ8RunBlocks + b] = -128 * sum;
    }
  }
}

// One run of NR rows against one token: `width` blocks (16, or fewer in a row's last run) from `o`, the
// run's offset in each row (codes and digits alike). Each row's 16 block sums are two chains of 8
// dot products; a row's result never depends on the other rows of the tile.
template <int NR>
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni"), always_inline)) inline void run_q8w(const uint8_t* const* row, const float* const* scale,
                                                                                                 int64_t o, int64_t width, const Q8Act& a, __m512* acc) {
  const bool whole = width == kQ8RunBlocks;
  const __mmask64 bytes = whole ? ~0ull : (1ull << (4 * width)) - 1;
  const __mmask16 lanes = static_cast<__mmask16>((1u << width) - 1);
  __m512i hs[NR], ls[NR];
  for (int r = 0; r < NR; ++r) hs[r] = _mm512_setzero_si512(), ls[r] = _mm512_loadu_si512(a.corr + o / 32);
  for (int piece = 0; piece < 8; ++piece) {
    const int64_t p = o + piece * 4 * width;
    const __m512i hi = _mm512_loadu_si512(a.hi + p), lo = _mm512_loadu_si512(a.lo + p);
    for (int r = 0; r < NR; ++r) {
      const __m512i wv = whole ? _mm512_loadu_si512(row[r] + p) : _mm512_maskz_loadu_epi8(bytes, row[r] + p);
      hs[r] = _mm512_dpbusd_epi32(hs[r], wv, hi);
      ls[r] = _mm512_dpbusd_epi32(ls[r], wv, lo);
    }
  }
  for (int r = 0; r < NR; ++r) {
    const __m512 s = _mm512_maskz_loadu_ps(lanes, scale[r] + o / 32);
    acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(ls[r], _mm512_slli_epi32(hs[r], 7))), s, acc[r]);
  }
}

// NR weight rows (`stride` rows apart) against one token.
template <int NR>
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni"))) void rows_q8w(const MatrixQ8& w, int64_t r0, int64_t stride, const Q8Act& a,
                                                                             float* out) {
  const int64_t K = w.cols, nb = K / 32, whole = nb / kQ8RunBlocks, last = nb % kQ8RunBlocks;
  const uint8_t* row[NR];
  const float* scale[NR];
  __m512 acc[NR];
  for (int r = 0; r < NR; ++r) {
    row[r] = w.codes + (r0 + r * stride) * K;
    scale[r] = w.scales + (r0 + r * stride) * nb;
    acc[r] = _mm512_setzero_ps();
  }
  for (int64_t g = 0; g < whole; ++g) run_q8w<NR>(row, scale, g * kQ8RunBlocks * 32, kQ8RunBlocks, a, acc);
  if (last) run_q8w<NR>(row, scale, whole * kQ8RunBlocks * 32, last, a, acc);
  for (int r = 0; r < NR; ++r) out[r * stride] = _mm512_reduce_add_ps(acc[r]) * a.d;
}

// Rows per tile of the stream kernel.
constexpr int kTileRows = 4;

// One row's dot product with exact activations (hosts without VNNI): per block, then scaled.
float row_dot_plain(const MatrixQ8& w, int64_t r, const float* x) {
  const int64_t nb = w.cols / 32;
  float acc = 0.0f;
  for (int64_t b = 0; b < nb; ++b) {
    float s = 0.0f;
    for (int k = 0; k < 32; ++k)
      s += static_cast<float>(static_cast<int>(w.codes[r * w.cols + q8_code_offset(w.cols, b * 32 + k)]) - 128) * x[b * 32 + k];
    acc += s * w.scales[r * nb + b];
  }
  return acc;
}

// Widens rows [r0, r0 + rows) to fp32 for the packed GEMM: a block's eight 4-code pieces lie 4 · width
// bytes apart in its run, gathered back into block order.
__attribute__((target("avx512f,avx512bw,avx2"))) void pack_q8_panel(const MatrixQ8& w, int64_t r0, int rows, float* panel) {
  const int64_t K = w.cols, nb = K / 32;
  const __m512i offset = _mm512_set1_epi32(128);
  for (int r = 0; r < rows; ++r)
    for (int64_t b = 0; b < nb; ++b) {
      const int64_t first = q8_code_offset(K, b * 32), step = q8_code_offset(K, b * 32 + 4) - first;
      const __m256i at = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(static_cast<int>(step)));
      const __m256i codes = _mm256_i32gather_epi32(reinterpret_cast<const int*>(w.codes + (r0 + r) * K + first), at, 1);
      const __m512 s = _mm512_set1_ps(w.scales[(r0 + r) * nb + b]);
      for (int h = 0; h < 2; ++h) {
        const __m128i half = h ? _mm256_extracti128_si256(codes, 1) : _mm256_castsi256_si128(codes);
        const __m512i c = _mm512_sub_epi32(_mm512_cvtepu8_epi32(half), offset);
        _mm512_storeu_ps(panel + r * K + b * 32 + 16 * h, _mm512_mul_ps(_mm512_cvtepi32_ps(c), s));
      }
    }
}

bool has_vnni() {
  static const bool yes = [] { return simd_level() == Simd::Avx512 && detect_cpu_features().avx512_vnni; }();
  return yes;
}

// Work items: a panel of kPanelRows rows, or kTileRows stream rows a quarter of the matrix apart, then the
// rows past 4Q one at a time.
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
    const int64_t q = rows / kTileRows;
    for (int64_t g = 0; g < q; ++g) items.push_back({j, kTileRows, g, q});
    for (int64_t r = kTileRows * q; r < rows; ++r) items.push_back({j, 1, r, 1});
  }
  return items;
}

// Stream rows of one item, token by token.
void stream_item(const DenseQ8Matmul& m, const Item& it, const Q8Acts* acts, bool vnni) {
  const int64_t K = m.w.cols;
  for (int t = 0; t < m.T; ++t) {
    float* o = m.out + static_cast<int64_t>(t) * m.ldo + it.r0;
    if (vnni) (it.nr == kTileRows ? rows_q8w<kTileRows> : rows_q8w<1>)(m.w, it.r0, it.stride, acts->token(t), o);
    else
      for (int r = 0; r < it.nr; ++r) o[r * it.stride] = row_dot_plain(m.w, it.r0 + r * it.stride, m.x + t * K);
    if (m.bias)
      for (int r = 0; r < it.nr; ++r) o[r * it.stride] += m.bias[it.r0 + r * it.stride];
  }
}

}  // namespace

// launchers
void q8_rows16_matmul(const DenseQ8Matmul* jobs, int num_jobs);

void q8_runs_matmul(const DenseQ8Matmul* jobs, int num_jobs) {
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

// Runs and Rows16 matrices each to their kernel (cpu/matmul_q8_rows16.cpp for Rows16).
void q8_q8w_matmul(const DenseQ8Matmul* jobs, int num_jobs) {
  thread_local std::vector<DenseQ8Matmul> runs, rows16;
  runs.clear(), rows16.clear();
  for (int j = 0; j < num_jobs; ++j) {
    check(jobs[j].w.cols % 32 == 0, gptoss_status_invalid_argument,
          "q8_q8w_matmul: q8 weights need a multiple of 32 columns, got " + std::to_string(jobs[j].w.cols));
    (jobs[j].w.layout == Q8Layout::Rows16 ? rows16 : runs).push_back(jobs[j]);
  }
  if (!runs.empty()) q8_runs_matmul(runs.data(), static_cast<int>(runs.size()));
  if (!rows16.empty()) q8_rows16_matmul(rows16.data(), static_cast<int>(rows16.size()));
}

}  // namespace gptoss::cpu
