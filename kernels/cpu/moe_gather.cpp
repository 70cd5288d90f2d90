// moe_gather.cpp — each local expert's tokens made consecutive: xs[token_rows[t, j]] = x[t] for every
// choice this rank routed (token_rows from moe_route; -1 = another rank's expert).
#include <algorithm>

#include "ops.h"

namespace gptoss::cpu {

// kernels
static void gather(const float* x, int H, const int32_t* token_rows, int T, int K, float* xs) {
  for (int t = 0; t < T; ++t)
    for (int j = 0; j < K; ++j) {
      const int32_t r = token_rows[t * K + j];
      if (r >= 0) std::copy_n(x + t * static_cast<int64_t>(H), H, xs + r * static_cast<int64_t>(H));
    }
}

// launchers
void f32_moe_gather(const float* x, int H, const int32_t* token_rows, int T, int K, float* xs) {
  gather(x, H, token_rows, T, K, xs);
}

}  // namespace gptoss::cpu
