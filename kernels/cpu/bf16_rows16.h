// bf16_rows16.h — rows of a Rows16 bf16 matrix (core/tensor.h) back in row-major order, for the kernels
// that read a matrix row by row: the exact products (cpu/matmul.cpp) and the panel packer of both
// precisions. They unpack a tile into a per-thread buffer just before using it, so exact results are the
// same bits whichever layout the weights were placed in.
#pragma once

#include <cstdint>
#include <vector>

#include "../core/tensor.h"

namespace gptoss::cpu {

// Rows r0 .. r0 + n − 1 of m (layout Rows16) into out[n][ld], ld ≥ m.cols.
void unpack_bf16_rows16(const MatrixBF16& m, int64_t r0, int n, bf16_t* out, int64_t ld);

// Rows r0 .. r0 + n − 1 of m as a row-major view: m's own elements when m is laid out as Rows, else the
// rows unpacked into `buf` (resized as needed).
struct BF16Rows {
  const bf16_t* data;
  int64_t ld;
};
inline BF16Rows bf16_rows_of(const MatrixBF16& m, int64_t r0, int n, std::vector<bf16_t>& buf) {
  if (m.layout == BF16Layout::Rows) return {m.data + r0 * m.ld, m.ld};
  buf.resize(static_cast<size_t>(n * m.cols));
  unpack_bf16_rows16(m, r0, n, buf.data(), m.cols);
  return {buf.data(), m.cols};
}

}  // namespace gptoss::cpu
