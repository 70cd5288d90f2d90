// matmul_q8.cu — dense products over q8 weights (8-bit codes offset by 128, one fp32 scale per 32 weights:
// the q8 dense-weight mode), out[T, N] = x[T, K] · wᵀ + bias (row stride ldo). One warp per weight row,
// lane L taking blocks L, L+32, …, looping over the tokens so each row is read once per call; a warp_sum
// combines the lanes, so a row's sum has the same shape whatever T is (batch invariance). Stream rows take
// the CPU's serving scheme (the token's activations as two int8 digits of one scale, integer block sums,
// mxfp4.cuh's q8_digits); Panel rows the exact activations over the dequantized weights, as the CPU's
// packed GEMM does — on the same GEMV: there is no tensor-core tile for 8-bit weights yet.
#include "../../cpu/ops.h"
#include "mxfp4.cuh"

namespace gptoss::cuda::GPTOSS_CUDA_NS {

// kernels
constexpr int kQ8Warps = 4;

// Row r of w · x with the activations as two int8 digits (v ≈ hi + lo / 128 of d = max|x| / 127): per
// block the integer sum 128 · s_hi + s_lo (|s| < 2^27, widened once), scaled by the block's scale.
__device__ __forceinline__ float q8w_row_dot_q8(const uint8_t* __restrict__ codes, const float* __restrict__ scales, int64_t r,
                                                int64_t cols, const float* __restrict__ x, int lane) {
  const int64_t nb = cols / 32;
  float amax = 0.0f;
  for (int64_t k = lane; k < cols; k += 32) amax = fmaxf(amax, fabsf(x[k]));
  amax = warp_max(amax);
  const float inv = amax > 0.0f ? 127.0f / amax : 0.0f, unit = amax / 127.0f / 128.0f;
  float acc = 0.0f;
  for (int64_t g = lane; g < nb; g += 32) {
    int s_hi = 0, s_lo = 0;
    for (int j = 0; j < 32; ++j) {
      const int w = static_cast<int>(codes[r * cols + q8_code_offset(cols, g * 32 + j)]) - 128;
      int hi, lo;
      q8_digits(x[g * 32 + j] * inv, hi, lo);
      s_hi += w * hi, s_lo += w * lo;
    }
    acc += static_cast<float>(128 * s_hi + s_lo) * scales[r * nb + g];
  }
  return warp_sum(acc) * unit;
}

// The same row with exact activations.
__device__ __forceinline__ float q8w_row_dot(const uint8_t* __restrict__ codes, const float* __restrict__ scales, int64_t r,
                                             int64_t cols, const float* __restrict__ x, int lane) {
  const int64_t nb = cols / 32;
  float acc = 0.0f;
  for (int64_t g = lane; g < nb; g += 32) {
    float s = 0.0f;
    for (int j = 0; j < 32; ++j)
      s += static_cast<float>(static_cast<int>(codes[r * cols + q8_code_offset(cols, g * 32 + j)]) - 128) * x[g * 32 + j];
    acc += s * scales[r * nb + g];
  }
  return warp_sum(acc);
}

template <bool kQ8Acts>
__global__ void gemv_q8w_kernel(const float* __restrict__ x, int T, const uint8_t* __restrict__ codes, const float* __restrict__ scales,
                                int64_t N, int64_t K, const float* __restrict__ bias, float* __restrict__ out, int64_t ldo) {
  const int lane = threadIdx.x % 32;
  const int64_t n = static_cast<int64_t>(blockIdx.x) * kQ8Warps + threadIdx.x / 32;
  if (n >= N) return;  // whole warps leave together
  const float b = bias ? bias[n] : 0.0f;
  for (int t = 0; t < T; ++t) {
    const float* xt = x + static_cast<int64_t>(t) * K;
    const float acc = kQ8Acts ? q8w_row_dot_q8(codes, scales, n, K, xt, lane) : q8w_row_dot(codes, scales, n, K, xt, lane);
    if (lane == 0) out[t * ldo + n] = acc + b;
  }
}

// launchers
void q8_q8w_matmul(const DenseQ8Matmul* jobs, int num_jobs) {
  for (int j = 0; j < num_jobs; ++j) {
    const DenseQ8Matmul& d = jobs[j];
    check(d.w.cols % 32 == 0, gptoss_status_invalid_argument,
          "q8_q8w_matmul: q8 weights need a multiple of 32 columns, got " + std::to_string(d.w.cols));
    check(d.w.layout == Q8Layout::Runs, gptoss_status_unsupported_argument,
          "q8_q8w_matmul: cuda reads q8 weights in runs (Rows16 is the CPU engine's resident layout)");
    if (d.T <= 0 || d.w.rows <= 0) continue;
    const unsigned grid = static_cast<unsigned>((d.w.rows + kQ8Warps - 1) / kQ8Warps);
    if (d.path == RowPath::Panel)
      EMU_LAUNCH(gemv_q8w_kernel<false>, dim3(grid), dim3(32 * kQ8Warps), 0, emu_stream_t{}, d.x, d.T, d.w.codes, d.w.scales, d.w.rows,
                 d.w.cols, d.bias, d.out, d.ldo);
    else
      EMU_LAUNCH(gemv_q8w_kernel<true>, dim3(grid), dim3(32 * kQ8Warps), 0, emu_stream_t{}, d.x, d.T, d.w.codes, d.w.scales, d.w.rows,
                 d.w.cols, d.bias, d.out, d.ldo);
    dev_check_launch("gemv_q8w_kernel");
  }
}

}  // namespace gptoss::cuda::GPTOSS_CUDA_NS
