// matmul.cu — dense bf16-weight products, out[T, N] = x[T, K] · wᵀ + bias (row stride ldo), two paths
// chosen per job by its RowPath (the model makes one job per run of rows sharing a path):
//   Stream (decode, short chunks): GEMV, one warp per weight row, lanes split K (lane, lane+32, …) and a
//     warp_sum combines them, looping over the tokens so each weight row is read once per call.
//   Panel (long prefill chunks): the tensor-core tile of panel_mma.cuh, 64 tokens × 64 weight rows per
//     block, the activations split into three bf16 planes so exact precision stays fp32-class.
// Either way a row's sum has the same shape whatever T is (batch invariance).
// The jobs array is read on the host for shapes and pointers only; each job is one launch.
#include "../../cpu/ops.h"
#include "common.cuh"
#include "panel_mma.cuh"

namespace gptoss::cuda::GPTOSS_CUDA_NS {

// kernels
constexpr int kGemvWarps = 4;

__global__ void gemv_bf16_kernel(const float* __restrict__ x, int T, const uint16_t* __restrict__ w, int64_t N, int64_t K,
                                 int64_t ldw, const float* __restrict__ bias, float* __restrict__ out, int64_t ldo) {
  const int lane = threadIdx.x % 32;
  const int64_t n = static_cast<int64_t>(blockIdx.x) * kGemvWarps + threadIdx.x / 32;
  if (n >= N) return;  // whole warps leave together
  const uint16_t* row = w + n * ldw;
  const float b = bias ? bias[n] : 0.0f;
  for (int t = 0; t < T; ++t) {
    const float* xt = x + static_cast<int64_t>(t) * K;
    float acc = 0.0f;
    for (int64_t k = lane; k < K; k += 32) acc += xt[k] * bf16_bits_to_f32(row[k]);
    acc = warp_sum(acc);
    if (lane == 0) out[t * ldo + n] = acc + b;
  }
}

// Block (blockIdx.x, blockIdx.y) computes output columns 64·x … and token rows 64·y … .
__global__ void __launch_bounds__(kPanelThreads) gemm_bf16_prefill_kernel(const float* __restrict__ x, int T,
                                                                          const uint16_t* __restrict__ w, int64_t N, int64_t K,
                                                                          int64_t ldw, const float* __restrict__ bias,
                                                                          float* __restrict__ out, int64_t ldo) {
  EMU_SHARED(uint32_t, xs, 3 * kPanelPlaneWords);
  EMU_SHARED(uint32_t, ws, kPanelPlaneWords);
  const int64_t n0 = static_cast<int64_t>(blockIdx.x) * kPanelN, t0 = static_cast<int64_t>(blockIdx.y) * kPanelM;
  const int rows = static_cast<int>(T - t0 < kPanelM ? T - t0 : kPanelM);
  const int cols = static_cast<int>(N - n0 < kPanelN ? N - n0 : kPanelN);
  PanelAcc acc, part;
  panel_zero(acc);
  for (int64_t k0 = 0; k0 < K; k0 += kPanelK) {
    panel_stage_x(x + t0 * K, K, rows, K, k0, xs);
    panel_stage_w_bf16(w + n0 * ldw, ldw, cols, K, k0, ws);
    __syncthreads();
    panel_zero(part);
    panel_mma(xs, ws, part);
    panel_add(acc, part);
    __syncthreads();  // the next step overwrites the tiles
  }
  PANEL_UNROLL
  for (int i = 0; i < 2; ++i)
    PANEL_UNROLL
    for (int j = 0; j < 4; ++j)
      PANEL_UNROLL
      for (int e = 0; e < 4; ++e) {
        const int r = panel_row(i, e), c = panel_col(j, e);
        if (r < rows && c < cols) out[(t0 + r) * ldo + n0 + c] = acc.c[i][j][e] + (bias ? bias[n0 + c] : 0.0f);
      }
}

// launchers
void launch_gemv_bf16(const float* x, int T, const MatrixBF16& w, const float* bias, float* out, int64_t ldo) {
  if (T <= 0 || w.rows <= 0) return;
  const unsigned blocks = static_cast<unsigned>((w.rows + kGemvWarps - 1) / kGemvWarps);
  EMU_LAUNCH(gemv_bf16_kernel, dim3(blocks), dim3(32 * kGemvWarps), 0, emu_stream_t{}, x, T, w.data, w.rows, w.cols, w.ld,
             bias, out, ldo);
  dev_check_launch("gemv_bf16_kernel");
}

void launch_gemm_bf16_prefill(const float* x, int T, const MatrixBF16& w, const float* bias, float* out, int64_t ldo) {
  if (T <= 0 || w.rows <= 0) return;
  const int64_t col_tiles = (w.rows + kPanelN - 1) / kPanelN, row_tiles = (T + kPanelM - 1) / kPanelM;
  check(col_tiles <= 0x7fffffff && row_tiles <= 65535, gptoss_status_invalid_argument, "matmul (cuda): product too large for one launch");
  const dim3 grid(static_cast<unsigned>(col_tiles), static_cast<unsigned>(row_tiles));
  EMU_LAUNCH(gemm_bf16_prefill_kernel, grid, dim3(kPanelThreads), 0, emu_stream_t{}, x, T, w.data, w.rows, w.cols, w.ld, bias,
             out, ldo);
  dev_check_launch("gemm_bf16_prefill_kernel");
}

void f32_bf16w_matmul(const DenseMatmul* jobs, int num_jobs) {
  for (int j = 0; j < num_jobs; ++j) {
    const DenseMatmul& d = jobs[j];
    check(d.w.layout == BF16Layout::Rows, gptoss_status_unsupported_argument,
          "f32_bf16w_matmul: cuda reads row-major bf16 weights (Rows16 is the CPU engine's resident layout)");
    if (d.path == RowPath::Panel) launch_gemm_bf16_prefill(d.x, d.T, d.w, d.bias, d.out, d.ldo);
    else launch_gemv_bf16(d.x, d.T, d.w, d.bias, d.out, d.ldo);
  }
}

// Serving precision: the exact product above is within its bound (cpu/ops.h), and a GPU's GEMV is bound
// by the weights' bytes, not by the multiplies.
void bf16x2_bf16w_matmul(const DenseMatmul* jobs, int num_jobs) { f32_bf16w_matmul(jobs, num_jobs); }

}  // namespace gptoss::cuda::GPTOSS_CUDA_NS
