// mxfp4_rows16.h — rows of a Rows16 MXFP4 matrix (core/tensor.h) back in the checkpoint's Rows layout, for
// the kernels that read a matrix row by row: the exact products (cpu/moe_mxfp4_matmul.cpp) and the panel
// packers of both precisions. They unpack a tile into a per-thread buffer just before using it, so exact
// results are the same bits whichever layout the weights were placed in.
#pragma once

#include <cstdint>
#include <vector>

#include "../core/tensor.h"

namespace gptoss::cpu {

// Rows r0 .. r0 + n − 1 of m into blocks [n][nb][16] and scales [n][nb] (nb = m.cols / 32).
void unpack_rows16(const MxFp4Matrix& m, int64_t r0, int n, uint8_t* blocks, uint8_t* scales);

// Rows r0 .. r0 + n − 1 of m as Rows-layout pointers: m's own bytes when m is laid out as Rows, else the
// rows unpacked into `blocks` / `scales` (resized as needed).
struct RowsView {
  const uint8_t* blocks;
  const uint8_t* scales;
};
inline RowsView rows_of(const MxFp4Matrix& m, int64_t r0, int n, std::vector<uint8_t>& blocks, std::vector<uint8_t>& scales) {
  const int64_t nb = m.cols / 32;
  if (m.layout == MxFp4Layout::Rows) return {m.blocks + r0 * nb * 16, m.scales + r0 * nb};
  blocks.resize(static_cast<size_t>(n * nb * 16)), scales.resize(static_cast<size_t>(n * nb));
  unpack_rows16(m, r0, n, blocks.data(), scales.data());
  return {blocks.data(), scales.data()};
}

}  // namespace gptoss::cpu
