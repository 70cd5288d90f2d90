// mxfp4.cuh — MXFP4 weights in registers: E2M1 codes decoded arithmetically (no table in memory) and
// one warp's dot product of a packed weight row with an fp32 activation row, shared by the expert
// kernels (moe_mxfp4_matmul.cu, moe_experts.cu) so both reduce in the same order; and the serving-precision
// (q8) dot product, the CPU's scheme (cpu/moe_mxfp4_q8_matmul.cpp) on the same lanes.
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

// E2M1 × 2 as an integer (0, ±1, ±2, ±3, ±4, ±6, ±8, ±12): exact, so q8 block sums stay integer.
__device__ __forceinline__ int e2m1_x2(uint32_t c) {
  const int e = static_cast<int>((c >> 1) & 3u), m = static_cast<int>(c & 1u);
  const int mag = e ? (2 + m) << (e - 1) : m;
  return (c & 8u) ? -mag : mag;
}

// x / d as two int8 digits (v ≈ hi + lo / 128), rounded to nearest even as the CPU's digits() does.
__device__ __forceinline__ void q8_digits(float v, int& hi, int& lo) {
  const float h = fminf(fmaxf(rintf(v), -127.0f), 127.0f);
  hi = static_cast<int>(h);
  lo = static_cast<int>(fminf(fmaxf(rintf((v - h) * 128.0f), -127.0f), 127.0f));
}

// mxfp4_row_dot in serving precision: the token's activations as two int8 digits of one scale
// d = max|x| / 127 over the row (the CPU's scheme, so its digits are the CPU's and the error stays
// ≤ d / 256 per element); each block's products are integer sums s_hi · 128 + s_lo (|s| < 2^24, exact in
// fp32), scaled once by d · 2^(scale − 127) / 256: ½ for the doubled codes, 1/128 for the low digit.
// The integer sum is scaled by d first so that a large block scale cannot overflow where exact fp32 would not.
__device__ __forceinline__ float mxfp4_row_dot_q8(const uint8_t* __restrict__ blocks, const uint8_t* __restrict__ scales,
                                                  int64_t r, int64_t cols, const float* __restrict__ x, int lane) {
  const int64_t nb = cols / 32;
  float amax = 0.0f;
  for (int64_t k = lane; k < cols; k += 32) amax = fmaxf(amax, fabsf(x[k]));
  amax = warp_max(amax);
  const float inv = amax > 0.0f ? 127.0f / amax : 0.0f, unit = amax / 127.0f / 256.0f;
  const uint8_t* rb = blocks + r * nb * 16;
  const uint8_t* rs = scales + r * nb;
  float acc = 0.0f;
  for (int64_t g = lane; g < nb; g += 32) {
    int s_hi = 0, s_lo = 0;
    for (int j = 0; j < 16; ++j) {
      const uint32_t byte = rb[g * 16 + j];
      const int w0 = e2m1_x2(byte & 0xfu), w1 = e2m1_x2(byte >> 4);
      int hi, lo;
      q8_digits(x[g * 32 + 2 * j] * inv, hi, lo);
      s_hi += w0 * hi, s_lo += w0 * lo;
      q8_digits(x[g * 32 + 2 * j + 1] * inv, hi, lo);
      s_hi += w1 * hi, s_lo += w1 * lo;
    }
    acc += static_cast<float>(128 * s_hi + s_lo) * unit * e8m0(rs[g]);
  }
  return warp_sum(acc);
}

}  // namespace gptoss::cuda::GPTOSS_CUDA_NS
