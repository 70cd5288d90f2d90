// moe_combine.cpp — the MoE output: out[t] = Σ over token t's routed rows of weight · y[row]. Each token
// adds its rows in ascending row order, which is ascending expert order (moe_route's contract), whatever
// else is in the step: the sum is batch invariant, and a token's sum never depends on another's.
#include <algorithm>

#include "../core/config.h"
#include "../core/error.h"
#include "ops.h"

namespace gptoss::cpu {

// kernels
static void combine_token(const float* y, int H, const int32_t* rows, const float* row_weight, int K, float* o) {
  int32_t sorted[kMaxExpertsPerToken];
  int n = 0;
  for (int j = 0; j < K; ++j)
    if (rows[j] >= 0) sorted[n++] = rows[j];
  std::sort(sorted, sorted + n);
  std::fill(o, o + H, 0.0f);
  for (int i = 0; i < n; ++i) {
    const float w = row_weight[sorted[i]];
    const float* yr = y + sorted[i] * static_cast<int64_t>(H);
    for (int d = 0; d < H; ++d) o[d] += w * yr[d];
  }
}

// launchers
void f32_moe_combine(const float* y, int H, const int32_t* token_rows, const float* row_weight, int T, int K, float* out) {
  check(K <= kMaxExpertsPerToken, gptoss_status_invalid_argument, "moe_combine: too many experts per token");
  for (int t = 0; t < T; ++t) combine_token(y, H, token_rows + t * K, row_weight, K, out + t * static_cast<int64_t>(H));
}

}  // namespace gptoss::cpu
