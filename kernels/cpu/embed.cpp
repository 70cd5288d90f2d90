// embed.cpp — token embedding lookup (bf16 table → fp32 rows).
#include "../core/error.h"
#include "ops.h"

namespace gptoss::cpu {

// kernels
static void embed_row(const bf16_t* row, int64_t H, float* out) {
  for (int64_t i = 0; i < H; ++i) out[i] = bf16_to_f32(row[i]);
}

// launchers
void bf16w_embed(const MatrixBF16& table, const int32_t* ids, int T, float* out) {
  for (int t = 0; t < T; ++t) {
    check(ids[t] >= 0 && ids[t] < table.rows, gptoss_status_invalid_argument,
          "token id " + std::to_string(ids[t]) + " is outside the vocabulary of " + std::to_string(table.rows));
  }
#pragma omp parallel for schedule(static)
  for (int t = 0; t < T; ++t) embed_row(table.data + ids[t] * table.ld, table.cols, out + t * table.cols);
}

}  // namespace gptoss::cpu
