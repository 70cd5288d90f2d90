// device_ops.cu — see device_ops.h. Every block carries a header saying which allocator made it, so a
// block allocated before the switch is still freed by the one that made it.
#include "device_ops.h"

#include <cuda_runtime.h>

#include <cstdint>
#include <cstdlib>
#include <new>
#include <type_traits>

#include "../cuda/ops/cuda_ops.h"

namespace {

bool g_managed = false;
constexpr size_t kHeader = 64;  // keeps the payload aligned as malloc's is (and more)
constexpr uint64_t kHostTag = 0x686f7374ull, kManagedTag = 0x6d616e61ull;

void* allocate(size_t n) {
  void* base = nullptr;
  if (g_managed) {
    if (cudaMallocManaged(&base, n + kHeader) != cudaSuccess) base = nullptr;
  } else {
    base = std::malloc(n + kHeader);
  }
  if (base == nullptr) return nullptr;
  *static_cast<uint64_t*>(base) = g_managed ? kManagedTag : kHostTag;
  return static_cast<char*>(base) + kHeader;
}

void release(void* p) noexcept {
  if (p == nullptr) return;
  void* base = static_cast<char*>(p) - kHeader;
  if (*static_cast<uint64_t*>(base) == kManagedTag) cudaFree(base);
  else std::free(base);
}

void* allocate_or_throw(size_t n) {
  void* p = allocate(n);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

}  // namespace

void* operator new(size_t n) { return allocate_or_throw(n); }
void* operator new[](size_t n) { return allocate_or_throw(n); }
void* operator new(size_t n, const std::nothrow_t&) noexcept { return allocate(n); }
void* operator new[](size_t n, const std::nothrow_t&) noexcept { return allocate(n); }
void operator delete(void* p) noexcept { release(p); }
void operator delete[](void* p) noexcept { release(p); }
void operator delete(void* p, size_t) noexcept { release(p); }
void operator delete[](void* p, size_t) noexcept { release(p); }

namespace gptoss::test {

void use_managed_heap() { g_managed = true; }

namespace {

const OpSet* g_nv = nullptr;

// The entry M of the nvcc-built op set, then a device synchronize.
template <auto M, class F>
struct Synced;
template <auto M, class R, class... A>
struct Synced<M, R (*)(A...)> {
  static R call(A... a) {
    if constexpr (std::is_void_v<R>) {
      (g_nv->*M)(a...);
      cudaDeviceSynchronize();
    } else {
      R r = (g_nv->*M)(a...);
      cudaDeviceSynchronize();
      return r;
    }
  }
};

}  // namespace

const OpSet& synced_cuda_ops() {
  static const OpSet ops = [] {
    g_nv = &cuda::nv::cuda_ops();
    OpSet s = *g_nv;
#define GPTOSS_SYNCED(field) s.field = &Synced<&OpSet::field, decltype(OpSet::field)>::call
    GPTOSS_SYNCED(bf16w_embed);
    GPTOSS_SYNCED(f32_rmsnorm);
    GPTOSS_SYNCED(f32_bf16w_matmul);
    GPTOSS_SYNCED(bf16x2_bf16w_matmul);
    GPTOSS_SYNCED(f32_rope);
    GPTOSS_SYNCED(f32_sdpa_sinks);
    GPTOSS_SYNCED(f32_kv_store);
    GPTOSS_SYNCED(f32_router_topk);
    GPTOSS_SYNCED(q8_q8w_matmul);
    GPTOSS_SYNCED(f32_mxfp4w_matmul);
    GPTOSS_SYNCED(q8_mxfp4w_matmul);
    GPTOSS_SYNCED(f32_swiglu_oai);
    GPTOSS_SYNCED(f32_bf16w_unembed);
    GPTOSS_SYNCED(f32_add);
    GPTOSS_SYNCED(moe_route);
    GPTOSS_SYNCED(f32_scatter_rows);
    GPTOSS_SYNCED(f32_moe_combine);
    GPTOSS_SYNCED(f32_mxfp4w_moe);
    GPTOSS_SYNCED(q8_mxfp4w_moe);
    GPTOSS_SYNCED(f32_sample);
#undef GPTOSS_SYNCED
    return s;
  }();
  return ops;
}

}  // namespace gptoss::test
