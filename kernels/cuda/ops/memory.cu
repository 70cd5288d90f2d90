// memory.cu — the CUDA backend's memory: cudaMalloc'ed under nvcc; under the emulator host allocations
// that the engine still reaches only by copies (host_is_device false), as it must on a GPU.
#include "../../cpu/ops.h"
#include "common.cuh"

namespace gptoss::cuda::GPTOSS_CUDA_NS {

void* device_alloc(size_t bytes) { return dev_malloc(bytes); }
void device_release(void* p) { dev_free(p); }
void device_copy(void* dst, const void* src, size_t bytes) {
  if (bytes) dev_memcpy(dst, src, bytes);
}
void device_zero(void* dst, size_t bytes) {
  if (bytes) dev_memset(dst, 0, bytes);
}

}  // namespace gptoss::cuda::GPTOSS_CUDA_NS
