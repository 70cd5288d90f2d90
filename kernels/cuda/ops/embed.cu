// embed.cu — token embedding lookup (bf16 table → fp32 rows): one block per token.
// The CPU op rejects an out-of-range id on the host; here ids may be device memory, so the kernel
// cannot report it: it writes a NaN row instead of reading outside the table (callers validate ids).
#include "../../cpu/ops.h"
#include "common.cuh"

namespace gptoss::cuda::GPTOSS_CUDA_NS {

// kernels
__global__ void embed_kernel(const uint16_t* __restrict__ table, int64_t rows, int64_t cols, int64_t ld,
                             const int32_t* __restrict__ ids, float* __restrict__ out) {
  const int64_t t = blockIdx.x;
  const int32_t id = ids[t];
  const bool valid = id >= 0 && id < rows;
  const uint16_t* row = table + (valid ? id : 0) * ld;
  for (int64_t i = threadIdx.x; i < cols; i += blockDim.x)
    out[t * cols + i] = valid ? bf16_bits_to_f32(row[i]) : __uint_as_float(0x7fc00000u);
}

// launchers
void bf16w_embed(const MatrixBF16& table, const int32_t* ids, int T, float* out) {
  if (T <= 0) return;
  EMU_LAUNCH(embed_kernel, dim3(T), dim3(128), 0, emu_stream_t{}, table.data, table.rows, table.cols, table.ld, ids, out);
  dev_check_launch("embed_kernel");
}

}  // namespace gptoss::cuda::GPTOSS_CUDA_NS
