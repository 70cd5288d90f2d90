// matmul.cpp — dense linear layers with bf16 weights (QKV, attention out, router, lm_head).
// out[t][n] = Σ_k x[t][k]·w[n][k] + b[n], fp32 accumulation. Parallel over output rows so every weight
// row is read once per step for all T tokens; tokens are tiled so the row stays in L1.
#include <algorithm>

#include "ops.h"

namespace gptoss::cpu {

// kernels
static constexpr int kTokenTile = 8;

static void row_times_tokens(const bf16_t* w, int64_t K, const float* x, int64_t ldx, int nt, float* acc) {
  for (int j = 0; j < nt; ++j) acc[j] = 0.0f;
  for (int64_t k0 = 0; k0 < K; k0 += 256) {
    const int64_t k1 = std::min(K, k0 + 256);
    float wf[256];
    for (int64_t k = k0; k < k1; ++k) wf[k - k0] = bf16_to_f32(w[k]);
    for (int j = 0; j < nt; ++j) {
      const float* xj = x + j * ldx;
      float s = 0.0f;
#pragma omp simd reduction(+ : s)
      for (int64_t k = k0; k < k1; ++k) s += wf[k - k0] * xj[k];
      acc[j] += s;
    }
  }
}

// launchers
void f32_bf16w_matmul(const float* x, int T, const MatrixBF16& w, const float* bias, float* out, int64_t ldo) {
  const int64_t N = w.rows, K = w.cols;
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    const bf16_t* wr = w.data + n * w.ld;
    for (int t0 = 0; t0 < T; t0 += kTokenTile) {
      const int nt = std::min(kTokenTile, T - t0);
      float acc[kTokenTile];
      row_times_tokens(wr, K, x + static_cast<int64_t>(t0) * K, K, nt, acc);
      for (int j = 0; j < nt; ++j) out[(t0 + j) * ldo + n] = acc[j] + (bias ? bias[n] : 0.0f);
    }
  }
}

void f32_bf16w_unembed(const float* x, int T, const MatrixBF16& w, float* logits) {
  f32_bf16w_matmul(x, T, w, nullptr, logits, w.rows);
}

}  // namespace gptoss::cpu
