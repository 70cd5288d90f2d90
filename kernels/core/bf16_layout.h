// bf16_layout.h — a bf16 matrix rewritten from Rows to the CPU serving kernels' Rows16 (core/tensor.h
// describes both), once per matrix at load (loader/place_weights.cpp), and the buffer size that takes.
// Host code only.
#pragma once

#include <cstdint>

#include "tensor.h"

namespace gptoss {

// Elements of a Rows16 matrix (whole groups of 16 rows, whole column pairs).
inline int64_t bf16_rows16_elements(const MatrixBF16& m) { return rows16_padded_rows(m.rows) * bf16_pairs(m.cols) * 2; }

// Writes m (layout Rows) into out (bf16_rows16_elements) as Rows16; padding is zero. Walks the output in
// order, so the 16 rows of a group are read as 16 sequential streams (groups spread over OpenMP threads
// where built with it: the loader's copy of a 20b checkpoint rewrites gigabytes).
inline void pack_bf16_rows16(const MatrixBF16& m, bf16_t* out) {
  const int64_t pairs = bf16_pairs(m.cols), padded = rows16_padded_rows(m.rows);
#pragma omp parallel for schedule(static)
  for (int64_t g = 0; g < padded; g += 16)
    for (int64_t p = 0; p < pairs; ++p)
      for (int64_t r = g; r < g + 16; ++r) {
        bf16_t* dst = out + bf16_rows16_offset(m.cols, r, p);
        const bool row = r < m.rows;
        dst[0] = row ? m.data[r * m.ld + 2 * p] : bf16_t{0};
        dst[1] = row && 2 * p + 1 < m.cols ? m.data[r * m.ld + 2 * p + 1] : bf16_t{0};
      }
}

}  // namespace gptoss
