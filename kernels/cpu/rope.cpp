// rope.cpp — half-split rotary embedding with YaRN frequencies (spec §4.3). The angle p·inv_freq is taken
// in fp32 like the reference; cos and sin are scaled by the concentration factor.
#include <cmath>

#include "ops.h"

namespace gptoss::cpu {

// kernels
static void rope_head(float* x, int half, const float* cos_, const float* sin_) {
  for (int f = 0; f < half; ++f) {
    const float x1 = x[f], x2 = x[half + f];
    x[f] = x1 * cos_[f] - x2 * sin_[f];
    x[half + f] = x2 * cos_[f] + x1 * sin_[f];
  }
}

// launchers
void f32_rope(float* x, int T, int heads, int head_dim, int64_t ldx, const int32_t* positions, const float* inv_freq,
              float concentration) {
  const int half = head_dim / 2;
#pragma omp parallel for schedule(static) if (T >= 4)
  for (int t = 0; t < T; ++t) {
    float c[256], s[256];
    for (int f = 0; f < half; ++f) {
      const float angle = static_cast<float>(positions[t]) * inv_freq[f];
      c[f] = static_cast<float>(std::cos(static_cast<double>(angle))) * concentration;
      s[f] = static_cast<float>(std::sin(static_cast<double>(angle))) * concentration;
    }
    for (int h = 0; h < heads; ++h) rope_head(x + t * ldx + h * head_dim, half, c, s);
  }
}

}  // namespace gptoss::cpu
