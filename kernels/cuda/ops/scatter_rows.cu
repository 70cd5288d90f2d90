// scatter_rows.cu — out[dest[t, j]] = x[t] for every dest ≥ 0 (cpu/scatter_rows.cpp): one block per
// (t, j) (grid-stride), threads over H.
#include "../../cpu/ops.h"
#include "common.cuh"

namespace gptoss::cuda::GPTOSS_CUDA_NS {

// kernels
__global__ void scatter_rows_kernel(const float* __restrict__ x, int H, const int32_t* __restrict__ dest, int64_t choices, int K,
                                    float* __restrict__ out) {
  for (int64_t c = blockIdx.x; c < choices; c += gridDim.x) {
    const int32_t r = dest[c];
    if (r < 0) continue;
    const float* src = x + (c / K) * H;
    float* dst = out + static_cast<int64_t>(r) * H;
    for (int d = threadIdx.x; d < H; d += blockDim.x) dst[d] = src[d];
  }
}

// launchers
void f32_scatter_rows(const float* x, int H, const int32_t* dest, int T, int K, float* out) {
  const int64_t choices = static_cast<int64_t>(T) * K;
  if (choices <= 0) return;
  EMU_LAUNCH(scatter_rows_kernel, dim3(grid_for(choices, 1)), dim3(128), 0, emu_stream_t{}, x, H, dest, choices, K, out);
  dev_check_launch("scatter_rows_kernel");
}

}  // namespace gptoss::cuda::GPTOSS_CUDA_NS
