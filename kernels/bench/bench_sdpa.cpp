// bench_sdpa.cpp — the lab for the attention op at prefill shapes (gpt-oss: 64 query heads, 8 kv heads,
// head_dim 64): a chunk of N new rows after C cached rows in a bf16 KV pool (C = 0: a fresh prompt), with
// full attention and with the 128-token sliding window. Prints ms per call (3 calls each) and a checksum
// of the outputs, so that two builds can be compared result for result. Not part of the test suite.
//   g++ -O3 -std=c++20 -fopenmp -Ikernels/include -Ikernels kernels/bench/bench_sdpa.cpp kernels/build/libgptoss_cpu.a -o /tmp/bench_sdpa
//   /tmp/bench_sdpa N [C]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "../cpu/ops.h"

using namespace gptoss;

int main(int argc, char** argv) {
  const int N = argc > 1 ? std::atoi(argv[1]) : 1024, C = argc > 2 ? std::atoi(argv[2]) : 0;
  const int QH = 64, KH = 8, D = 64, T = C + N, block = 16, nblocks = (T + block - 1) / block;
  const OpSet& ops = cpu_ops();
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> q(static_cast<size_t>(T) * QH * D), k(static_cast<size_t>(T) * KH * D), v(k.size());
  for (auto* x : {&q, &k, &v})
    for (float& e : *x) e = normal(rng);
  std::vector<float> out(static_cast<size_t>(N) * QH * D), sinks(QH, 0.5f);
  std::vector<int32_t> table(nblocks);
  for (int i = 0; i < nblocks; ++i) table[i] = i;
  std::vector<uint16_t> pool(static_cast<size_t>(nblocks) * 2 * KH * block * D);
  const KvLayer kv{pool.data(), block, KH, D, KvType::BF16, nullptr};
  const AttnSeq prefix{0, C, 0, table.data(), nblocks}, chunk{0, N, C, table.data(), nblocks};
  if (C > 0) ops.f32_kv_store(k.data(), v.data(), KH * D, &prefix, 1, kv);
  double checksum = 0.0;
  for (const int window : {0, 128})
    for (int rep = 0; rep < 3; ++rep) {
      const auto t0 = std::chrono::steady_clock::now();
      ops.f32_sdpa_sinks(q.data() + static_cast<size_t>(C) * QH * D, QH * D, k.data() + static_cast<size_t>(C) * KH * D,
                         v.data() + static_cast<size_t>(C) * KH * D, KH * D, &chunk, 1, kv, QH, sinks.data(), 0.125f, window, out.data(),
                         QH * D, nullptr);
      const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      for (const float x : out) checksum += x;
      std::printf("sdpa %d new rows after %d cached, window %d: %.2f ms\n", N, C, window, dt * 1e3);
    }
  std::printf("checksum %.9g\n", checksum);
  return 0;
}
