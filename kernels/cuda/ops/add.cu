// add.cu — the residual add y += x, elementwise over a grid-stride loop.
#include "../../cpu/ops.h"
#include "common.cuh"

namespace gptoss::cuda::GPTOSS_CUDA_NS {

// kernels
__global__ void add_kernel(float* __restrict__ y, const float* __restrict__ x, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    y[i] += x[i];
}

// launchers
void f32_add(float* y, const float* x, int64_t n) {
  if (n <= 0) return;
  EMU_LAUNCH(add_kernel, dim3(grid_for(n, 256, 1024)), dim3(256), 0, emu_stream_t{}, y, x, n);
  dev_check_launch("add_kernel");
}

}  // namespace gptoss::cuda::GPTOSS_CUDA_NS
