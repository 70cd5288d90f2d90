// cuda_device.h — the CUDA runtime as seen from host code that is compiled without nvcc.
// When the build has no CUDA, cuda_device_stub.cpp answers "not compiled".
#pragma once

#include <string>

namespace gptoss {
struct OpSet;
}

namespace gptoss::cuda {

struct DeviceProbe {
  bool compiled;
  int device_count;
  std::string architectures;  // CMAKE_CUDA_ARCHITECTURES of this build
  std::string error;          // why device_count is 0
};

DeviceProbe probe_devices();

// The CUDA op set ("cuda", built by nvcc) with `ordinal` made the calling thread's device. Throws
// invalid_argument: "backend not built" when the build has no CUDA, "not available" without device N.
const OpSet& device_ops(int ordinal);
// Makes `ordinal` the calling thread's current device: a step may run on any of the addon's worker
// threads, and the CUDA runtime's current device is per thread.
void use_device(int ordinal);

}  // namespace gptoss::cuda
