// unembed.cu — logits[T, V] = x[T, H] · lm_headᵀ: the dense product of matmul.cu without bias, output
// stride V, taking the same two paths by RowPath (GEMV for Stream, the tensor-core tile for Panel).
#include "../../cpu/ops.h"
#include "common.cuh"

namespace gptoss::cuda::GPTOSS_CUDA_NS {

// matmul.cu
void launch_gemv_bf16(const float* x, int T, const MatrixBF16& w, const float* bias, float* out, int64_t ldo);
void launch_gemm_bf16_prefill(const float* x, int T, const MatrixBF16& w, const float* bias, float* out, int64_t ldo);

// launchers
void f32_bf16w_unembed(const float* x, int T, const MatrixBF16& w, float* logits, RowPath path) {
  if (path == RowPath::Panel) launch_gemm_bf16_prefill(x, T, w, nullptr, logits, w.rows);
  else launch_gemv_bf16(x, T, w, nullptr, logits, w.rows);
}

}  // namespace gptoss::cuda::GPTOSS_CUDA_NS
