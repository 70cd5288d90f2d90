// cpu_features.h — host ISA detection used to pick kernel variants at run time.
#pragma once

namespace gptoss::cpu {

struct CpuFeatures {
  bool avx2, fma, avx512f, avx512bw, avx512_bf16, avx512_vnni, avx512_vbmi, avx_vnni, amx_bf16, amx_int8;
  int logical_cores;
};

CpuFeatures detect_cpu_features();

}  // namespace gptoss::cpu
