// scatter_rows.cpp — out[dest[t, j]] = x[t] for every dest ≥ 0: the routed rows of each local expert made
// consecutive (dest = moe_route's token_rows, k choices per token), or the rows whose logits are wanted (k = 1).
#include <algorithm>

#include "ops.h"

namespace gptoss::cpu {

// kernels
static void scatter(const float* x, int H, const int32_t* dest, int T, int K, float* out) {
  for (int t = 0; t < T; ++t)
    for (int j = 0; j < K; ++j) {
      const int32_t r = dest[t * K + j];
      if (r >= 0) std::copy_n(x + t * static_cast<int64_t>(H), H, out + r * static_cast<int64_t>(H));
    }
}

// launchers
void f32_scatter_rows(const float* x, int H, const int32_t* dest, int T, int K, float* out) {
  scatter(x, H, dest, T, K, out);
}

}  // namespace gptoss::cpu
