// emu.h — the one header a kernel source includes so that the same `.cu` text builds with nvcc for the
// GPU and with g++ for the CPU emulator (CI has no GPU). Under nvcc it is the CUDA runtime plus the
// macros below; under any other compiler it is a header-only CUDA emulator.
//
// Model of execution (emulator):
//   - A launch runs its blocks one after another (x fastest), synchronously, on the calling OS thread.
//   - Each CUDA thread of the block is a fiber (fiber.h: a register-saving switch on x86-64,
//     ucontext's makecontext/swapcontext elsewhere or with EMU_FIBER_UCONTEXT). A thread runs without
//     switching until it reaches __syncthreads, a warp collective or its end; then the next ready
//     thread runs. Fiber stacks (EMU_STACK_KB, default 256) are mapped once and reused by every
//     block after.
//   - __syncthreads waits for all live threads of the block at the same call site; exited threads
//     no longer count. Warps are 32 consecutive linear thread ids; a _sync collective waits only for
//     the lanes of its mask, which must all call the same collective with the same mask.
//   - A barrier or collective that can never complete (threads at different __syncthreads, lanes at
//     different collectives, a mask naming an exited lane) aborts with "emu: barrier divergence"
//     and what each thread waits for, instead of hanging.
//   - Shared memory is per block, filled with 0xff bytes when a block starts (uninitialised reads
//     show as NaN / -1); static up to 48 KiB, dynamic up to 227 KiB as on sm_90.
// Not emulated: the memory model and data races (threads interleave only at barriers, so a missing
//   __syncthreads between a write and another thread's read is not caught unless a barrier reorders
//   them), warp-synchronous code without _sync intrinsics or __activemask, clocks and timing,
//   streams and events (launches are synchronous), textures, cooperative groups, dynamic parallelism,
//   cuda_bf16.h / cuda_fp16.h types (kernels pass bf16 as raw uint16_t / packed uint32_t).
//
// Kernel-facing API (both builds):
//   __global__ __device__ __host__ __forceinline__ __launch_bounds__(...) __restrict__
//   dim3, threadIdx, blockIdx, blockDim, gridDim, warpSize
//   __syncthreads(), __syncwarp(mask), __shfl_sync / __shfl_up_sync / __shfl_down_sync /
//     __shfl_xor_sync(mask, value, lane|delta|xor, width = 32), __ballot_sync, __any_sync, __all_sync
//   atomicAdd (int, unsigned, unsigned long long, float, double), atomicSub, atomicMax, atomicMin,
//     atomicExch, atomicCAS (int, unsigned, unsigned long long)
//   __float_as_uint and friends, __popc, __clz, __ffs
//   EMU_SHARED(type, name, count)    a per-block array `type name[count]` (instead of `__shared__`);
//                                    declare it at the top of a kernel or __device__ function
//   EMU_DYNAMIC_SHARED(type, name)   `type* name` at the block's dynamic shared memory
//                                    (instead of `extern __shared__`), sized by the launch
//   EMU_LAUNCH(kernel, grid, block, shmem, stream, args...)   `kernel<<<grid, block, shmem, stream>>>(args...)`;
//                                    a template kernel with several arguments needs parentheses or an alias
//   emu_stream_t                     cudaStream_t, or an ignored handle under the emulator
// Device memory: dev_malloc / dev_free / dev_memcpy in ../common/device.cuh.
#pragma once

#if defined(__CUDACC__)

#include <cuda_runtime.h>

#define EMU_SHARED(type, name, count) __shared__ type name[count]
#define EMU_DYNAMIC_SHARED(type, name)                              \
  extern __shared__ __align__(16) unsigned char emu_dynamic_smem_[]; \
  type* name = reinterpret_cast<type*>(emu_dynamic_smem_)
#define EMU_LAUNCH(kernel, grid, block, shmem, stream, ...) kernel<<<(grid), (block), (shmem), (stream)>>>(__VA_ARGS__)
using emu_stream_t = cudaStream_t;

#else  // the emulator

#include "block.h"
#include "intrinsics.h"
#include "launch.h"

#define EMU_ACTIVE 1
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))

// The built-in variables, read from the running fiber and block.
#define threadIdx (static_cast<const dim3&>(::emu::detail::g_self->idx))
#define blockIdx (static_cast<const dim3&>(::emu::detail::g_sched->block_idx))
#define blockDim (static_cast<const dim3&>(::emu::detail::g_sched->block_dim))
#define gridDim (static_cast<const dim3&>(::emu::detail::g_sched->grid_dim))
inline constexpr int warpSize = 32;

// The static tag's address names the declaration: all threads of a block, and every call of the
// function that declares it, get the same slice of the block's arena. (A mutable tag: constants
// could be merged and share an address.)
#define EMU_SHARED(type, name, count)                          \
  static char name##_emu_decl_;                                \
  auto& name = *reinterpret_cast<type(*)[count]>(              \
      ::emu::detail::static_shared(&name##_emu_decl_, sizeof(type) * (count)))
#define EMU_DYNAMIC_SHARED(type, name) type* name = static_cast<type*>(::emu::detail::dynamic_shared())
#define EMU_LAUNCH(kernel, grid, block, shmem, stream, ...) \
  ((void)(stream), ::emu::launch(kernel, (grid), (block), (shmem)__VA_OPT__(, ) __VA_ARGS__))
using emu_stream_t = struct emu_stream_*;

#endif
