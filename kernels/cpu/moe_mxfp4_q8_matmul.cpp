// moe_mxfp4_q8_matmul.cpp — the serving-precision expert product (the engine's "default" precision):
// integer dot products with AVX512-VNNI (vpdpbusd, 64 byte products per instruction), as the fastest CPU
// engines do, with activations written as two int8 digits per element so that accuracy stays close to fp32:
//   x ≈ (q_hi + q_lo / 128) · d,   d = max|x_block| / 127 per 32-element block,
// q_hi = round(x / d) ∈ [−127, 127] and q_lo = round((x / d − q_hi) · 128) ∈ [−64, 64]: the rounding error
// is at most d / 256 per element (one int8 digit alone, d / 2, moved the golden logits by 4–8 % through
// routing flips, over the 3e-2 serving tolerance). MXFP4 codes become small integers by one byte shuffle;
// each block's two integer sums are combined as s_hi · 128 + s_lo and scaled once, in fp32, by
// 2^(scale − 127) · d / 128. test/test_ops.cpp checks the error bound Σ|w| · d / 256 per block against a
// double-precision reference.
//
// Why integers: decoding E2M1 to fp32 costs ~7 vector µops per 32 codes (cpu/moe_mxfp4_matmul.cpp), which
// keeps a core below its share of DRAM bandwidth at decode; here 128 codes cost ~9 shared µops plus ~9 per
// token.
//
// vpdpbusd multiplies unsigned by signed bytes, so the codes map to w' = 2·value + 12 ∈ [0, 24] and each
// block's sum is corrected by −12 · (128 · Σq_hi + Σq_lo) (precomputed with the activations), the ½ folded
// into the scale. Panel products (rows of long prefill chunks) run the fp32 packed GEMM of
// cpu/moe_mxfp4_matmul.cpp on the same rounded activations (integer dot products gain nothing there: two
// digits cost as many instructions per weight as fp32 FMAs). Hosts without AVX512-VNNI take the exact fp32
// path for every product: more accurate, never less.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "cpu_features.h"
#include "ops.h"
#include "simd.h"

namespace gptoss::cpu {

void f32_mxfp4w_matmul(const ExpertMatmul* jobs, int num_jobs);

// kernels
namespace {

// One 512-bit step covers 4 blocks (64 packed bytes, 128 codes): 128-bit lane i holds block i.
constexpr int kBlocksPerStep = 4;

// One token's activations, quantized and laid out per step: q[step][4][64] (high digits of the 16 even
// elements of each block, lane by lane, then of the odd ones, matching low/high nibbles; then the low
// digits the same way), d[step][16] (each block's d · ½ / 128, repeated over its lane's four int32 slots)
// and corr[step][16] (the block's correction in the lane's first slot, 0 elsewhere: the low sums' start).
struct Q8Token {
  const int8_t* q;
  const float* d;
  const int32_t* corr;
};

struct Q8Buffer {
  std::vector<int8_t> q;
  std::vector<float> d;
  std::vector<int32_t> corr;
  int64_t steps = 0;
  Q8Token token(int t) const {
    return {q.data() + t * steps * 256, d.data() + t * steps * 16, corr.data() + t * steps * 16};
  }
};

// The two digits of one element, given v = x / d.
struct Digits {
  int hi, lo;
};
inline Digits digits(float v) {
  const int hi = std::clamp(static_cast<int>(std::nearbyint(v)), -127, 127);
  return {hi, std::clamp(static_cast<int>(std::nearbyint((v - static_cast<float>(hi)) * 128.0f)), -127, 127)};
}

void quantize_q8(const float* x, int n, int64_t K, Q8Buffer& out) {
  const int64_t nb = K / 32;
  out.steps = (nb + kBlocksPerStep - 1) / kBlocksPerStep;
  out.q.assign(static_cast<size_t>(n * out.steps * 256), 0);
  out.d.assign(static_cast<size_t>(n * out.steps * 16), 0.0f);
  out.corr.assign(static_cast<size_t>(n * out.steps * 16), 0);
  for (int t = 0; t < n; ++t)
    for (int64_t b = 0; b < nb; ++b) {
      const float* xb = x + t * K + b * 32;
      float amax = 0.0f;
      for (int k = 0; k < 32; ++k) amax = std::max(amax, std::fabs(xb[k]));
      const float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
      const int64_t step = t * out.steps + b / kBlocksPerStep, lane = b % kBlocksPerStep;
      int8_t* q = out.q.data() + step * 256 + lane * 16;
      int32_t sum = 0;
      for (int j = 0; j < 16; ++j) {
        const Digits even = digits(xb[2 * j] * inv), odd = digits(xb[2 * j + 1] * inv);
        q[j] = static_cast<int8_t>(even.hi), q[64 + j] = static_cast<int8_t>(odd.hi);
        q[128 + j] = static_cast<int8_t>(even.lo), q[192 + j] = static_cast<int8_t>(odd.lo);
        sum += 128 * (even.hi + odd.hi) + even.lo + odd.lo;
      }
      for (int s = 0; s < 4; ++s) out.d[step * 16 + lane * 4 + s] = amax / 127.0f * 0.5f / 128.0f;
      out.corr[step * 16 + lane * 4] = -12 * sum;
    }
}

// One weight row against NC tokens. The block scale's exponent byte becomes an fp32 exponent field
// (2^(e − 127) for e ≥ 1; e = 0, i.e. 2^−127, is below fp32's normal range and counts as 0).
template <int NC>
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni"))) void row_q8_vnni(const uint8_t* blocks, const uint8_t* scales,
                                                                                int64_t nb, const Q8Token* act, float* out,
                                                                                int64_t ldo) {
  const __m512i lut = _mm512_broadcast_i32x4(_mm_setr_epi8(12, 13, 14, 15, 16, 18, 20, 24, 12, 11, 10, 9, 8, 6, 4, 0));
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  // Lane i, every int32 slot: byte i of the broadcast scales in its low byte, zeros above.
  const __m512i scale_pick = _mm512_set_epi32(-2139062269, -2139062269, -2139062269, -2139062269, -2139062270, -2139062270,
                                              -2139062270, -2139062270, -2139062271, -2139062271, -2139062271, -2139062271,
                                              -2139062272, -2139062272, -2139062272, -2139062272);
  __m512 acc[2][NC];
  for (int c = 0; c < NC; ++c) acc[0][c] = acc[1][c] = _mm512_setzero_ps();
  const int64_t steps = (nb + kBlocksPerStep - 1) / kBlocksPerStep;
  for (int64_t g = 0; g < steps; ++g) {
    const int64_t left = std::min<int64_t>(kBlocksPerStep, nb - g * kBlocksPerStep);
    __m512i w;
    uint32_t s4 = 0;
    if (left == kBlocksPerStep) {
      _mm_prefetch(reinterpret_cast<const char*>(blocks + g * 64 + 4096), _MM_HINT_T0);
      w = _mm512_loadu_si512(blocks + g * 64);
      std::memcpy(&s4, scales + g * 4, 4);
    } else {
      w = _mm512_maskz_loadu_epi8((1ull << (16 * left)) - 1, blocks + g * 64);
      std::memcpy(&s4, scales + g * 4, static_cast<size_t>(left));
    }
    const __m512i wl = _mm512_shuffle_epi8(lut, _mm512_and_si512(w, low4));
    const __m512i wh = _mm512_shuffle_epi8(lut, _mm512_and_si512(_mm512_srli_epi16(w, 4), low4));
    const __m512 sw =
        _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_shuffle_epi8(_mm512_set1_epi32(static_cast<int>(s4)), scale_pick), 23));
    for (int c = 0; c < NC; ++c) {
      const int8_t* q = act[c].q + g * 256;
      __m512i hi = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wl, _mm512_loadu_si512(q));
      hi = _mm512_dpbusd_epi32(hi, wh, _mm512_loadu_si512(q + 64));
      __m512i s = _mm512_dpbusd_epi32(_mm512_loadu_si512(act[c].corr + g * 16), wl, _mm512_loadu_si512(q + 128));
      s = _mm512_dpbusd_epi32(s, wh, _mm512_loadu_si512(q + 192));
      s = _mm512_add_epi32(s, _mm512_slli_epi32(hi, 7));
      const __m512 scale = _mm512_mul_ps(sw, _mm512_loadu_ps(act[c].d + g * 16));
      acc[g & 1][c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), scale, acc[g & 1][c]);
    }
  }
  for (int c = 0; c < NC; ++c) out[c * ldo] = _mm512_reduce_add_ps(_mm512_add_ps(acc[0][c], acc[1][c]));
}

// x̂ = (q_hi + q_lo / 128) · d: the values the integer kernel multiplies (for the wide products' fp32 GEMM).
void round_to_q8(const float* x, int n, int64_t K, float* out) {
  for (int64_t i = 0; i < n * K; i += 32) {
    float amax = 0.0f;
    for (int k = 0; k < 32; ++k) amax = std::max(amax, std::fabs(x[i + k]));
    const float inv = amax > 0.0f ? 127.0f / amax : 0.0f, d = amax / 127.0f / 128.0f;
    for (int k = 0; k < 32; ++k) {
      const Digits q = digits(x[i + k] * inv);
      out[i + k] = static_cast<float>(128 * q.hi + q.lo) * d;
    }
  }
}

bool has_vnni() {
  static const bool yes = [] {
    const CpuFeatures f = detect_cpu_features();
    return simd_level() == Simd::Avx512 && f.avx512_vnni;
  }();
  return yes;
}

}  // namespace

// launchers
void q8_mxfp4w_matmul(const ExpertMatmul* jobs, int num_jobs) {
  thread_local std::vector<ExpertMatmul> exact;
  thread_local std::vector<int> quantized;
  thread_local std::vector<Q8Buffer> acts;
  thread_local std::vector<std::pair<int, int64_t>> items;
  thread_local std::vector<std::vector<float>> rounded;
  exact.clear(), quantized.clear(), items.clear();
  if (rounded.size() < static_cast<size_t>(num_jobs)) rounded.resize(num_jobs);
  for (int j = 0; j < num_jobs; ++j) {
    const ExpertMatmul& m = jobs[j];
    if (!has_vnni() || m.w.cols % 32 != 0) {
      exact.push_back(m);
    } else if (m.path == RowPath::Stream) {
      quantized.push_back(j);
    } else {
      rounded[j].resize(static_cast<size_t>(m.n) * m.w.cols);
      round_to_q8(m.x, m.n, m.w.cols, rounded[j].data());
      exact.push_back(m);
      exact.back().x = rounded[j].data();
    }
  }
  if (!exact.empty()) f32_mxfp4w_matmul(exact.data(), static_cast<int>(exact.size()));
  if (quantized.empty()) return;
  if (acts.size() < quantized.size()) acts.resize(quantized.size());
  constexpr int RR = 4, CC = 4;
  for (size_t i = 0; i < quantized.size(); ++i) {
    const ExpertMatmul& m = jobs[quantized[i]];
    quantize_q8(m.x, m.n, m.w.cols, acts[i]);
    for (int64_t r0 = 0; r0 < m.w.rows; r0 += RR) items.emplace_back(static_cast<int>(i), r0);
  }
  const int64_t count = static_cast<int64_t>(items.size());
  const auto* list = items.data();
  const auto* qa = acts.data();
  const int* which = quantized.data();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < count; ++i) {
    const auto [a, r0] = list[i];
    const ExpertMatmul& m = jobs[which[a]];
    const int64_t rows = m.w.rows, nb = m.w.cols / 32;
    const int nr = static_cast<int>(std::min<int64_t>(RR, rows - r0));
    for (int t0 = 0; t0 < m.n; t0 += CC) {
      const int nc = std::min(CC, m.n - t0);
      Q8Token tok[CC];
      for (int c = 0; c < nc; ++c) tok[c] = qa[a].token(t0 + c);
      float* o = m.out + static_cast<int64_t>(t0) * rows + r0;
      for (int r = 0; r < nr; ++r) {
        const uint8_t* b = m.w.blocks + (r0 + r) * nb * 16;
        const uint8_t* s = m.w.scales + (r0 + r) * nb;
        switch (nc) {
          case 1: row_q8_vnni<1>(b, s, nb, tok, o + r, rows); break;
          case 2: row_q8_vnni<2>(b, s, nb, tok, o + r, rows); break;
          case 3: row_q8_vnni<3>(b, s, nb, tok, o + r, rows); break;
          default: row_q8_vnni<4>(b, s, nb, tok, o + r, rows); break;
        }
      }
      if (m.bias)
        for (int c = 0; c < nc; ++c)
          for (int r = 0; r < nr; ++r) o[c * rows + r] += m.bias[r0 + r];
    }
  }
}

}  // namespace gptoss::cpu
