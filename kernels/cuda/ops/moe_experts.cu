// moe_experts.cu — MoeMatmul on the device: every local expert's product over its routed rows, reading
// moe_route's groups and totals in device memory (no host round-trip), one launch per path:
//   Stream rows (a group's first `streamed`): grid of output-row tiles × max_groups; a block whose group
//     index is past totals[0] leaves at once. One warp per output row, the group's streamed tokens looping
//     inside it (mxfp4.cuh's row dot, the order of moe_mxfp4_matmul.cu).
//   Panel rows (the rest of each group): the tensor-core tile of panel_mma.cuh, 64 routed rows × 64
//     weight rows per block. The E2M1 codes are staged as bf16 (exact) and each 32-wide K step, one
//     MXFP4 block, is summed unscaled and then multiplied by its row's 2^(scale − 127) in fp32 as the
//     GEMV does, so no scale (even 0 or 255) has to fit bf16. The activations go in as three bf16 planes
//     (exact precision stays fp32-class). Grid: output tiles × (max_panel_rows / 64 + max_groups) row-tile
//     slots, a bound the host knows; each block finds its group and row tile by walking the groups and
//     leaves when its slot is past the last one.
// With swiglu the gate and up rows (2i, 2i + 1) of output i meet in one thread (adjacent accumulator
// columns on the panel path, one warp on the stream path) and it writes the clamped SwiGLU (swiglu_oai.cu's
// arithmetic): the [2I] products never reach memory. Serving precision (q8_mxfp4w_moe) runs the stream
// rows through mxfp4_row_dot_q8 (int8 activations, integer block sums, the CPU's scheme); its panel rows
// keep the exact tensor-core path, as the contract allows.
#include "../../cpu/ops.h"
#include "mxfp4.cuh"
#include "panel_mma.cuh"

namespace gptoss::cuda::GPTOSS_CUDA_NS {

// kernels
constexpr int kMoeWarps = 4;

// z = clamp(gate)·σ(α·gate)·(clamp(up) + 1), swiglu_oai.cu's arithmetic.
__device__ __forceinline__ float swiglu_one(float gate_in, float up_in, float limit, float alpha) {
  const float gate = fminf(gate_in, limit);
  const float up = fmaxf(fminf(up_in, limit), -limit);
  return gate / (1.0f + expf(-alpha * gate)) * (up + 1.0f);
}

// Row i of expert e against one token, in exact or serving precision.
template <bool kQ8>
__device__ __forceinline__ float moe_row_dot(const ExpertProj& e, int64_t i, int64_t cols, const float* x, int lane) {
  return kQ8 ? mxfp4_row_dot_q8(e.w.blocks, e.w.scales, i, cols, x, lane)
             : mxfp4_row_dot(e.w.blocks, e.w.scales, i, cols, x, lane);
}

template <bool kSwiglu, bool kQ8>
__global__ void moe_gemv_kernel(MoeMatmul p) {
  const int g = blockIdx.y;
  if (g >= p.totals[0]) return;  // the whole block: fewer groups than the bound
  const ExpertRows grp = p.groups[g];
  const ExpertProj e = p.experts[grp.slot];
  const int lane = threadIdx.x % 32;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * kMoeWarps + threadIdx.x / 32;
  const int64_t width = kSwiglu ? p.rows / 2 : p.rows;
  if (i >= width) return;  // whole warps leave together
  const int stream_rows = p.max_panel_rows > 0 ? grp.streamed : grp.n;  // without a bound every row takes this path
  for (int t = 0; t < stream_rows; ++t) {
    const int64_t row = grp.begin + t;
    const float* x = p.x + row * p.cols;
    if constexpr (kSwiglu) {
      const float gate_in = moe_row_dot<kQ8>(e, 2 * i, p.cols, x, lane) + (e.bias ? e.bias[2 * i] : 0.0f);
      const float up_in = moe_row_dot<kQ8>(e, 2 * i + 1, p.cols, x, lane) + (e.bias ? e.bias[2 * i + 1] : 0.0f);
      if (lane == 0) p.out[row * width + i] = swiglu_one(gate_in, up_in, p.limit, p.alpha);
    } else {
      const float acc = moe_row_dot<kQ8>(e, i, p.cols, x, lane);
      if (lane == 0) p.out[row * width + i] = acc + (e.bias ? e.bias[i] : 0.0f);
    }
  }
}

// Stages weight rows [0, rows) of one 32-wide MXFP4 block kb: the E2M1 codes as bf16 pairs (element 2c
// in the low nibble of byte c, as the packing puts it) and each row's scale as an fp32 factor; zero outside.
__device__ __forceinline__ void panel_stage_w_mxfp4(const uint8_t* __restrict__ blocks, const uint8_t* __restrict__ scales,
                                                    int64_t nb, int rows, int64_t kb, uint32_t* ws, float* scale) {
  for (int i = threadIdx.x; i < kPanelN * kPanelK / 2; i += kPanelThreads) {
    const int n = i / (kPanelK / 2), c = i % (kPanelK / 2);
    const uint32_t byte = n < rows ? blocks[(n * nb + kb) * 16 + c] : 0u;
    ws[n * kPanelLd + c] = f32_to_bf16_bits(e2m1(byte & 0xfu)) | (f32_to_bf16_bits(e2m1(byte >> 4)) << 16);
  }
  for (int n = threadIdx.x; n < kPanelN; n += kPanelThreads) scale[n] = n < rows ? e8m0(scales[n * nb + kb]) : 0.0f;
}

// The group and row tile of row-tile slot `slot`, walking the groups' panel rows in 64-row tiles;
// false when the slot is past the last tile.
__device__ __forceinline__ bool panel_slot(const MoeMatmul& p, int slot, ExpertRows& grp, int& tile) {
  const int groups = p.totals[0];
  for (int g = 0; g < groups; ++g) {
    const ExpertRows r = p.groups[g];
    const int tiles = (r.n - r.streamed + kPanelM - 1) / kPanelM;
    if (slot < tiles) {
      grp = r;
      tile = slot;
      return true;
    }
    slot -= tiles;
  }
  return false;
}

// Writes one thread's share of a 64 × 64 tile: bias added, SwiGLU folded over column pairs with kSwiglu.
template <bool kSwiglu>
__device__ __forceinline__ void panel_store_moe(const PanelAcc& acc, const MoeMatmul& p, const float* bias, int64_t row0,
                                                int rows, int64_t n0, int cols) {
  const int64_t width = kSwiglu ? p.rows / 2 : p.rows;
  PANEL_UNROLL
  for (int i = 0; i < 2; ++i)
    PANEL_UNROLL
    for (int j = 0; j < 4; ++j)
      PANEL_UNROLL
      for (int e = 0; e < 4; e += kSwiglu ? 2 : 1) {
        const int r = panel_row(i, e), c = panel_col(j, e);
        if (r >= rows || c >= cols) continue;
        const float v = acc.c[i][j][e] + (bias ? bias[n0 + c] : 0.0f);
        if constexpr (kSwiglu) {  // c is even: the gate; the up row c + 1 sits in the next accumulator
          const float up = acc.c[i][j][e + 1] + (bias ? bias[n0 + c + 1] : 0.0f);
          p.out[(row0 + r) * width + (n0 + c) / 2] = swiglu_one(v, up, p.limit, p.alpha);
        } else {
          p.out[(row0 + r) * width + n0 + c] = v;
        }
      }
}

template <bool kSwiglu>
__global__ void __launch_bounds__(kPanelThreads) moe_mxfp4_prefill_kernel(MoeMatmul p) {
  EMU_SHARED(uint32_t, xs, 3 * kPanelPlaneWords);
  EMU_SHARED(uint32_t, ws, kPanelPlaneWords);
  EMU_SHARED(float, scale, kPanelN);
  ExpertRows grp;
  int tile;
  if (!panel_slot(p, blockIdx.y, grp, tile)) return;  // the whole block: fewer row tiles than the bound
  const ExpertProj e = p.experts[grp.slot];
  const int64_t row0 = grp.begin + grp.streamed + static_cast<int64_t>(tile) * kPanelM;
  const int rows = grp.n - grp.streamed - tile * kPanelM < kPanelM ? grp.n - grp.streamed - tile * kPanelM : kPanelM;
  const int64_t n0 = static_cast<int64_t>(blockIdx.x) * kPanelN, nb = p.cols / 32;
  const int cols = static_cast<int>(p.rows - n0 < kPanelN ? p.rows - n0 : kPanelN);
  PanelAcc acc, part;
  panel_zero(acc);
  for (int64_t kb = 0; kb < nb; ++kb) {
    panel_stage_x(p.x + row0 * p.cols, p.cols, rows, p.cols, kb * kPanelK, xs);
    panel_stage_w_mxfp4(e.w.blocks + n0 * nb * 16, e.w.scales + n0 * nb, nb, cols, kb, ws, scale);
    __syncthreads();
    panel_zero(part);
    panel_mma(xs, ws, part);
    PANEL_UNROLL
    for (int i = 0; i < 2; ++i)
      PANEL_UNROLL
      for (int j = 0; j < 4; ++j)
        PANEL_UNROLL
        for (int q = 0; q < 4; ++q) acc.c[i][j][q] += part.c[i][j][q] * scale[panel_col(j, q)];
    __syncthreads();  // the next block overwrites the tiles
  }
  panel_store_moe<kSwiglu>(acc, p, e.bias, row0, rows, n0, cols);
}

// launchers
void launch_moe_prefill(const MoeMatmul& p) {
  if (p.max_panel_rows <= 0) return;
  const int64_t slots = (static_cast<int64_t>(p.max_panel_rows) + kPanelM - 1) / kPanelM + p.max_groups;
  check(slots <= 65535, gptoss_status_invalid_argument, "mxfp4 moe (cuda): too many panel rows for one launch");
  const dim3 grid(static_cast<unsigned>((p.rows + kPanelN - 1) / kPanelN), static_cast<unsigned>(slots));
  if (p.swiglu) EMU_LAUNCH(moe_mxfp4_prefill_kernel<true>, grid, dim3(kPanelThreads), 0, emu_stream_t{}, p);
  else EMU_LAUNCH(moe_mxfp4_prefill_kernel<false>, grid, dim3(kPanelThreads), 0, emu_stream_t{}, p);
  dev_check_launch("moe_mxfp4_prefill_kernel");
}

template <bool kQ8>
void launch_moe(const MoeMatmul& p) {
  check(p.cols % 32 == 0 && (!p.swiglu || p.rows % 2 == 0), gptoss_status_invalid_argument,
        "mxfp4 moe (cuda): cols must be a multiple of 32 (and rows even for swiglu)");
  if (p.max_groups <= 0 || p.rows <= 0) return;
  const int64_t width = p.swiglu ? p.rows / 2 : p.rows;
  const dim3 grid(static_cast<unsigned>((width + kMoeWarps - 1) / kMoeWarps), static_cast<unsigned>(p.max_groups));
  void (*const kernel)(MoeMatmul) = p.swiglu ? moe_gemv_kernel<true, kQ8> : moe_gemv_kernel<false, kQ8>;
  EMU_LAUNCH(kernel, grid, dim3(32 * kMoeWarps), 0, emu_stream_t{}, p);
  dev_check_launch("moe_gemv_kernel");
  launch_moe_prefill(p);
}

void f32_mxfp4w_moe(const MoeMatmul& p) { launch_moe<false>(p); }
void q8_mxfp4w_moe(const MoeMatmul& p) { launch_moe<true>(p); }

}  // namespace gptoss::cuda::GPTOSS_CUDA_NS
