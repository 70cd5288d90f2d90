// host_device.h — marks a small function as callable from host and device code alike (nvcc and the
// emulator), for the few plain-arithmetic helpers both sides share.
#pragma once

#if defined(__CUDACC__)
#define GPTOSS_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define GPTOSS_HOST_DEVICE inline
#endif
