// router_topk.cpp — MoE routing (spec §4.4): top-k of the raw router logits (ties → lower expert index),
// then softmax over the k selected logits only.
#include <cmath>

#include "ops.h"

namespace gptoss::cpu {

// kernels
static void topk_row(const float* g, int E, int k, int32_t* idx, float* w) {
  for (int j = 0; j < k; ++j) {
    int best = -1;
    for (int e = 0; e < E; ++e) {
      bool taken = false;
      for (int i = 0; i < j; ++i) taken |= idx[i] == e;
      if (!taken && (best < 0 || g[e] > g[best])) best = e;  // strict '>' keeps the lower index on ties
    }
    idx[j] = best;
  }
  const float m = g[idx[0]];
  float z = 0.0f;
  for (int j = 0; j < k; ++j) z += (w[j] = std::exp(g[idx[j]] - m));
  for (int j = 0; j < k; ++j) w[j] /= z;
}

// launchers
void f32_router_topk(const float* logits, int T, int E, int k, int32_t* idx, float* weights) {
#pragma omp parallel for schedule(static) if (T >= 4)
  for (int t = 0; t < T; ++t) topk_row(logits + static_cast<int64_t>(t) * E, E, k, idx + t * k, weights + t * k);
}

}  // namespace gptoss::cpu
