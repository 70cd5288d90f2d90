// mma.cuh — the tensor-core product D = A·B + C for one 16×16 (bf16, row) by 16×8 (bf16, col) tile
// with fp32 accumulation, called by all 32 lanes of a warp with their register fragments. Under nvcc it
// is the PTX instruction mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 (sm_80 and later); under
// the emulator a warp collective computes the same tile from the same fragments.
//
// Fragments (PTX ISA, "Matrix fragments for mma.m16n8k16"), with g = lane / 4 and t = lane % 4; each
// 32-bit register packs two bf16, the lower-indexed element in the low 16 bits:
//   A, 4 registers: a[0] = A[g][2t, 2t+1]     a[1] = A[g+8][2t, 2t+1]
//                   a[2] = A[g][2t+8, 2t+9]   a[3] = A[g+8][2t+8, 2t+9]
//   B, 2 registers: b[0] = B[2t, 2t+1][g]     b[1] = B[2t+8, 2t+9][g]      (B is K×N, k pairs per n)
//   C, D, 4 floats: c[0], c[1] = C[g][2t, 2t+1]   c[2], c[3] = C[g+8][2t, 2t+1]
// The emulator sums the 16 products of a dot in k order in fp32 after C; the hardware's order and
// internal precision differ, so results agree to fp32 rounding, not bit for bit.
#pragma once

#include <cstdint>

#include "../emu/emu.h"

#if !defined(__CUDACC__)
#include <cstring>

#include "../../core/bf16.h"
#endif

namespace gptoss::cuda {

#if !defined(__CUDACC__)
namespace emu_mma {

struct In {
  uint32_t a[4], b[2];
  float c[4];
};

inline float lo(uint32_t r) { return bf16_to_f32(static_cast<bf16_t>(r & 0xffffu)); }
inline float hi(uint32_t r) { return bf16_to_f32(static_cast<bf16_t>(r >> 16)); }

// Gathers the tiles from every lane's fragments, multiplies, scatters D back in C's layout.
inline void collective(::emu::detail::Warp& w, unsigned) {
  float A[16][16], B[16][8], C[16][8];
  for (int lane = 0; lane < 32; ++lane) {
    In in;
    std::memcpy(&in, w.lane[lane].in, sizeof in);
    const int g = lane / 4, t = lane % 4;
    for (int r = 0; r < 4; ++r) {
      const int row = g + (r & 1) * 8, col = 2 * t + (r >> 1) * 8;
      A[row][col] = lo(in.a[r]);
      A[row][col + 1] = hi(in.a[r]);
    }
    for (int r = 0; r < 2; ++r) {
      B[2 * t + r * 8][g] = lo(in.b[r]);
      B[2 * t + r * 8 + 1][g] = hi(in.b[r]);
    }
    for (int i = 0; i < 4; ++i) C[g + (i >> 1) * 8][2 * t + (i & 1)] = in.c[i];
  }
  for (int lane = 0; lane < 32; ++lane) {
    const int g = lane / 4, t = lane % 4;
    float d[4];
    for (int i = 0; i < 4; ++i) {
      const int row = g + (i >> 1) * 8, col = 2 * t + (i & 1);
      float acc = C[row][col];
      for (int k = 0; k < 16; ++k) acc += A[row][k] * B[k][col];
      d[i] = acc;
    }
    std::memcpy(w.lane[lane].out, d, sizeof d);
  }
}

}  // namespace emu_mma
#endif

// d may alias c.
__device__ __forceinline__ void mma_m16n8k16_bf16(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4]) {
#if defined(__CUDACC__)
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%10, %11, %12, %13};\n"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]), "f"(c[3]));
#elif defined(__CUDA_ARCH__)
  __trap();  // built for an architecture without bf16 tensor cores (the build targets sm_80 and sm_90)
#endif
#else
  emu_mma::In in;
  std::memcpy(in.a, a, sizeof in.a);
  std::memcpy(in.b, b, sizeof in.b);
  std::memcpy(in.c, c, sizeof in.c);
  std::memcpy(d, ::emu::detail::collective(0xffffffffu, emu_mma::collective, &in, sizeof in), 4 * sizeof(float));
#endif
}

}  // namespace gptoss::cuda
