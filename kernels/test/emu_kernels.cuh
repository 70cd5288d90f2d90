// emu_kernels.cuh — the kernels of test_emu, written once for both builds: test_emu.cpp runs them
// under the emulator (g++), cuda/emu_selftest.cu compiles the same text with nvcc for sm_80/sm_90,
// so the kernel-facing API (EMU_SHARED, EMU_LAUNCH, the warp and mma wrappers) is checked in both.
// Each kernel exercises one feature; test_emu.cpp holds the expectations.
#pragma once

#include <cstdint>

#include "../cuda/common/device.cuh"
#include "../cuda/common/mma.cuh"
#include "../cuda/common/warp.cuh"
#include "../cuda/emu/emu.h"

namespace gptoss::emu_test {

// --- kernels -----------------------------------------------------------------------------------------

__global__ void saxpy_grid_stride(int n, float a, const float* x, float* y) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) y[i] = a * x[i] + y[i];
}

// Every thread's (x, y, z) and its block's, so the test can check the built-in variables.
__global__ void thread_coordinates(unsigned* out) {
  const unsigned block = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
  const unsigned tid = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  unsigned* o = out + 4 * (block * blockDim.x * blockDim.y * blockDim.z + tid);
  o[0] = threadIdx.x | threadIdx.y << 10 | threadIdx.z << 20;
  o[1] = blockIdx.x | blockIdx.y << 10 | blockIdx.z << 20;
  o[2] = blockDim.x | blockDim.y << 10 | blockDim.z << 20;
  o[3] = gridDim.x | gridDim.y << 10 | gridDim.z << 20;
}

// A tree sum in shared memory: each level reads what other threads wrote before the barrier.
// blockDim.x must be a power of two ≤ 1024.
__global__ void shared_tree_sum(const int* in, int* out) {
  EMU_SHARED(int, tree, 1024);
  EMU_SHARED(int, reversed, 1024);
  const unsigned t = threadIdx.x, n = blockDim.x;
  tree[t] = in[blockIdx.x * n + t];
  reversed[n - 1 - t] = tree[t];
  __syncthreads();
  for (unsigned stride = n / 2; stride > 0; stride /= 2) {
    if (t < stride) tree[t] += tree[t + stride];
    __syncthreads();
  }
  out[blockIdx.x * (n + 1) + t] = reversed[t];
  if (t == 0) out[blockIdx.x * (n + 1) + n] = tree[0];
}

// Half of the block waits at one barrier, the other half at another: can never complete.
__global__ void divergent_barrier(int* out) {
  if (threadIdx.x < blockDim.x / 2) __syncthreads();
  out[threadIdx.x] = 1;
  __syncthreads();
}

// Lanes 0–15 shuffle while lanes 16–31 run a different collective: lanes diverged.
__global__ void divergent_collective(int* out) {
  if (threadIdx.x < 16) out[threadIdx.x] = __shfl_sync(0xffffffffu, static_cast<int>(threadIdx.x), 0);
  else __syncwarp();
}

// Lane 0 waits at __syncthreads for the others, which wait for it at a shuffle.
__global__ void barrier_against_collective(int* out) {
  if (threadIdx.x == 0) __syncthreads();
  else out[threadIdx.x] = __shfl_sync(0xffffffffu, static_cast<int>(threadIdx.x), 0);
}

// Lane 31 exits while the others shuffle with a mask that names it.
__global__ void collective_after_exit(int* out) {
  if (threadIdx.x == 31) return;
  out[threadIdx.x] = __shfl_down_sync(0xffffffffu, static_cast<int>(threadIdx.x), 1);
}

// Shuffles under partial masks; every lane writes 4 results (see test_emu.cpp for the expectations).
__global__ void partial_mask_shuffles(int* out) {
  const int lane = threadIdx.x % 32;
  int* o = out + 4 * threadIdx.x;
  const int v = 10 * lane;
  if (lane < 16) o[0] = __shfl_down_sync(0x0000ffffu, v, 1, 16);
  else o[0] = __shfl_xor_sync(0xffff0000u, v, 1);
  if (lane % 2 == 0) o[1] = __shfl_sync(0x55555555u, v, (lane + 2) % 32);
  else o[1] = __shfl_up_sync(0xaaaaaaaau, v, 2);
  o[2] = __shfl_sync(0xffffffffu, v, 31 - lane, 8);
  o[3] = lane < 8 ? __shfl_xor_sync(0x000000ffu, v, 4, 8) : __shfl_up_sync(0xffffff00u, v, 1);
}

__global__ void ballots(unsigned* out) {
  const unsigned lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const unsigned all = __ballot_sync(0xffffffffu, (threadIdx.x % 3) == 0);
  unsigned odd = 0;
  if (lane % 2 == 1) odd = __ballot_sync(0xaaaaaaaau, lane > 20);
  __syncwarp();
  if (lane == 0) out[2 * warp] = all;
  if (lane == 1) out[2 * warp + 1] = odd;
}

// counters: [0] int adds, [1] unsigned adds, [2] max, [3] CAS winner count, [4] the CAS slot;
// fsum: float adds of 0.5 (exact in fp32 at these counts).
__global__ void atomics(int* counters, float* fsum) {
  const int gtid = blockIdx.x * blockDim.x + threadIdx.x;
  atomicAdd(&counters[0], 1);
  __syncthreads();  // interleave the blocks' threads between the two halves
  atomicAdd(reinterpret_cast<unsigned*>(&counters[1]), 2u);
  atomicAdd(fsum, 0.5f);
  atomicMax(&counters[2], (gtid * 7919) % 10007);
  if (atomicCAS(&counters[4], -1, gtid) == -1) atomicAdd(&counters[3], 1);
}

// Dynamic shared memory of 2·blockDim.x floats beside a static array: neither may overlap the other.
__global__ void dynamic_shared(const float* in, float* out) {
  EMU_DYNAMIC_SHARED(float, buf);
  EMU_SHARED(float, tag, 32);
  const unsigned t = threadIdx.x, n = blockDim.x;
  if (t < 32) tag[t] = -1.0f;
  buf[t] = in[blockIdx.x * n + t];
  buf[n + t] = 2.0f * in[blockIdx.x * n + t];
  __syncthreads();
  out[blockIdx.x * n + t] = buf[n - 1 - t] + buf[2 * n - 1 - t] + tag[t % 32] + 1.0f;
}

// warp_sum / warp_max per warp, block_sum twice in a row, the exclusive scan and its total.
__global__ void reductions(const float* x, const int* v, float* warp_sums, float* warp_maxes, float* block_sums,
                           int* scan, int* scan_total) {
  const unsigned t = threadIdx.x, warp = t / 32;
  const float xv = x[blockIdx.x * blockDim.x + t];
  const float ws = cuda::warp_sum(xv), wm = cuda::warp_max(xv);
  if (t % 32 == 0) {
    warp_sums[blockIdx.x * (blockDim.x / 32) + warp] = ws;
    warp_maxes[blockIdx.x * (blockDim.x / 32) + warp] = wm;
  }
  const float s1 = cuda::block_sum(xv);
  const float s2 = cuda::block_sum(2.0f * xv);
  if (t == 0) {
    block_sums[2 * blockIdx.x] = s1;
    block_sums[2 * blockIdx.x + 1] = s2;
  }
  int total = 0;
  scan[blockIdx.x * blockDim.x + t] = cuda::block_exclusive_scan(v[blockIdx.x * blockDim.x + t], &total);
  if (t == blockDim.x - 1) scan_total[blockIdx.x] = total;
}

// One warp: loads the fragments of A (16×16 row-major bf16) and B (16×8, stored as B[k][n]) by the
// documented layout, runs the tensor-core product with C, writes D (16×8 row-major fp32).
__global__ void mma_tile(const uint16_t* A, const uint16_t* B, const float* C, float* D) {
  const int lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  auto pack = [](uint16_t lo, uint16_t hi) { return static_cast<uint32_t>(lo) | static_cast<uint32_t>(hi) << 16; };
  uint32_t a[4], b[2];
  float c[4], d[4];
  for (int r = 0; r < 4; ++r) {
    const int row = g + (r & 1) * 8, col = 2 * t + (r >> 1) * 8;
    a[r] = pack(A[row * 16 + col], A[row * 16 + col + 1]);
  }
  for (int r = 0; r < 2; ++r) b[r] = pack(B[(2 * t + r * 8) * 8 + g], B[(2 * t + r * 8 + 1) * 8 + g]);
  for (int i = 0; i < 4; ++i) c[i] = C[(g + (i >> 1) * 8) * 8 + 2 * t + (i & 1)];
  cuda::mma_m16n8k16_bf16(d, a, b, c);
  for (int i = 0; i < 4; ++i) D[(g + (i >> 1) * 8) * 8 + 2 * t + (i & 1)] = d[i];
}

// `rounds` × 2 barriers per thread, with a little shared-memory traffic between them (bench_emu).
__global__ void barrier_rounds(int rounds, int* out) {
  EMU_SHARED(int, cell, 1024);
  int acc = 0;
  for (int r = 0; r < rounds; ++r) {
    cell[threadIdx.x] = r + static_cast<int>(threadIdx.x);
    __syncthreads();
    acc += cell[(threadIdx.x + 1) % blockDim.x];
    __syncthreads();
  }
  out[blockIdx.x * blockDim.x + threadIdx.x] = acc;
}

// `rounds` warp_sum calls per thread (5 shuffles each): the collectives' benchmark (bench_emu).
__global__ void shuffle_rounds(int rounds, float* out) {
  float acc = 0.0f;
  for (int r = 0; r < rounds; ++r) acc += cuda::warp_sum(static_cast<float>(threadIdx.x + r));
  out[blockIdx.x * blockDim.x + threadIdx.x] = acc;
}

// --- launchers ---------------------------------------------------------------------------------------

inline void launch_saxpy(int n, float a, const float* x, float* y, int blocks, int threads, emu_stream_t stream = nullptr) {
  EMU_LAUNCH(saxpy_grid_stride, dim3(blocks), dim3(threads), 0, stream, n, a, x, y);
  cuda::dev_check_launch("saxpy_grid_stride");
}

inline void launch_dynamic_shared(const float* in, float* out, int blocks, int threads, emu_stream_t stream = nullptr) {
  EMU_LAUNCH(dynamic_shared, dim3(blocks), dim3(threads), 2 * threads * sizeof(float), stream, in, out);
  cuda::dev_check_launch("dynamic_shared");
}

// y = a·y + x, elementwise (two in a row do not commute with each other: a replay that reorders shows).
__global__ void scale_add(float* y, const float* x, float a, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = a * y[i] + x[i];
}

inline void launch_scale_add(float* y, const float* x, float a, int n, emu_stream_t stream = nullptr) {
  EMU_LAUNCH(scale_add, dim3((n + 63) / 64), dim3(64), 0, stream, y, x, a, n);
  cuda::dev_check_launch("scale_add");
}

inline void launch_mma_tile(const uint16_t* A, const uint16_t* B, const float* C, float* D, emu_stream_t stream = nullptr) {
  EMU_LAUNCH(mma_tile, dim3(1), dim3(32), 0, stream, A, B, C, D);
  cuda::dev_check_launch("mma_tile");
}

}  // namespace gptoss::emu_test
