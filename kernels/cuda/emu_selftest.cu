// emu_selftest.cu — nvcc's half of the emulator's test: compiles test/emu_kernels.cuh (the kernels
// test_emu runs under the emulator) for the build's GPU architectures, so EMU_SHARED, EMU_LAUNCH,
// the warp wrappers and the inline-PTX mma stay valid CUDA. Compile-only: nothing links or runs it.
#include "../test/emu_kernels.cuh"
