// moe_gather.cu — xs[token_rows[t, j]] = x[t]: one block per routed choice (grid-stride), threads over H.
#include "../../cpu/ops.h"
#include "common.cuh"

namespace gptoss::cuda::GPTOSS_CUDA_NS {

// kernels
__global__ void moe_gather_kernel(const float* __restrict__ x, int H, const int32_t* __restrict__ token_rows, int64_t choices, int K,
                                  float* __restrict__ xs) {
  for (int64_t c = blockIdx.x; c < choices; c += gridDim.x) {
    const int32_t r = token_rows[c];
    if (r < 0) continue;
    const float* src = x + (c / K) * H;
    float* dst = xs + static_cast<int64_t>(r) * H;
    for (int d = threadIdx.x; d < H; d += blockDim.x) dst[d] = src[d];
  }
}

// launchers
void f32_moe_gather(const float* x, int H, const int32_t* token_rows, int T, int K, float* xs) {
  const int64_t choices = static_cast<int64_t>(T) * K;
  if (choices <= 0) return;
  EMU_LAUNCH(moe_gather_kernel, dim3(grid_for(choices, 1)), dim3(128), 0, emu_stream_t{}, x, H, token_rows, choices, K, xs);
  dev_check_launch("moe_gather_kernel");
}

}  // namespace gptoss::cuda::GPTOSS_CUDA_NS
