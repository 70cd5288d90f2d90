// rmsnorm.cpp — RMSNorm in fp32 (spec §4.1): y = x · rsqrt(mean(x²) + eps) · g. Plain gain, no bias.
#include <cmath>

#include "ops.h"

namespace gptoss::cpu {

// kernels
static void rmsnorm_row(const float* x, int H, const float* g, float eps, float* y) {
  double ss = 0.0;  // fp64 sum: the mean is then exact to fp32 rounding
  for (int i = 0; i < H; ++i) ss += static_cast<double>(x[i]) * x[i];
  const float r = static_cast<float>(1.0 / std::sqrt(ss / H + eps));
  for (int i = 0; i < H; ++i) y[i] = x[i] * r * g[i];
}

// launchers
void f32_rmsnorm(const float* x, int T, int H, const float* gain, float eps, float* out) {
#pragma omp parallel for schedule(static) if (T >= 4)
  for (int t = 0; t < T; ++t) rmsnorm_row(x + static_cast<int64_t>(t) * H, H, gain, eps, out + static_cast<int64_t>(t) * H);
}

}  // namespace gptoss::cpu
