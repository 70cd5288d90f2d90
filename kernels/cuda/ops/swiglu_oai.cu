// swiglu_oai.cu — gpt-oss's clamped SwiGLU, elementwise over a grid-stride loop: gate = even, up = odd
// entries of u; gate clamped above at limit, up to ±limit; z = gate·σ(α·gate)·(up + 1).
#include "../../cpu/ops.h"
#include "common.cuh"

namespace gptoss::cuda::GPTOSS_CUDA_NS {

// kernels
__global__ void swiglu_kernel(const float* __restrict__ u, int64_t count, float limit, float alpha, float* __restrict__ z) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float gate = fminf(u[2 * i], limit);
    const float up = fmaxf(fminf(u[2 * i + 1], limit), -limit);
    z[i] = gate / (1.0f + expf(-alpha * gate)) * (up + 1.0f);
  }
}

// launchers
void f32_swiglu_oai(const float* u, int n, int I, float limit, float alpha, float* z) {
  const int64_t count = static_cast<int64_t>(n) * I;  // rows are contiguous: u[n, 2I] → z[n, I]
  if (count <= 0) return;
  EMU_LAUNCH(swiglu_kernel, dim3(grid_for(count, 256, 1024)), dim3(256), 0, emu_stream_t{}, u, count, limit, alpha, z);
  dev_check_launch("swiglu_kernel");
}

}  // namespace gptoss::cuda::GPTOSS_CUDA_NS
