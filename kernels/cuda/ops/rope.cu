// rope.cu — in-place half-split RoPE; one block per token row, threads over (head, frequency) pairs.
// The angle p·inv_freq is taken in fp32 and cos/sin in fp64, as the CPU op does, so both agree closely.
#include "../../cpu/ops.h"
#include "common.cuh"

namespace gptoss::cuda::GPTOSS_CUDA_NS {

// kernels
__global__ void rope_kernel(float* __restrict__ x, int heads, int head_dim, int64_t ldx, const int32_t* __restrict__ positions,
                            const float* __restrict__ inv_freq, float concentration) {
  const int t = blockIdx.x, half = head_dim / 2;
  const float p = static_cast<float>(positions[t]);
  for (int i = threadIdx.x; i < heads * half; i += blockDim.x) {
    const int h = i / half, f = i % half;
    const float angle = p * inv_freq[f];
    const float c = static_cast<float>(cos(static_cast<double>(angle))) * concentration;
    const float s = static_cast<float>(sin(static_cast<double>(angle))) * concentration;
    float* v = x + t * ldx + static_cast<int64_t>(h) * head_dim;
    const float x1 = v[f], x2 = v[half + f];
    v[f] = x1 * c - x2 * s;
    v[half + f] = x2 * c + x1 * s;
  }
}

// launchers
void f32_rope(float* x, int T, int heads, int head_dim, int64_t ldx, const int32_t* positions, const float* inv_freq,
              float concentration) {
  if (T <= 0) return;
  EMU_LAUNCH(rope_kernel, dim3(T), dim3(128), 0, emu_stream_t{}, x, heads, head_dim, ldx, positions, inv_freq, concentration);
  dev_check_launch("rope_kernel");
}

}  // namespace gptoss::cuda::GPTOSS_CUDA_NS
