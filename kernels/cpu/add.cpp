// add.cpp — the residual add y += x (h += AttentionBlock(h), h += MLPBlock(h)). Serial: a step's
// [T, H] rows are a few hundred KB at most, under the cost of waking the OpenMP team.
#include "ops.h"

namespace gptoss::cpu {

// kernels
static void add_rows(float* y, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

// launchers
void f32_add(float* y, const float* x, int64_t n) { add_rows(y, x, n); }

}  // namespace gptoss::cpu
