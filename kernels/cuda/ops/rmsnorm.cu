// rmsnorm.cu — RMSNorm in fp32: y = x · rsqrt(mean(x²) + eps) · g, one block per row. The sum of
// squares is a fixed-shape block_sum, so a row's result does not depend on how many rows share the call.
#include "../../cpu/ops.h"
#include "common.cuh"

namespace gptoss::cuda::GPTOSS_CUDA_NS {

// kernels
constexpr int kNormThreads = 256;

__global__ void rmsnorm_kernel(const float* __restrict__ x, int H, const float* __restrict__ g, float eps,
                               float* __restrict__ y) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * H;
  double ss = 0.0;  // fp64 partials, as the CPU op sums in fp64
  for (int i = threadIdx.x; i < H; i += blockDim.x) ss += static_cast<double>(x[row + i]) * x[row + i];
  ss = block_sum(ss);
  const float r = static_cast<float>(1.0 / sqrt(ss / H + eps));
  for (int i = threadIdx.x; i < H; i += blockDim.x) y[row + i] = x[row + i] * r * g[i];
}

// launchers
void f32_rmsnorm(const float* x, int T, int H, const float* gain, float eps, float* out) {
  if (T <= 0) return;
  EMU_LAUNCH(rmsnorm_kernel, dim3(T), dim3(kNormThreads), 0, emu_stream_t{}, x, H, gain, eps, out);
  dev_check_launch("rmsnorm_kernel");
}

}  // namespace gptoss::cuda::GPTOSS_CUDA_NS
