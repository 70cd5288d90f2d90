// moe_mxfp4_matmul.cu — expert products straight from packed MXFP4 (16-byte blocks of 32 E2M1 codes,
// element 2j in the low nibble of byte j, times 2^(scale − 127)); decode GEMV for every row.
// One warp per weight row; lane L takes blocks L, L+32, …: it decodes the codes in registers
// (arithmetic E2M1, no table in memory), sums the block's 32 products, multiplies by the block scale
// once, and a warp_sum combines the lanes. Tokens loop inside the warp, so a row's result has the same
// reduction shape whatever n is (batch invariance). The jobs array is read on the host for shapes only.
// q8_mxfp4w_matmul points here too: the contract lets serving precision take the exact path.
#include "../../cpu/ops.h"
#include "common.cuh"

namespace gptoss::cuda::GPTOSS_CUDA_NS {

// kernels
constexpr int kMxWarps = 4;

// E2M1: sign bit 3, exponent bits 2..1, mantissa bit 0; exponent 0 is the subnormal 0 / 0.5.
__device__ __forceinline__ float e2m1(uint32_t c) {
  const uint32_t e = (c >> 1) & 3u, m = c & 1u;
  const float mag = e ? __uint_as_float(((e + 126u) << 23) | (m << 22)) : 0.5f * static_cast<float>(m);
  return (c & 8u) ? -mag : mag;
}
// 2^(s − 127) exactly, including s = 0 (a subnormal) and s = 255 (+inf, as ldexp gives on the CPU).
__device__ __forceinline__ float e8m0(uint32_t s) { return s ? __uint_as_float(s << 23) : __uint_as_float(0x00400000u); }

__global__ void gemv_mxfp4_kernel(const float* __restrict__ x, int n_tok, const uint8_t* __restrict__ blocks,
                                  const uint8_t* __restrict__ scales, int64_t rows, int64_t cols, const float* __restrict__ bias,
                                  float* __restrict__ out) {
  const int lane = threadIdx.x % 32;
  const int64_t r = static_cast<int64_t>(blockIdx.x) * kMxWarps + threadIdx.x / 32;
  if (r >= rows) return;  // whole warps leave together
  const int64_t nb = cols / 32;
  const uint8_t* rb = blocks + r * nb * 16;
  const uint8_t* rs = scales + r * nb;
  const float b = bias ? bias[r] : 0.0f;
  for (int t = 0; t < n_tok; ++t) {
    const float* xt = x + static_cast<int64_t>(t) * cols;
    float acc = 0.0f;
    for (int64_t g = lane; g < nb; g += 32) {
      float s = 0.0f;
      for (int j = 0; j < 16; ++j) {
        const uint32_t byte = rb[g * 16 + j];
        s += e2m1(byte & 0xfu) * xt[g * 32 + 2 * j];
        s += e2m1(byte >> 4) * xt[g * 32 + 2 * j + 1];
      }
      acc += s * e8m0(rs[g]);
    }
    acc = warp_sum(acc);
    if (lane == 0) out[t * rows + r] = acc + b;
  }
}

// launchers
void f32_mxfp4w_matmul(const ExpertMatmul* jobs, int num_jobs) {
  for (int j = 0; j < num_jobs; ++j) {
    const ExpertMatmul& e = jobs[j];
    check(e.w.cols % 32 == 0, gptoss_status_invalid_argument, "mxfp4 matmul (cuda): cols must be a multiple of 32");
    if (e.n <= 0 || e.w.rows <= 0) continue;
    const unsigned grid = static_cast<unsigned>((e.w.rows + kMxWarps - 1) / kMxWarps);
    EMU_LAUNCH(gemv_mxfp4_kernel, dim3(grid), dim3(32 * kMxWarps), 0, emu_stream_t{}, e.x, e.n, e.w.blocks, e.w.scales,
               e.w.rows, e.w.cols, e.bias, e.out);
    dev_check_launch("gemv_mxfp4_kernel");
  }
}

}  // namespace gptoss::cuda::GPTOSS_CUDA_NS
