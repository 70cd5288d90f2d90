// probes.cpp — what this machine can do, measured: STREAM-style read bandwidth (all threads summing a
// large buffer, one figure per pass) and the fp32 FMA rate (independent FMA chains on every thread).
// bench/engine reports the engine's speed as a share of these rooflines. Summarizing the passes
// (median, spread) is the caller's business: the probe keeps no "best of" rule.
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <vector>

#include "../cpu/simd.h"
#include "gptoss.h"

namespace {

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

__attribute__((target("avx512f"))) float sum_avx512(const float* p, size_t n) {
  __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i + 64 <= n; i += 64) {
    a0 = _mm512_add_ps(a0, _mm512_load_ps(p + i));
    a1 = _mm512_add_ps(a1, _mm512_load_ps(p + i + 16));
    a2 = _mm512_add_ps(a2, _mm512_load_ps(p + i + 32));
    a3 = _mm512_add_ps(a3, _mm512_load_ps(p + i + 48));
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

__attribute__((target("avx2"))) float sum_avx2(const float* p, size_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i + 32 <= n; i += 32) {
    a0 = _mm256_add_ps(a0, _mm256_load_ps(p + i));
    a1 = _mm256_add_ps(a1, _mm256_load_ps(p + i + 8));
    a2 = _mm256_add_ps(a2, _mm256_load_ps(p + i + 16));
    a3 = _mm256_add_ps(a3, _mm256_load_ps(p + i + 24));
  }
  float out[8];
  _mm256_storeu_ps(out, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
  return out[0] + out[1] + out[2] + out[3] + out[4] + out[5] + out[6] + out[7];
}

template <int CHAINS>
__attribute__((target("avx512f,fma"))) float fma_chains_avx512(long iters) {
  __m512 acc[CHAINS];
  for (int i = 0; i < CHAINS; ++i) acc[i] = _mm512_set1_ps(1.0f + i * 1e-3f);
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  for (long it = 0; it < iters; ++it)
    for (int i = 0; i < CHAINS; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  __m512 s = acc[0];
  for (int i = 1; i < CHAINS; ++i) s = _mm512_add_ps(s, acc[i]);
  return _mm512_reduce_add_ps(s);
}

template <int CHAINS>
__attribute__((target("avx2,fma"))) float fma_chains_avx2(long iters) {
  __m256 acc[CHAINS];
  for (int i = 0; i < CHAINS; ++i) acc[i] = _mm256_set1_ps(1.0f + i * 1e-3f);
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (long it = 0; it < iters; ++it)
    for (int i = 0; i < CHAINS; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  float out[8];
  __m256 s = acc[0];
  for (int i = 1; i < CHAINS; ++i) s = _mm256_add_ps(s, acc[i]);
  _mm256_storeu_ps(out, s);
  return out[0];
}

volatile float g_sink;

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

}  // namespace

// Every thread sums its own contiguous chunk: the chunk it first touched, so its pages were faulted in
// (and, on a NUMA host, placed) by the thread that reads them, and none of that is timed. A pass ends
// when its slowest thread does: if the kernel takes a core away from one thread mid-pass (another
// process on a small shared host), the pass is slower by whole scheduler ticks, and it shows as that
// thread's CPU time falling short of the pass's wall time. `on_cpu` reports, per pass, the least of the
// threads' CPU time / wall time, so the caller can tell undisturbed passes (≈ 1) from the others.
extern "C" gptoss_status gptoss_probe_read_bandwidth(uint64_t bytes, int32_t passes, double* gb_per_s, double* on_cpu) {
  if (gb_per_s == nullptr || bytes < (1u << 20) || passes < 1) return gptoss_status_invalid_argument;
  const int threads = omp_get_max_threads();
  const size_t chunk = bytes / sizeof(float) / threads / 64 * 64;  // floats per thread, whole 256-byte rows
  const size_t n = chunk * threads;
  float* buf = static_cast<float*>(std::aligned_alloc(64, n * sizeof(float)));
  if (buf == nullptr) return gptoss_status_insufficient_memory;
  const bool avx512 = gptoss::cpu::simd_level() == gptoss::cpu::Simd::Avx512;
#pragma omp parallel num_threads(threads)
  {
    float* mine = buf + chunk * omp_get_thread_num();
    std::fill(mine, mine + chunk, 1.0f);  // first touch
  }
  std::vector<double> cpu(threads);
  // Pass -1 is untimed: it settles the TLB and the hardware prefetchers after the writes above.
  for (int r = -1; r < passes; ++r) {
    const double t0 = now();
    float total = 0.0f;
#pragma omp parallel num_threads(threads) reduction(+ : total)
    {
      const int t = omp_get_thread_num();
      const double c0 = thread_cpu_seconds();
      total += avx512 ? sum_avx512(buf + chunk * t, chunk) : sum_avx2(buf + chunk * t, chunk);
      cpu[t] = thread_cpu_seconds() - c0;
    }
    const double dt = now() - t0;
    g_sink = total;
    if (r < 0) continue;
    gb_per_s[r] = static_cast<double>(n) * sizeof(float) / dt / 1e9;
    if (on_cpu != nullptr) on_cpu[r] = *std::min_element(cpu.begin(), cpu.end()) / dt;
  }
  std::free(buf);
  return gptoss_status_success;
}

extern "C" gptoss_status gptoss_probe_fma_rate(double* gflops) {
  if (gflops == nullptr) return gptoss_status_invalid_argument;
  const bool avx512 = gptoss::cpu::simd_level() == gptoss::cpu::Simd::Avx512;
  constexpr int kChains = 12;
  const long iters = 20'000'000;
  double best = 0.0;
  for (int r = 0; r < 3; ++r) {
    const double t0 = now();
    float total = 0.0f;
#pragma omp parallel reduction(+ : total)
    total += avx512 ? fma_chains_avx512<kChains>(iters) : fma_chains_avx2<kChains>(iters);
    const double dt = now() - t0;
    g_sink = total;
    const double lanes = avx512 ? 16 : 8;
    best = std::max(best, 2.0 * lanes * kChains * iters * omp_get_max_threads() / dt / 1e9);
  }
  *gflops = best;
  return gptoss_status_success;
}
