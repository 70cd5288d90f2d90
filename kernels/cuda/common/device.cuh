// device.cuh — device memory for the launchers, the same calls in both builds: cudaMalloc and friends
// under nvcc, aligned host memory under the emulator (where every device pointer is a host pointer).
// Failures throw gptoss::Error naming the call. Copies are synchronous and take either direction
// (cudaMemcpyDefault: unified addressing tells host from device pointers).
#pragma once

#include <cstddef>
#include <cstring>
#include <new>
#include <string>

#include "../../core/error.h"
#include "../emu/emu.h"

namespace gptoss::cuda {

#if defined(__CUDACC__)

inline void dev_check(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return;
  cudaGetLastError();  // clear a sticky launch error so the next check reports its own
  fail(err == cudaErrorMemoryAllocation ? gptoss_status_insufficient_memory : gptoss_status_unsupported_system,
       std::string(what) + ": " + cudaGetErrorString(err));
}
inline void* dev_malloc(size_t bytes) {
  void* p = nullptr;
  if (bytes) dev_check(cudaMalloc(&p, bytes), "cudaMalloc");
  return p;
}
inline void dev_free(void* p) {
  if (p) cudaFree(p);
}
inline void dev_memcpy(void* dst, const void* src, size_t bytes) { dev_check(cudaMemcpy(dst, src, bytes, cudaMemcpyDefault), "cudaMemcpy"); }
inline void dev_memset(void* p, int byte, size_t bytes) { dev_check(cudaMemset(p, byte, bytes), "cudaMemset"); }
inline void dev_synchronize() { dev_check(cudaDeviceSynchronize(), "cudaDeviceSynchronize"); }
// After a launch: a bad configuration shows up here, a fault in the kernel at the next synchronize.
inline void dev_check_launch(const char* kernel) { dev_check(cudaGetLastError(), kernel); }

#else

// 256-byte alignment as cudaMalloc gives, so vector loads in kernels behave the same.
inline void* dev_malloc(size_t bytes) {
  if (!bytes) return nullptr;
  void* p = ::operator new(bytes, std::align_val_t{256}, std::nothrow);
  check(p != nullptr, gptoss_status_insufficient_memory, "dev_malloc: " + std::to_string(bytes) + " bytes (emulator)");
  return p;
}
inline void dev_free(void* p) {
  if (p) ::operator delete(p, std::align_val_t{256});
}
inline void dev_memcpy(void* dst, const void* src, size_t bytes) {
  if (bytes) std::memmove(dst, src, bytes);
}
inline void dev_memset(void* p, int byte, size_t bytes) {
  if (bytes) std::memset(p, byte, bytes);
}
inline void dev_synchronize() {}
inline void dev_check_launch(const char*) {}  // the emulator aborts on a bad launch configuration

#endif

template <typename T>
T* dev_alloc(size_t count) {
  return static_cast<T*>(dev_malloc(count * sizeof(T)));
}

}  // namespace gptoss::cuda
