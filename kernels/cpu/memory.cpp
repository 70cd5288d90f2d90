// memory.cpp — the CPU backend's memory is host memory: 64-byte aligned (the SIMD kernels' vectors).
#include <cstring>
#include <new>
#include <string>

#include "../core/error.h"
#include "ops.h"

namespace gptoss::cpu {

void* host_alloc(size_t bytes) {
  if (!bytes) return nullptr;
  void* p = ::operator new(bytes, std::align_val_t{64}, std::nothrow);
  check(p != nullptr, gptoss_status_insufficient_memory, "cpu memory: cannot allocate " + std::to_string(bytes) + " bytes");
  return p;
}
void host_release(void* p) {
  if (p) ::operator delete(p, std::align_val_t{64});
}
void host_copy(void* dst, const void* src, size_t bytes) {
  if (bytes) std::memcpy(dst, src, bytes);
}
void host_zero(void* dst, size_t bytes) {
  if (bytes) std::memset(dst, 0, bytes);
}

}  // namespace gptoss::cpu
