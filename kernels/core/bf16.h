// bf16.h — bfloat16 storage helpers. Weights stay bf16 in memory; every op widens to fp32 on load.
#pragma once

#include <cstdint>
#include <cstring>

namespace gptoss {

using bf16_t = uint16_t;

inline float bf16_to_f32(bf16_t v) {
  const uint32_t bits = static_cast<uint32_t>(v) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

// Round-to-nearest-even, NaN kept quiet (used by the KV cache in bf16 mode and by tests).
inline bf16_t f32_to_bf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<bf16_t>((bits >> 16) | 0x40);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<bf16_t>(bits >> 16);
}

}  // namespace gptoss
