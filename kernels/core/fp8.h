// fp8.h — OCP FP8 E4M3 ("e4m3fn": no infinities, 0x7f / 0xff are NaN, largest finite ±448) for the
// KV cache in fp8 mode: a cached row is stored as codes plus one fp32 scale (row amax / 448), so every
// row uses the whole code range. Plain integer and float arithmetic, so the same functions run on the
// host and in device code (nvcc and the emulator).
#pragma once

#include <cstdint>
#include <cstring>

#include "host_device.h"

namespace gptoss {

constexpr float kE4m3Max = 448.0f;

GPTOSS_HOST_DEVICE uint32_t fp8_float_bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, sizeof b);
  return b;
}

GPTOSS_HOST_DEVICE float fp8_bits_float(uint32_t b) {
  float f;
  std::memcpy(&f, &b, sizeof f);
  return f;
}

// Round to nearest even; magnitudes past the largest finite value saturate to ±448; NaN stays NaN.
GPTOSS_HOST_DEVICE uint8_t f32_to_e4m3(float f) {
  const uint32_t bits = fp8_float_bits(f);
  const uint8_t sign = static_cast<uint8_t>((bits >> 24) & 0x80u);
  const uint32_t mag = bits & 0x7fffffffu;
  if (mag > 0x7f800000u) return sign | 0x7f;                   // NaN
  if (fp8_bits_float(mag) >= kE4m3Max) return sign | 0x7e;     // ±448 (what [448, 464) rounds to too)
  const int exp = static_cast<int>(mag >> 23) - 127;
  if (exp < -6) {                                              // subnormal: steps of 2^-9
    const float q = fp8_bits_float(mag) * 512.0f;             // exact (a power-of-two scale)
    uint32_t n = static_cast<uint32_t>(q);
    const float rest = q - static_cast<float>(n);
    if (rest > 0.5f || (rest == 0.5f && (n & 1u))) ++n;        // n == 8 is the smallest normal's code
    return sign | static_cast<uint8_t>(n);
  }
  uint32_t m = (mag & 0x7fffffu) >> 20;
  const uint32_t rest = mag & 0xfffffu;
  int e = exp + 7;
  if (rest > 0x80000u || (rest == 0x80000u && (m & 1u))) {
    if (++m == 8) m = 0, ++e;
  }
  return sign | static_cast<uint8_t>((e << 3) | m);
}

// Branch-free, for the attention loops: the 7 magnitude bits placed at the top of an fp32's exponent and
// mantissa read as 2^(e - 127)·(1 + m/8), or m·2^-129 for e = 0 (an fp32 subnormal), so one multiply by
// 2^120 gives the e4m3 value, subnormals included; 0x7f is NaN.
GPTOSS_HOST_DEVICE float e4m3_to_f32(uint8_t v) {
  const uint32_t mag = v & 0x7fu;
  const float x = mag == 0x7fu ? fp8_bits_float(0x7fc00000u) : fp8_bits_float(mag << 20) * 0x1p120f;
  return v & 0x80u ? -x : x;
}

// The scale a row is stored with: its largest magnitude maps to 448. NaN elements do not count (they
// stay NaN through their own code); an all-zero row has scale 0 and reads back as zeros.
GPTOSS_HOST_DEVICE float fp8_row_scale(float amax) { return amax / kE4m3Max; }

// One element's code under its row's scale (0 for a zero row).
GPTOSS_HOST_DEVICE uint8_t fp8_encode(float x, float scale) { return f32_to_e4m3(scale > 0.0f ? x / scale : x * 0.0f); }

}  // namespace gptoss
