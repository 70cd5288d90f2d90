// cuda_ops.h — the CUDA backend's OpSet: "cuda" when the op sources are built by nvcc, "cuda-emu" when
// the same sources are built by g++ against the emulator (cuda/emu), which is how CI tests them.
// Memory (first version): every entry takes the pointers the CPU op set takes. Under the emulator
// device memory is host memory, so they pass straight through; under nvcc they must be device
// pointers (weights, activations, ids, positions, logits). Launchers read only shapes on the host.
// Entries not written yet throw "not implemented on cuda yet"; cuda_op_ready tells tests which.
#pragma once

#include "../../cpu/ops.h"

// Both builds can live in one process, so each has its own namespace: nv (nvcc, in gptoss_cuda when
// GPTOSS_HAS_CUDA) and emulated (g++ against the emulator, gptoss_cuda_emu, always built).
namespace gptoss::cuda {
namespace nv {
const OpSet& cuda_ops();
// Whether the OpSet entry named by its field name (e.g. "f32_rmsnorm") has a CUDA implementation.
bool cuda_op_ready(const char* entry);
}  // namespace nv
namespace emulated {
const OpSet& cuda_ops();
bool cuda_op_ready(const char* entry);
}  // namespace emulated
}  // namespace gptoss::cuda
