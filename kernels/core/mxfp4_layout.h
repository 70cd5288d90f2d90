// mxfp4_layout.h — an MXFP4 matrix rewritten from the checkpoint's Rows layout to the CPU serving kernel's
// Rows16 (core/tensor.h describes both), once per matrix at load (loader/place_weights.cpp), and the
// buffer sizes that takes. Host code only.
#pragma once

#include <cstdint>
#include <cstring>

#include "tensor.h"

namespace gptoss {

// Bytes of a Rows16 matrix's blocks and scales (whole groups of 16 rows).
inline int64_t rows16_block_bytes(const MxFp4Matrix& m) { return rows16_padded_rows(m.rows) * (m.cols / 32) * 16; }
inline int64_t rows16_scale_bytes(const MxFp4Matrix& m) { return rows16_padded_rows(m.rows) * (m.cols / 32); }

// Writes m (layout Rows) into blocks / scales (rows16_block_bytes / rows16_scale_bytes each) as Rows16;
// the padding rows get code 0 and scale 0. Walks the output in order: the 16 rows of a group are read
// side by side, so the reads are 16 sequential streams (groups spread over OpenMP threads where built
// with it: the loader's copy of a 20b checkpoint rewrites gigabytes).
inline void pack_rows16(const MxFp4Matrix& m, uint8_t* blocks, uint8_t* scales) {
  const int64_t nb = m.cols / 32, padded = rows16_padded_rows(m.rows);
#pragma omp parallel for schedule(static)
  for (int64_t g = 0; g < padded; g += 16)
    for (int64_t b = 0; b < nb; ++b) {
      uint8_t* group_blocks = blocks + rows16_piece_offset(nb, g, b, 0);
      uint8_t* group_scales = scales + rows16_scale_offset(nb, g, b);
      std::memset(group_blocks, 0, 256);
      std::memset(group_scales, 0, 16);
      for (int64_t r = g; r < g + 16 && r < m.rows; ++r) {
        for (int i = 0; i < 4; ++i) std::memcpy(group_blocks + 64 * i + 4 * (r - g), m.blocks + (r * nb + b) * 16 + 4 * i, 4);
        group_scales[r - g] = m.scales[r * nb + b];
      }
    }
}

}  // namespace gptoss
