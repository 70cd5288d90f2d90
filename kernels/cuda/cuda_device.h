// cuda_device.h — the CUDA runtime as seen from host code that is compiled without nvcc.
// When the build has no CUDA, cuda_device_stub.cpp answers "not compiled".
#pragma once

#include <string>

namespace gptoss::cuda {

struct DeviceProbe {
  bool compiled;
  int device_count;
  std::string architectures;  // CMAKE_CUDA_ARCHITECTURES of this build
  std::string error;          // why device_count is 0
};

DeviceProbe probe_devices();

}  // namespace gptoss::cuda
