// moe_mxfp4_matmul.cu — expert products straight from packed MXFP4 (16-byte blocks of 32 E2M1 codes,
// element 2j in the low nibble of byte j, times 2^(scale − 127)); decode GEMV for every row.
// One warp per weight row (mxfp4.cuh's mxfp4_row_dot). Tokens loop inside the warp, so a row's result has
// the same reduction shape whatever n is (batch invariance). The jobs array is read on the host for shapes only.
// q8_mxfp4w_matmul runs the same kernel on mxfp4_row_dot_q8 (int8 activations, integer block sums).
#include "../../cpu/ops.h"
#include "mxfp4.cuh"

namespace gptoss::cuda::GPTOSS_CUDA_NS {

// kernels
constexpr int kMxWarps = 4;

template <bool kQ8>
__global__ void gemv_mxfp4_kernel(const float* __restrict__ x, int n_tok, const uint8_t* __restrict__ blocks,
                                  const uint8_t* __restrict__ scales, int64_t rows, int64_t cols, const float* __restrict__ bias,
                                  float* __restrict__ out) {
  const int lane = threadIdx.x % 32;
  const int64_t r = static_cast<int64_t>(blockIdx.x) * kMxWarps + threadIdx.x / 32;
  if (r >= rows) return;  // whole warps leave together
  const float b = bias ? bias[r] : 0.0f;
  for (int t = 0; t < n_tok; ++t) {
    const float* xt = x + static_cast<int64_t>(t) * cols;
    const float acc =
        kQ8 ? mxfp4_row_dot_q8(blocks, scales, r, cols, xt, lane) : mxfp4_row_dot(blocks, scales, r, cols, xt, lane);
    if (lane == 0) out[t * rows + r] = acc + b;
  }
}

// launchers
template <bool kQ8>
void launch_mxfp4_matmul(const ExpertMatmul* jobs, int num_jobs) {
  for (int j = 0; j < num_jobs; ++j) {
    const ExpertMatmul& e = jobs[j];
    check(e.w.cols % 32 == 0, gptoss_status_invalid_argument, "mxfp4 matmul (cuda): cols must be a multiple of 32");
    if (e.n <= 0 || e.w.rows <= 0) continue;
    const unsigned grid = static_cast<unsigned>((e.w.rows + kMxWarps - 1) / kMxWarps);
    EMU_LAUNCH(gemv_mxfp4_kernel<kQ8>, dim3(grid), dim3(32 * kMxWarps), 0, emu_stream_t{}, e.x, e.n, e.w.blocks, e.w.scales,
               e.w.rows, e.w.cols, e.bias, e.out);
    dev_check_launch("gemv_mxfp4_kernel");
  }
}

void f32_mxfp4w_matmul(const ExpertMatmul* jobs, int num_jobs) { launch_mxfp4_matmul<false>(jobs, num_jobs); }
void q8_mxfp4w_matmul(const ExpertMatmul* jobs, int num_jobs) { launch_mxfp4_matmul<true>(jobs, num_jobs); }

}  // namespace gptoss::cuda::GPTOSS_CUDA_NS
