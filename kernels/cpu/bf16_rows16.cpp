// bf16_rows16.cpp — unpack_bf16_rows16 (cpu/bf16_rows16.h): each row's pairs gathered from its lane of
// the group's 64-byte pair vectors.
#include "bf16_rows16.h"

#include <cstring>

namespace gptoss::cpu {

void unpack_bf16_rows16(const MatrixBF16& m, int64_t r0, int n, bf16_t* out, int64_t ld) {
  const int64_t pairs = bf16_pairs(m.cols), whole = m.cols / 2;
  for (int i = 0; i < n; ++i) {
    const bf16_t* src = m.data + bf16_rows16_offset(m.cols, r0 + i, 0);
    bf16_t* dst = out + i * ld;
    for (int64_t p = 0; p < whole; ++p) std::memcpy(dst + 2 * p, src + 32 * p, 4);  // pair p lies 16 lanes on
    if (whole < pairs) dst[2 * whole] = src[32 * whole];
  }
}

}  // namespace gptoss::cpu
