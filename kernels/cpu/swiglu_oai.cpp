// swiglu_oai.cpp — gpt-oss's clamped SwiGLU (spec §4.4, pitfall 6): gate = even rows, up = odd rows;
// gate clamped above at limit, up clamped to ±limit; z = gate·σ(α·gate)·(up + 1).
#include <algorithm>
#include <cmath>

#include "ops.h"

namespace gptoss::cpu {

// kernels
static void swiglu_row(const float* u, int I, float limit, float alpha, float* z) {
  for (int i = 0; i < I; ++i) {
    const float gate = std::min(u[2 * i], limit);
    const float up = std::clamp(u[2 * i + 1], -limit, limit);
    z[i] = gate / (1.0f + std::exp(-alpha * gate)) * (up + 1.0f);
  }
}

// launchers
void f32_swiglu_oai(const float* u, int n, int I, float limit, float alpha, float* z) {
  for (int t = 0; t < n; ++t) swiglu_row(u + static_cast<int64_t>(t) * 2 * I, I, limit, alpha, z + static_cast<int64_t>(t) * I);
}

}  // namespace gptoss::cpu
