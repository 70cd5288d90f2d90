// unembed.cu — logits[T, V] = x[T, H] · lm_headᵀ: the dense product of matmul.cu without bias, output
// stride V. RowPath is ignored for the same reason as there (the GEMV path serves every row).
#include "../../cpu/ops.h"
#include "common.cuh"

namespace gptoss::cuda::GPTOSS_CUDA_NS {

void launch_gemv_bf16(const float* x, int T, const MatrixBF16& w, const float* bias, float* out, int64_t ldo);  // matmul.cu

// launchers
void f32_bf16w_unembed(const float* x, int T, const MatrixBF16& w, float* logits, RowPath) {
  launch_gemv_bf16(x, T, w, nullptr, logits, w.rows);
}

}  // namespace gptoss::cuda::GPTOSS_CUDA_NS
