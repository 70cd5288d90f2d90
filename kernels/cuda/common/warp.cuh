// warp.cuh — the reductions and scans kernels use instead of cub (which cannot run emulated): written
// once on the _sync intrinsics, so nvcc and the emulator run the same operations in the same order
// (float results are bit-identical between the two builds).
// Contract: warp_* are called by all 32 lanes of a warp; block_* by every thread of the block, from
// the same call site, with a block of whole warps (blockDim.x * y * z a multiple of 32, at most 1024).
// Not here: segmented or multi-block reductions.
#pragma once

#include "../emu/emu.h"

namespace gptoss::cuda {

inline constexpr unsigned kFullWarp = 0xffffffffu;

__device__ __forceinline__ unsigned linear_thread_index() {
  return threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
}
__device__ __forceinline__ unsigned block_thread_count() { return blockDim.x * blockDim.y * blockDim.z; }

// Butterfly: every lane ends with the same value, summed in the same tree order.
template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(kFullWarp, v, offset);
  return v;
}

// Not IEEE maxNum: a NaN survives only where it is the value a lane already holds (`other > v` is
// false both ways); callers that can see NaN check for it themselves.
template <typename T>
__device__ __forceinline__ T warp_max(T v) {
  for (int offset = 16; offset > 0; offset >>= 1) {
    const T other = __shfl_xor_sync(kFullWarp, v, offset);
    v = other > v ? other : v;
  }
  return v;
}

// Inclusive prefix sum over the lanes of a warp (Hillis–Steele on __shfl_up_sync).
template <typename T>
__device__ __forceinline__ T warp_inclusive_scan(T v) {
  const unsigned lane = linear_thread_index() % 32;
  for (int offset = 1; offset < 32; offset <<= 1) {
    const T up = __shfl_up_sync(kFullWarp, v, offset);
    if (lane >= static_cast<unsigned>(offset)) v += up;
  }
  return v;
}

// The sum over every thread of the block, returned to all of them. The trailing barrier lets the
// caller use block_sum again at once (its scratch is reused).
template <typename T>
__device__ T block_sum(T v) {
  EMU_SHARED(T, partial, 33);
  const unsigned tid = linear_thread_index(), lane = tid % 32, warp = tid / 32, nwarps = block_thread_count() / 32;
  v = warp_sum(v);
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  if (warp == 0) {
    T x = warp_sum(lane < nwarps ? partial[lane] : T(0));
    if (lane == 0) partial[32] = x;
  }
  __syncthreads();
  const T total = partial[32];
  __syncthreads();
  return total;
}

// Exclusive prefix sum in linear thread order: thread i gets v_0 + … + v_{i-1} (thread 0 gets 0).
// `block_total`, when given, receives the sum over the whole block in every thread.
template <typename T>
__device__ T block_exclusive_scan(T v, T* block_total = nullptr) {
  EMU_SHARED(T, warp_prefix, 33);
  const unsigned tid = linear_thread_index(), lane = tid % 32, warp = tid / 32, nwarps = block_thread_count() / 32;
  const T inclusive = warp_inclusive_scan(v);
  T exclusive = __shfl_up_sync(kFullWarp, inclusive, 1);
  if (lane == 0) exclusive = T(0);
  if (lane == 31) warp_prefix[warp] = inclusive;
  __syncthreads();
  if (warp == 0) {
    const T total = lane < nwarps ? warp_prefix[lane] : T(0);
    const T scanned = warp_inclusive_scan(total);
    T before = __shfl_up_sync(kFullWarp, scanned, 1);
    if (lane == 0) before = T(0);
    if (lane < nwarps) warp_prefix[lane] = before;
    if (lane == 31) warp_prefix[32] = scanned;
  }
  __syncthreads();
  const T result = warp_prefix[warp] + exclusive;
  if (block_total) *block_total = warp_prefix[32];
  __syncthreads();
  return result;
}

}  // namespace gptoss::cuda
