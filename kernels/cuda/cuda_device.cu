// cuda_device.cu — counts visible devices. Safe without a driver: the static cudart reports
// cudaErrorNoDevice / cudaErrorInsufficientDriver instead of failing to load.
#include "cuda_device.h"

#include <cuda_runtime.h>

#include <string>

#include "../core/error.h"
#include "ops/cuda_ops.h"

namespace gptoss::cuda {

DeviceProbe probe_devices() {
  DeviceProbe p{true, 0, GPTOSS_CUDA_ARCHITECTURES, ""};
  int n = 0;
  const cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) {
    p.error = cudaGetErrorString(err);
    cudaGetLastError();  // clear the sticky error so later probes start clean
    return p;
  }
  p.device_count = n;
  return p;
}

const OpSet& device_ops(int ordinal) {
  const DeviceProbe p = probe_devices();
  check(ordinal >= 0 && ordinal < p.device_count, gptoss_status_invalid_argument,
        "engine_create: backend 'cuda:" + std::to_string(ordinal) + "' is not available (" +
            (p.device_count ? std::to_string(p.device_count) + " CUDA device(s) visible" : "no CUDA device: " + p.error) + ")");
  use_device(ordinal);
  return nv::cuda_ops();
}

void use_device(int ordinal) {
  const cudaError_t err = cudaSetDevice(ordinal);
  check(err == cudaSuccess, gptoss_status_unsupported_system, std::string("cudaSetDevice: ") + cudaGetErrorString(err));
}

}  // namespace gptoss::cuda
