// cuda_device_stub.cpp — used when the build has no nvcc: CUDA is reported as not compiled.
#include "cuda_device.h"

#include <string>

#include "../core/error.h"

namespace gptoss::cuda {

DeviceProbe probe_devices() { return DeviceProbe{false, 0, "", "built without CUDA (nvcc not found)"}; }

const OpSet& device_ops(int ordinal) {
  fail(gptoss_status_invalid_argument,
       "engine_create: backend not built: 'cuda:" + std::to_string(ordinal) + "' (this build has no CUDA: nvcc was not found)");
}

void use_device(int) {}

}  // namespace gptoss::cuda
