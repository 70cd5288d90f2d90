// common.cuh — small device helpers shared by the op kernels in this folder.
#pragma once

#include <cmath>
#include <cstdint>

#include "../common/device.cuh"
#include "../common/warp.cuh"
#include "../emu/emu.h"

// The op sources are built twice into one process (test_ops links both): by nvcc into gptoss::cuda::nv
// and by g++ against the emulator into gptoss::cuda::emulated, so their symbols never collide.
#if defined(__CUDACC__)
#define GPTOSS_CUDA_NS nv
#else
#define GPTOSS_CUDA_NS emulated
#endif

namespace gptoss::cuda::GPTOSS_CUDA_NS {

// bf16 is passed as raw bits (the emulator has no cuda_bf16.h): the top half of an fp32.
__device__ __forceinline__ float bf16_bits_to_f32(uint16_t v) { return __uint_as_float(static_cast<uint32_t>(v) << 16); }

// Grid for a grid-stride loop over n items with `threads` per block, capped so huge n still launches.
inline unsigned grid_for(int64_t n, int threads, unsigned cap = 65535) {
  const int64_t blocks = (n + threads - 1) / threads;
  return static_cast<unsigned>(blocks < 1 ? 1 : (blocks > cap ? cap : blocks));
}

// Warp argmax over (value, index): larger value wins, equal values go to the lower index.
__device__ __forceinline__ void warp_argmax(float& v, int& idx) {
  for (int off = 16; off > 0; off >>= 1) {
    const float ov = __shfl_xor_sync(kFullWarp, v, off);
    const int oi = __shfl_xor_sync(kFullWarp, idx, off);
    if (ov > v || (ov == v && oi < idx)) v = ov, idx = oi;
  }
}

}  // namespace gptoss::cuda::GPTOSS_CUDA_NS
