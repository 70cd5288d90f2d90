// q8_layout.h — a q8 matrix rewritten from Runs to the CPU serving kernel's Rows16 (core/tensor.h
// describes both), once per matrix at load (loader/place_weights.cpp), and the buffer sizes that takes.
// Host code only.
#pragma once

#include <cstdint>
#include <cstring>

#include "tensor.h"

namespace gptoss {

// Bytes of codes and count of scales of a Rows16 q8 matrix (whole groups of 16 rows).
inline int64_t q8_rows16_code_bytes(const MatrixQ8& m) { return rows16_padded_rows(m.rows) * m.cols; }
inline int64_t q8_rows16_scale_count(const MatrixQ8& m) { return rows16_padded_rows(m.rows) * (m.cols / 32); }

// Writes m (layout Runs) into codes / scales (the sizes above) as Rows16; padded rows get code 128 (zero)
// and scale 0. Groups spread over OpenMP threads where built with it (an unembedding is 0.6 GB).
inline void pack_q8_rows16(const MatrixQ8& m, uint8_t* codes, float* scales) {
  const int64_t nb = m.cols / 32, padded = rows16_padded_rows(m.rows);
#pragma omp parallel for schedule(static)
  for (int64_t g = 0; g < padded; g += 16)
    for (int64_t b = 0; b < nb; ++b)
      for (int64_t r = g; r < g + 16; ++r) {
        const bool row = r < m.rows;
        scales[rows16_scale_offset(nb, r, b)] = row ? m.scales[r * nb + b] : 0.0f;
        for (int i = 0; i < 8; ++i) {
          uint8_t* dst = codes + q8_rows16_piece_offset(nb, r, b, i);
          if (row) std::memcpy(dst, m.codes + r * m.cols + q8_code_offset(m.cols, b * 32 + 4 * i), 4);
          else std::memset(dst, 128, 4);
        }
      }
}

}  // namespace gptoss
