// emu_selftest.cu — nvcc's half of the emulator's test: compiles test/emu_kernels.cuh (the kernels
// test_emu runs under the emulator) for the build's GPU architectures, so EMU_SHARED, EMU_LAUNCH,
// the warp wrappers, the inline-PTX mma and the graph capture stay valid CUDA. Compile-only: nothing
// links or runs it.
#include "../cuda/common/graph.cuh"
#include "../test/emu_kernels.cuh"

namespace gptoss::emu_test {
// test_emu's graph case, as nvcc sees it.
inline void capture_scale_add(cuda::LaunchGraph& g, float* y, const float* x, int n) {
  g.begin_capture();
  launch_scale_add(y, x, 2.0f, n);
  g.end_capture();
  g.replay();
}
}  // namespace gptoss::emu_test
