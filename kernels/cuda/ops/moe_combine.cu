// moe_combine.cu — out[t] = Σ row_weight[r] · y[r] over token t's routed rows in ascending row order
// (= ascending expert order), as on the CPU, so both add in the same order: one block per token
// (grid-stride), each thread sorting the token's ≤ kMaxExpertsPerToken rows itself, threads over H.
#include "../../core/config.h"
#include "../../cpu/ops.h"
#include "common.cuh"

namespace gptoss::cuda::GPTOSS_CUDA_NS {

// kernels
__global__ void moe_combine_kernel(const float* __restrict__ y, int H, const int32_t* __restrict__ token_rows,
                                   const float* __restrict__ row_weight, int T, int K, float* __restrict__ out) {
  for (int t = blockIdx.x; t < T; t += gridDim.x) {
    int32_t rows[kMaxExpertsPerToken];
    int n = 0;
    for (int j = 0; j < K; ++j) {  // insertion sort of the token's local rows
      const int32_t r = token_rows[t * K + j];
      if (r < 0) continue;
      int i = n++;
      for (; i > 0 && rows[i - 1] > r; --i) rows[i] = rows[i - 1];
      rows[i] = r;
    }
    for (int d = threadIdx.x; d < H; d += blockDim.x) {
      float acc = 0.0f;
      for (int i = 0; i < n; ++i) acc += row_weight[rows[i]] * y[static_cast<int64_t>(rows[i]) * H + d];
      out[static_cast<int64_t>(t) * H + d] = acc;
    }
  }
}

// launchers
void f32_moe_combine(const float* y, int H, const int32_t* token_rows, const float* row_weight, int T, int K, float* out) {
  check(K <= kMaxExpertsPerToken, gptoss_status_invalid_argument, "moe_combine (cuda): too many experts per token");
  if (T <= 0) return;
  EMU_LAUNCH(moe_combine_kernel, dim3(grid_for(T, 1)), dim3(128), 0, emu_stream_t{}, y, H, token_rows, row_weight, T, K, out);
  dev_check_launch("moe_combine_kernel");
}

}  // namespace gptoss::cuda::GPTOSS_CUDA_NS
