// simd.h — which vector path the CPU ops take on this host, decided once (cpu_features.cpp) and
// overridable with EXPERTMESH_SIMD=scalar|avx2|avx512 for tests and benchmarks.
#pragma once

namespace gptoss::cpu {

enum class Simd { Scalar, Avx2, Avx512 };

Simd simd_level();
const char* simd_name(Simd s);

}  // namespace gptoss::cpu
