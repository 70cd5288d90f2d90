// bench_ops.cpp — the lab for CPU kernel variants (llm.c's dev/ style): times the hot ops at decode and
// prefill shapes and prints effective bandwidth / FLOP rate. Not part of the test suite.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "../core/bf16_layout.h"
#include "../core/q8_layout.h"
#include "../cpu/ops.h"
#include "../cpu/simd.h"

using namespace gptoss;

static double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

int main(int argc, char** argv) {
  const int T = argc > 1 ? std::atoi(argv[1]) : 1;
  const OpSet& ops = cpu_ops();
  std::mt19937 rng(1);
  // One expert of gpt-oss: W1 [5760, 2880] and W2 [2880, 2880], repeated over 8 experts so the data
  // does not sit in cache between calls.
  const int E = argc > 2 ? std::atoi(argv[2]) : 8, R1 = 5760, H = 2880;
  std::vector<uint8_t> blocks(static_cast<size_t>(E) * R1 * H / 2), scales(static_cast<size_t>(E) * R1 * H / 32, 120);
  for (auto& b : blocks) b = static_cast<uint8_t>(rng());
  std::vector<float> x(static_cast<size_t>(T) * H, 0.01f), y(static_cast<size_t>(T) * R1);
  for (const bool q8 : {false, true})
    for (int rep = 0; rep < 2; ++rep) {
      const double t0 = now();
      for (int e = 0; e < E; ++e) {
        const ExpertMatmul job{x.data(), T,
                               MxFp4Matrix{blocks.data() + static_cast<size_t>(e) * R1 * H / 2,
                                           scales.data() + static_cast<size_t>(e) * R1 * H / 32, R1, H},
                               nullptr, y.data(), T >= 24 ? RowPath::Panel : RowPath::Stream};
        (q8 ? ops.q8_mxfp4w_matmul : ops.f32_mxfp4w_matmul)(&job, 1);
      }
      const double dt = now() - t0;
      const double bytes = static_cast<double>(E) * R1 * H * 17 / 32;
      std::printf("mxfp4 %s %s T=%d: %.2f ms, %.1f GB/s weights, %.1f GFLOP/s\n", q8 ? "q8 " : "f32", cpu::simd_name(cpu::simd_level()),
                  T, dt * 1e3, bytes / dt / 1e9, 2.0 * E * R1 * H * T / dt / 1e9);
    }
  // bf16 dense: lm_head-like [201088/8, 2880] repeated D times (third argument, default E).
  const int V = 25136, D = argc > 3 ? std::atoi(argv[3]) : E;
  std::vector<uint16_t> wb(static_cast<size_t>(D) * V * H, 0x3c00);
  std::vector<float> yb(static_cast<size_t>(T) * V);
  for (int rep = 0; rep < 2; ++rep) {
    const double t0 = now();
    for (int e = 0; e < D; ++e) matmul(ops, x.data(), T, MatrixBF16{wb.data() + static_cast<size_t>(e) * V * H, V, H, H}, nullptr, yb.data(), V,
                                       T >= 24 ? RowPath::Panel : RowPath::Stream);
    const double dt = now() - t0;
    std::printf("bf16  %s T=%d: %.2f ms, %.1f GB/s weights, %.1f GFLOP/s\n", cpu::simd_name(cpu::simd_level()), T, dt * 1e3,
                2.0 * D * V * H / dt / 1e9, 2.0 * D * V * H * T / dt / 1e9);
  }
  // The same in serving precision over Rows16 (the resident layout): activations split into two bf16.
  {
    const MatrixBF16 one{wb.data(), V, H, H};
    std::vector<bf16_t> wr(static_cast<size_t>(D) * bf16_rows16_elements(one));
    for (int e = 0; e < D; ++e) pack_bf16_rows16(MatrixBF16{wb.data() + static_cast<size_t>(e) * V * H, V, H, H}, wr.data() + e * bf16_rows16_elements(one));
    for (int rep = 0; rep < 2; ++rep) {
      const double t0 = now();
      for (int e = 0; e < D; ++e) {
        const DenseMatmul job{x.data(), T, MatrixBF16{wr.data() + e * bf16_rows16_elements(one), V, H, H, BF16Layout::Rows16}, nullptr, yb.data(), V,
                              std::getenv("LAB_STREAM") || T < 24 ? RowPath::Stream : RowPath::Panel};
        ops.bf16x2_bf16w_matmul(&job, 1);
      }
      const double dt = now() - t0;
      std::printf("bf16x2 rows16 %s T=%d: %.2f ms, %.1f GB/s weights, %.1f GFLOP/s\n", cpu::simd_name(cpu::simd_level()), T, dt * 1e3,
                  2.0 * D * V * H / dt / 1e9, 2.0 * D * V * H * T / dt / 1e9);
    }
  }
  // q8 dense (the q8 dense-weight mode) on the same shape: 1 byte per weight + a 4-byte scale per 32.
  std::vector<uint8_t> wq(static_cast<size_t>(D) * V * H);
  for (auto& c : wq) c = static_cast<uint8_t>(1 + rng() % 255);
  std::vector<float> sq(static_cast<size_t>(D) * V * H / 32, 1e-3f);
  for (int rep = 0; rep < 2; ++rep) {
    const double t0 = now();
    for (int e = 0; e < D; ++e) {
      const DenseQ8Matmul job{x.data(), T,
                              MatrixQ8{wq.data() + static_cast<size_t>(e) * V * H, sq.data() + static_cast<size_t>(e) * V * H / 32, V, H},
                              nullptr, yb.data(), V, T >= 24 ? RowPath::Panel : RowPath::Stream};
      ops.q8_q8w_matmul(&job, 1);
    }
    const double dt = now() - t0;
    std::printf("q8    %s T=%d: %.2f ms, %.1f GB/s weights, %.1f GFLOP/s\n", cpu::simd_name(cpu::simd_level()), T, dt * 1e3,
                1.125 * D * V * H / dt / 1e9, 2.0 * D * V * H * T / dt / 1e9);
  }
  // The same q8 matrices as Rows16 (the resident layout, cpu/matmul_q8_rows16.cpp).
  if (cpu::q8_rows16_supported()) {
    const MatrixQ8 one{wq.data(), sq.data(), V, H};
    std::vector<uint8_t> cr(static_cast<size_t>(D) * q8_rows16_code_bytes(one));
    std::vector<float> sr(static_cast<size_t>(D) * q8_rows16_scale_count(one));
    for (int e = 0; e < D; ++e)
      pack_q8_rows16(MatrixQ8{wq.data() + static_cast<size_t>(e) * V * H, sq.data() + static_cast<size_t>(e) * V * H / 32, V, H},
                     cr.data() + e * q8_rows16_code_bytes(one), sr.data() + e * q8_rows16_scale_count(one));
    for (int rep = 0; rep < 2; ++rep) {
      const double t0 = now();
      for (int e = 0; e < D; ++e) {
        const DenseQ8Matmul job{x.data(), T,
                                MatrixQ8{cr.data() + e * q8_rows16_code_bytes(one), sr.data() + e * q8_rows16_scale_count(one), V, H, Q8Layout::Rows16},
                                nullptr, yb.data(), V, RowPath::Stream};
        ops.q8_q8w_matmul(&job, 1);
      }
      const double dt = now() - t0;
      std::printf("q8 rows16 %s T=%d: %.2f ms, %.1f GB/s weights, %.1f GFLOP/s\n", cpu::simd_name(cpu::simd_level()), T, dt * 1e3,
                  1.125 * D * V * H / dt / 1e9, 2.0 * D * V * H * T / dt / 1e9);
    }
  }
  return 0;
}
