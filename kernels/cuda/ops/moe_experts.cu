// moe_experts.cu — MoeMatmul on the device: every local expert's product over its routed rows in one
// launch, reading moe_route's groups and totals in device memory (no host round-trip). Grid: output-row
// tiles × max_groups; a block whose group index is past totals[0] leaves at once. One warp per output
// row, tokens of the group looping inside it (mxfp4.cuh's row dot, the order of moe_mxfp4_matmul.cu). With
// swiglu a warp computes the gate and up rows (2i, 2i + 1) of output i and writes the clamped SwiGLU
// (swiglu_oai.cu's arithmetic): the [2I] products never reach memory. The two paths of a group compute
// alike here; serving precision takes the exact path, as the contract allows.
#include "../../cpu/ops.h"
#include "mxfp4.cuh"

namespace gptoss::cuda::GPTOSS_CUDA_NS {

// kernels
constexpr int kMoeWarps = 4;

template <bool kSwiglu>
__global__ void moe_gemv_kernel(MoeMatmul p) {
  const int g = blockIdx.y;
  if (g >= p.totals[0]) return;  // the whole block: fewer groups than the bound
  const ExpertRows grp = p.groups[g];
  const ExpertProj e = p.experts[grp.slot];
  const int lane = threadIdx.x % 32;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * kMoeWarps + threadIdx.x / 32;
  const int64_t width = kSwiglu ? p.rows / 2 : p.rows;
  if (i >= width) return;  // whole warps leave together
  for (int t = 0; t < grp.n; ++t) {
    const int64_t row = grp.begin + t;
    const float* x = p.x + row * p.cols;
    if constexpr (kSwiglu) {
      const float gate_in = mxfp4_row_dot(e.w.blocks, e.w.scales, 2 * i, p.cols, x, lane) + (e.bias ? e.bias[2 * i] : 0.0f);
      const float up_in = mxfp4_row_dot(e.w.blocks, e.w.scales, 2 * i + 1, p.cols, x, lane) + (e.bias ? e.bias[2 * i + 1] : 0.0f);
      const float gate = fminf(gate_in, p.limit);
      const float up = fmaxf(fminf(up_in, p.limit), -p.limit);
      if (lane == 0) p.out[row * width + i] = gate / (1.0f + expf(-p.alpha * gate)) * (up + 1.0f);
    } else {
      const float acc = mxfp4_row_dot(e.w.blocks, e.w.scales, i, p.cols, x, lane);
      if (lane == 0) p.out[row * width + i] = acc + (e.bias ? e.bias[i] : 0.0f);
    }
  }
}

// launchers
void f32_mxfp4w_moe(const MoeMatmul& p) {
  check(p.cols % 32 == 0 && (!p.swiglu || p.rows % 2 == 0), gptoss_status_invalid_argument,
        "mxfp4 moe (cuda): cols must be a multiple of 32 (and rows even for swiglu)");
  if (p.max_groups <= 0 || p.rows <= 0) return;
  const int64_t width = p.swiglu ? p.rows / 2 : p.rows;
  const dim3 grid(static_cast<unsigned>((width + kMoeWarps - 1) / kMoeWarps), static_cast<unsigned>(p.max_groups));
  if (p.swiglu) EMU_LAUNCH(moe_gemv_kernel<true>, grid, dim3(32 * kMoeWarps), 0, emu_stream_t{}, p);
  else EMU_LAUNCH(moe_gemv_kernel<false>, grid, dim3(32 * kMoeWarps), 0, emu_stream_t{}, p);
  dev_check_launch("moe_gemv_kernel");
}

}  // namespace gptoss::cuda::GPTOSS_CUDA_NS
