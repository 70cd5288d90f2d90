// gemm_i16.h — the integer panel GEMM of the serving precision's long prefill chunks:
//   out[t][r] = d[t] · Σ_b scale[r][b] · Σ_{k in block b} w[r][k] · v[t][k]
// over 32-element blocks, with small-integer weights (MXFP4 values × 2; any |w| ≤ 4,096 keeps a block's
// 32 products within int32) and activations as
// int16 v = round(x · 127 · 128 / max|x|) per token — the same numbers the streamed int8-digit products
// multiply (128 · q_hi + q_lo), so long chunks and decode tokens round alike. AVX512-VNNI `vpdpwssd`
// multiplies pairs of int16 into int32 (32 products per instruction, twice the fp32 FMA's), block sums
// are exact integers, and each is scaled into an fp32 accumulator once per block.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace gptoss::cpu {

// Tokens per activation tile: xT[tile][k / 2][64][2] (pairs of adjacent k per token, zero padded).
constexpr int kI16TokenTile = 64;

struct I16Activations {
  std::vector<int16_t> xT;
  std::vector<float> d;  // per token (padded to whole tiles with 0)
  int T = 0;
  int64_t K = 0;
};

// Rounds x[T][K] (K a multiple of 32) to int16 per token and lays it out in tiles; d[t] =
// max|x[t]| / (127 · 128) · unit.
void quantize_i16(const float* x, int T, int64_t K, float unit, I16Activations& out);

// panel: nrows × K int16 weights, row-major; scales: nrows × K / 32 block multipliers. Writes
// out[t · ldo + r] (+ bias[r] when bias != null).
void gemm_i16_panel(const int16_t* panel, const float* scales, int nrows, const I16Activations& a, float* out, int64_t ldo,
                    const float* bias);

}  // namespace gptoss::cpu
