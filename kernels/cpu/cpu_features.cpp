// cpu_features.cpp — which SIMD paths this host can run. Uses GCC's CPUID builtins (which also check
// that the OS saves the wider register state) plus XCR0 for AMX tile state.
#include "cpu_features.h"

#include <cpuid.h>

#include <cstdlib>
#include <cstring>
#include <thread>

#include "simd.h"

namespace gptoss::cpu {

static bool os_enabled_amx() {
  unsigned eax, ebx, ecx, edx;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx) || !(ecx & bit_OSXSAVE)) return false;
  unsigned lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  const unsigned long long xcr0 = (static_cast<unsigned long long>(hi) << 32) | lo;
  return (xcr0 & (3ull << 17)) == (3ull << 17);  // XTILECFG and XTILEDATA
}

CpuFeatures detect_cpu_features() {
  __builtin_cpu_init();
  CpuFeatures f{};
  f.avx2 = __builtin_cpu_supports("avx2");
  f.fma = __builtin_cpu_supports("fma");
  f.avx512f = __builtin_cpu_supports("avx512f");
  f.avx512bw = __builtin_cpu_supports("avx512bw");
  f.avx512_bf16 = __builtin_cpu_supports("avx512bf16");
  f.avx512_vnni = __builtin_cpu_supports("avx512vnni");
  f.avx512_vbmi = __builtin_cpu_supports("avx512vbmi");
  f.avx_vnni = __builtin_cpu_supports("avxvnni");
  unsigned eax, ebx, ecx, edx;
  if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) {
    const bool amx_os = os_enabled_amx();
    f.amx_bf16 = amx_os && (edx & (1u << 22));
    f.amx_int8 = amx_os && (edx & (1u << 25));
  }
  f.logical_cores = static_cast<int>(std::thread::hardware_concurrency());
  return f;
}

Simd simd_level() {
  static const Simd level = [] {
    const CpuFeatures f = detect_cpu_features();
    Simd best = f.avx512f && f.avx512bw && f.fma ? Simd::Avx512 : f.avx2 && f.fma ? Simd::Avx2 : Simd::Scalar;
    if (const char* want = std::getenv("EXPERTMESH_SIMD")) {
      if (std::strcmp(want, "scalar") == 0) best = Simd::Scalar;
      else if (std::strcmp(want, "avx2") == 0 && best != Simd::Scalar) best = Simd::Avx2;
    }
    return best;
  }();
  return level;
}

const char* simd_name(Simd s) {
  switch (s) {
    case Simd::Avx512: return "avx512";
    case Simd::Avx2: return "avx2";
    case Simd::Scalar: return "scalar";
  }
  return "?";
}

}  // namespace gptoss::cpu
