// moe_mxfp4_matmul.cpp — expert projections straight from the packed MXFP4 bytes (spec §3): each 16-byte
// block holds 32 E2M1 codes (element 2j in the low nibble of byte j), times 2^(scale − 127). A block is
// decoded once into 32 floats and used for every token routed to the expert; no dequantized copy exists.
#include <algorithm>
#include <cmath>

#include "ops.h"

namespace gptoss::cpu {

// kernels
static constexpr float kFp4[16] = {+0.0f, +0.5f, +1.0f, +1.5f, +2.0f, +3.0f, +4.0f, +6.0f,
                                   -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};

// Codes only: the block scale multiplies the 32-element partial dot product once (cheaper, and no
// overflow for extreme scale bytes where code × 2^(s−127) alone would exceed fp32).
static inline void decode_block(const uint8_t* b, float* w) {
  for (int j = 0; j < 16; ++j) {
    w[2 * j] = kFp4[b[j] & 0x0F];
    w[2 * j + 1] = kFp4[b[j] >> 4];
  }
}

static constexpr int kTokenTile = 8;

// launchers
void f32_mxfp4w_matmul(const float* x, int n, const MxFp4Matrix& w, const float* bias, float* out) {
  const int64_t rows = w.rows, K = w.cols, nb = K / 32;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* blocks = w.blocks + r * nb * 16;
    const uint8_t* scales = w.scales + r * nb;
    for (int t0 = 0; t0 < n; t0 += kTokenTile) {
      const int nt = std::min(kTokenTile, n - t0);
      float acc[kTokenTile] = {};
      for (int64_t g = 0; g < nb; ++g) {
        float wb[32];
        decode_block(blocks + g * 16, wb);
        const float scale = std::ldexp(1.0f, static_cast<int>(scales[g]) - 127);
        for (int j = 0; j < nt; ++j) {
          const float* xj = x + (t0 + j) * K + g * 32;
          float s = 0.0f;
#pragma omp simd reduction(+ : s)
          for (int k = 0; k < 32; ++k) s += wb[k] * xj[k];
          acc[j] += s * scale;
        }
      }
      for (int j = 0; j < nt; ++j) out[(t0 + j) * rows + r] = acc[j] + (bias ? bias[r] : 0.0f);
    }
  }
}

}  // namespace gptoss::cpu
