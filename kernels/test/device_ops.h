// device_ops.h — test_ops on a real GPU. The cases keep their buffers in std::vectors; from
// use_managed_heap() on, operator new returns CUDA managed memory, so the nvcc-built op set reads and
// writes them as they are. synced_cuda_ops() is that op set with a device synchronize after every entry,
// so a case reads its results only after the kernels wrote them. Built only where nvcc is
// (GPTOSS_HAS_CUDA); the CUDA column runs only where a device is visible.
#pragma once

#include "../cpu/ops.h"

namespace gptoss::test {

void use_managed_heap();
const OpSet& synced_cuda_ops();

}  // namespace gptoss::test
