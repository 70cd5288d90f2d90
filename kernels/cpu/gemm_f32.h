// gemm_f32.h — the shared fp32 GEMM for prefill and batched decode:
//   out[t][r] = Σ_k x[t][k] · panel[r][k]   over a packed panel of weight rows widened to fp32
// (from bf16, or from MXFP4 with its scales: exact). Activations are transposed once per product
// (xT[k][t]), so the microkernel broadcasts one weight and multiplies a vector of 16 tokens: 12 rows ×
// 32 tokens = 24 accumulators, no horizontal reductions, loads well under the FMA rate. AVX-512.
#pragma once

#include <cstddef>
#include <cstdint>

namespace gptoss::cpu {

// Rows per packed panel (a multiple of the microkernel's 12); 48 × 2880 fp32 = 553 KB stays in L2.
constexpr int kPanelRows = 48;

// Activations are transposed in tiles of 32 tokens, each tile contiguous: xT[tile][k][32] (zero padded),
// so the microkernel streams one tile sequentially.
constexpr int kTokenTile = 32;
inline size_t transposed_size(int T, int64_t K) { return static_cast<size_t>((T + kTokenTile - 1) / kTokenTile) * kTokenTile * K; }

void transpose_activations(const float* x, int T, int64_t K, float* xT);

// panel: nrows (≤ kPanelRows) rows × K fp32. Writes out[t * ldo + r] (+ bias[r] when bias != null).
void gemm_panel_avx512(const float* panel, int nrows, int64_t K, const float* xT, int T, float* out, int64_t ldo,
                       const float* bias);

}  // namespace gptoss::cpu
