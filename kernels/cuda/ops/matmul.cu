// matmul.cu — dense bf16-weight products, out[T, N] = x[T, K] · wᵀ + bias (row stride ldo).
// This version is the decode GEMV for every row: one warp per weight row, lanes split K (lane, lane+32,
// …) and a warp_sum combines them, looping over the tokens so each weight row is read once per call.
// A row's sum has the same shape whatever T is (batch invariance); RowPath is therefore ignored here.
// The tensor-core GEMM (mma_m16n8k16_bf16) for long prefill chunks is the next step.
// The jobs array is read on the host for shapes and pointers only; each job is one launch.
#include "../../cpu/ops.h"
#include "common.cuh"

namespace gptoss::cuda::GPTOSS_CUDA_NS {

// kernels
constexpr int kGemvWarps = 4;

__global__ void gemv_bf16_kernel(const float* __restrict__ x, int T, const uint16_t* __restrict__ w, int64_t N, int64_t K,
                                 int64_t ldw, const float* __restrict__ bias, float* __restrict__ out, int64_t ldo) {
  const int lane = threadIdx.x % 32;
  const int64_t n = static_cast<int64_t>(blockIdx.x) * kGemvWarps + threadIdx.x / 32;
  if (n >= N) return;  // whole warps leave together
  const uint16_t* row = w + n * ldw;
  const float b = bias ? bias[n] : 0.0f;
  for (int t = 0; t < T; ++t) {
    const float* xt = x + static_cast<int64_t>(t) * K;
    float acc = 0.0f;
    for (int64_t k = lane; k < K; k += 32) acc += xt[k] * bf16_bits_to_f32(row[k]);
    acc = warp_sum(acc);
    if (lane == 0) out[t * ldo + n] = acc + b;
  }
}

// launchers
void launch_gemv_bf16(const float* x, int T, const MatrixBF16& w, const float* bias, float* out, int64_t ldo) {
  if (T <= 0 || w.rows <= 0) return;
  const unsigned blocks = static_cast<unsigned>((w.rows + kGemvWarps - 1) / kGemvWarps);
  EMU_LAUNCH(gemv_bf16_kernel, dim3(blocks), dim3(32 * kGemvWarps), 0, emu_stream_t{}, x, T, w.data, w.rows, w.cols, w.ld,
             bias, out, ldo);
  dev_check_launch("gemv_bf16_kernel");
}

void f32_bf16w_matmul(const DenseMatmul* jobs, int num_jobs) {
  for (int j = 0; j < num_jobs; ++j) launch_gemv_bf16(jobs[j].x, jobs[j].T, jobs[j].w, jobs[j].bias, jobs[j].out, jobs[j].ldo);
}

}  // namespace gptoss::cuda::GPTOSS_CUDA_NS
