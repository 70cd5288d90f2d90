// panel_mma.cuh — the tensor-core tile shared by the prefill (RowPath::Panel) products, dense bf16
// (matmul.cu, unembed.cu) and MXFP4 experts (moe_experts.cu): a block of 4 warps computes 64 activation
// rows × 64 weight rows, K in steps of 32, each warp a 32 × 32 quarter with mma_m16n8k16_bf16.
//
// Exact precision keeps fp32 activations, but the tensor cores take bf16 operands. Each activation is
// therefore staged as three bf16 planes, x = hi + mid + lo (each plane the bf16 rounding of what the
// previous ones left), which carries all 24 bits of an fp32 significand; the weights are bf16 already
// (dense) or E2M1 codes, exact in bf16. Every product of the three mma per tile is exact and only the
// fp32 accumulation rounds; each 32-wide K step is summed on its own and then added to the running sum
// (panel_add), so the result has the accuracy of the GEMV (decode) path. Two planes would leave each
// activation about 16 bits, an error the exact tolerances would still pass but the GEMV does not make.
//
// Batch invariance: an output element is the dot of its own activation row with its weight row over K
// in a fixed order (32-wide steps, the three planes lo, mid, hi in each); rows sharing the tile never
// enter it, so a row's result does not depend on how many rows share the call.
#pragma once

#include "common.cuh"
#include "../common/mma.cuh"

// The accumulator loops must unroll completely so that PanelAcc stays in registers.
#if defined(__CUDACC__)
#define PANEL_UNROLL _Pragma("unroll")
#else
#define PANEL_UNROLL
#endif

namespace gptoss::cuda::GPTOSS_CUDA_NS {

constexpr int kPanelM = 64, kPanelN = 64, kPanelK = 32;
static_assert(kPanelM == kPanelN, "panel_stage serves activation and weight tiles alike");
constexpr int kPanelThreads = 128;  // 4 warps as 2 × 2 quarters of 32 × 32
// Words (bf16 pairs) per staged row: 16 for K = 32, plus 4 so that the 8 rows one fragment load
// touches fall on distinct banks.
constexpr int kPanelLd = kPanelK / 2 + 4;
constexpr int kPanelPlaneWords = kPanelM * kPanelLd;  // one activation plane; the weight tile is the same size

// bf16 bits of x, rounded to nearest even (finite x; inf and NaN keep their class).
__device__ __forceinline__ uint32_t f32_to_bf16_bits(float x) {
  const uint32_t u = __float_as_uint(x);
  return (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
}

// Elements k, k + 1 of row r of m (row stride ld), zero outside rows [0, rows) and columns [0, K).
template <typename T>
__device__ __forceinline__ void panel_load_pair(const T* __restrict__ m, int64_t ld, int rows, int64_t K, int r, int64_t k, T v[2]) {
  v[0] = v[1] = T(0);
  if (r >= rows) return;
  const T* mr = m + static_cast<int64_t>(r) * ld;
  if (k < K) v[0] = mr[k];
  if (k + 1 < K) v[1] = mr[k + 1];
}

// Stages rows [0, rows) × k [k0, k0 + 32) of m (row stride ld, K columns; zero outside): pack(word, v)
// writes the pair v at word `word` of a [64][kPanelLd] tile (of each plane it fills).
template <typename T, typename Pack>
__device__ __forceinline__ void panel_stage(const T* __restrict__ m, int64_t ld, int rows, int64_t K, int64_t k0, Pack pack) {
  for (int i = threadIdx.x; i < kPanelM * kPanelK / 2; i += kPanelThreads) {
    const int r = i / (kPanelK / 2), c = i % (kPanelK / 2);
    T v[2];
    panel_load_pair(m, ld, rows, K, r, k0 + 2 * c, v);
    pack(r * kPanelLd + c, v);
  }
}

// Activations as the three planes xs[0..2] (hi, mid, lo).
__device__ __forceinline__ void panel_stage_x(const float* __restrict__ x, int64_t ldx, int rows, int64_t K, int64_t k0,
                                              uint32_t* xs) {
  panel_stage(x, ldx, rows, K, k0, [xs](int word, const float v[2]) {
    uint32_t plane[3][2];
    PANEL_UNROLL
    for (int e = 0; e < 2; ++e) {
      const uint32_t hi = f32_to_bf16_bits(v[e]);
      const float rest = v[e] - __uint_as_float(hi << 16);  // exact
      const uint32_t mid = f32_to_bf16_bits(rest);
      const uint32_t lo = f32_to_bf16_bits(rest - __uint_as_float(mid << 16));
      plane[0][e] = hi, plane[1][e] = mid, plane[2][e] = lo;
    }
    PANEL_UNROLL
    for (int p = 0; p < 3; ++p) xs[p * kPanelPlaneWords + word] = plane[p][0] | (plane[p][1] << 16);
  });
}

// bf16 weights (raw bits) as they are.
__device__ __forceinline__ void panel_stage_w_bf16(const uint16_t* __restrict__ w, int64_t ldw, int rows, int64_t K, int64_t k0,
                                                   uint32_t* ws) {
  panel_stage(w, ldw, rows, K, k0, [ws](int word, const uint16_t v[2]) { ws[word] = v[0] | (static_cast<uint32_t>(v[1]) << 16); });
}

// One warp's 32 × 32 quarter: 2 row tiles × 4 column tiles of m16n8 accumulators.
struct PanelAcc {
  float c[2][4][4];
};

__device__ __forceinline__ void panel_zero(PanelAcc& a) {
  PANEL_UNROLL
  for (int i = 0; i < 2; ++i)
    PANEL_UNROLL
    for (int j = 0; j < 4; ++j)
      PANEL_UNROLL
      for (int e = 0; e < 4; ++e) a.c[i][j][e] = 0.0f;
}

// acc += part: each 32-wide step is summed on its own first, so the running sum over K takes one
// rounding per step instead of one per mma.
__device__ __forceinline__ void panel_add(PanelAcc& acc, const PanelAcc& part) {
  PANEL_UNROLL
  for (int i = 0; i < 2; ++i)
    PANEL_UNROLL
    for (int j = 0; j < 4; ++j)
      PANEL_UNROLL
      for (int e = 0; e < 4; ++e) acc.c[i][j][e] += part.c[i][j][e];
}

// acc += the staged 32-wide K step: xs (three planes) against ws, both [64][kPanelLd] words, k pairs
// along a row (A is row-major M × K; B = wᵀ is K × N with k pairs along w's rows: "col" layout).
__device__ __forceinline__ void panel_mma(const uint32_t* xs, const uint32_t* ws, PanelAcc& acc) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int g = lane / 4, t = lane % 4;
  const int m0 = (warp / 2) * 32, n0 = (warp % 2) * 32;
  PANEL_UNROLL
  for (int ks = 0; ks < kPanelK / 16; ++ks) {
    const int kw = ks * 8 + t;  // word of k pair 2t in this 16-wide step
    uint32_t b[4][2];
    PANEL_UNROLL
    for (int j = 0; j < 4; ++j) {
      const uint32_t* wr = ws + (n0 + j * 8 + g) * kPanelLd + kw;
      b[j][0] = wr[0];
      b[j][1] = wr[4];
    }
    PANEL_UNROLL
    for (int p = 2; p >= 0; --p)  // lo, mid, hi: the smaller terms first
      PANEL_UNROLL
      for (int i = 0; i < 2; ++i) {
        const uint32_t* xr = xs + p * kPanelPlaneWords + (m0 + i * 16 + g) * kPanelLd + kw;
        const uint32_t a[4] = {xr[0], xr[8 * kPanelLd], xr[4], xr[8 * kPanelLd + 4]};
        PANEL_UNROLL
        for (int j = 0; j < 4; ++j) mma_m16n8k16_bf16(acc.c[i][j], a, b[j], acc.c[i][j]);
      }
  }
}

// Where accumulator (i, j, e) of this thread sits in the block's 64 × 64 tile.
__device__ __forceinline__ int panel_row(int i, int e) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  return (warp / 2) * 32 + i * 16 + lane / 4 + (e >> 1) * 8;
}
__device__ __forceinline__ int panel_col(int j, int e) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  return (warp % 2) * 32 + j * 8 + 2 * (lane % 4) + (e & 1);
}

}  // namespace gptoss::cuda::GPTOSS_CUDA_NS
