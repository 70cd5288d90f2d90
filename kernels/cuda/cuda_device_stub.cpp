// cuda_device_stub.cpp — used when the build has no nvcc: CUDA is reported as not compiled.
#include "cuda_device.h"

namespace gptoss::cuda {

DeviceProbe probe_devices() { return DeviceProbe{false, 0, "", "built without CUDA (nvcc not found)"}; }

}  // namespace gptoss::cuda
