// memory.cpp — the CPU backend's memory is host memory: 64-byte aligned (the SIMD kernels' vectors).
#include <sys/mman.h>

#include <cstring>
#include <map>
#include <mutex>
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

// Resident weights: large copies in anonymous memory on 2 MiB boundaries with transparent huge pages
// asked for, so a step's weight streams take one TLB entry per 2 MiB instead of per 4 KiB page (the
// checkpoint's file mapping is 4 KiB pages). Small ones are ordinary host memory.
namespace {
constexpr size_t kHuge = size_t{1} << 21;
std::mutex g_huge_mutex;
std::map<void*, size_t> g_huge;  // mapping → its length
}  // namespace

void* resident_alloc(size_t bytes) {
  if (bytes < kHuge) return host_alloc(bytes);
  const size_t len = (bytes + kHuge - 1) / kHuge * kHuge;
  void* raw = ::mmap(nullptr, len + kHuge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  check(raw != MAP_FAILED, gptoss_status_insufficient_memory, "cpu memory: cannot map " + std::to_string(bytes) + " bytes");
  // Keep the 2 MiB-aligned part only.
  const uintptr_t begin = reinterpret_cast<uintptr_t>(raw), aligned = (begin + kHuge - 1) / kHuge * kHuge;
  if (aligned > begin) ::munmap(raw, aligned - begin);
  if (aligned + len < begin + len + kHuge) ::munmap(reinterpret_cast<void*>(aligned + len), begin + len + kHuge - aligned - len);
  void* p = reinterpret_cast<void*>(aligned);
  ::madvise(p, len, MADV_HUGEPAGE);
  std::lock_guard lock(g_huge_mutex);
  g_huge.emplace(p, len);
  return p;
}
void resident_release(void* p) {
  if (!p) return;
  {
    std::lock_guard lock(g_huge_mutex);
    if (auto it = g_huge.find(p); it != g_huge.end()) {
      ::munmap(p, it->second);
      g_huge.erase(it);
      return;
    }
  }
  host_release(p);
}

const DeviceMemory& resident_memory() {
  static const DeviceMemory m{false, resident_alloc, resident_release, host_copy, host_copy, host_zero};
  return m;
}

}  // namespace gptoss::cpu
