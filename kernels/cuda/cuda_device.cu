// cuda_device.cu — counts visible devices. Safe without a driver: the static cudart reports
// cudaErrorNoDevice / cudaErrorInsufficientDriver instead of failing to load.
#include "cuda_device.h"

#include <cuda_runtime.h>

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

}  // namespace gptoss::cuda
