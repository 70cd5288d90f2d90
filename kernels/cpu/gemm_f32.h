// gemm_f32.h — the shared fp32 microkernel for prefill and batched decode: out[t][r] = Σ_k x[t][k]·wp[r][k]
// over a packed panel of weight rows already widened to fp32 (from bf16 or from MXFP4 + scales). Packing
// once per panel lets every token tile reuse the widened weights, so the inner loop is loads and FMAs
// only. AVX-512; callers fall back to their own kernels elsewhere.
#pragma once

#include <cstdint>

namespace gptoss::cpu {

// Rows of a packed panel (fp32, K contiguous per row). Sized so a panel stays in L2 for K ≈ 3k-4k.
constexpr int kPanelRows = 64;

// panel: nrows (≤ kPanelRows) rows × K fp32. Writes out[t * ldo + r] (+ bias[r] when bias != null).
void gemm_panel_avx512(const float* panel, int nrows, int64_t K, const float* x, int T, float* out, int64_t ldo,
                       const float* bias);

}  // namespace gptoss::cpu
