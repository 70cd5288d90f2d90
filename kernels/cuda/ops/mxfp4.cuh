// mxfp4.cuh — MXFP4 weights in registers: E2M1 codes decoded arithmetically (no table in memory) and
// one warp's dot product of a packed weight row with an fp32 activation row, shared by the expert
// kernels (moe_mxfp4_matmul.cu, moe_experts.cu) so both reduce in the same order.
#pragma once

#include "common.cuh"

namespace gptoss::cuda::GPTOSS_CUDA_NS {

// E2M1: sign bit 3, exponent bits 2..1, mantissa bit 0; exponent 0 is the subnormal 0 / 0.5.
__device__ __forceinline__ float e2m1(uint32_t c) {
  const uint32_t e = (c >> 1) & 3u, m = c & 1u;
  const float mag = e ? __uint_as_float(((e + 126u) << 23) | (m << 22)) : 0.5f * static_cast<float>(m);
  return (c & 8u) ? -mag : mag;
}
// 2^(s − 127) exactly, including s = 0 (a subnormal) and s = 255 (+inf, as ldexp gives on the CPU).
__device__ __forceinline__ float e8m0(uint32_t s) { return s ? __uint_as_float(s << 23) : __uint_as_float(0x00400000u); }

// Row r of w · x over cols, every lane of the warp returning the sum: lane L takes blocks L, L+32, …,
// sums a block's 32 products, scales once, and a warp_sum combines the lanes.
__device__ __forceinline__ float mxfp4_row_dot(const uint8_t* __restrict__ blocks, const uint8_t* __restrict__ scales, int64_t r,
                                               int64_t cols, const float* __restrict__ x, int lane) {
  const int64_t nb = cols / 32;
  const uint8_t* rb = blocks + r * nb * 16;
  const uint8_t* rs = scales + r * nb;
  float acc = 0.0f;
  for (int64_t g = lane; g < nb; g += 32) {
    float s = 0.0f;
    for (int j = 0; j < 16; ++j) {
      const uint32_t byte = rb[g * 16 + j];
      s += e2m1(byte & 0xfu) * x[g * 32 + 2 * j];
      s += e2m1(byte >> 4) * x[g * 32 + 2 * j + 1];
    }
    acc += s * e8m0(rs[g]);
  }
  return warp_sum(acc);
}

}  // namespace gptoss::cuda::GPTOSS_CUDA_NS
