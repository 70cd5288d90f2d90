// bench_experts.cpp — the serving-precision expert products as a decode step calls them: L layers of 32
// experts (gpt-oss-20b's W1 [5760, 2880] and W2 [2880, 2880], MXFP4, out of cache), B tokens each routed to
// 4 distinct random experts, one q8_mxfp4w_matmul per projection per layer with one job per expert. Prints
// ms per layer and weight GB/s. Not part of the test suite.
//
// A/B modes: alternate layers go to A and B, so both see the same phases of a shared host's bandwidth and
// clock; the ratio B/A over all repetitions is the figure to read (runs a minute apart on this kind of
// host differ by more than most kernel changes). -DEXPERTS_AB (built by ab_experts.sh): two builds of
// cpu/moe_mxfp4_q8_matmul.cpp linked side by side (namespaces lab_A and lab_B), same weights. LAYOUT=ab:
// this build's op on the weights as Rows (A) and on a second copy placed as Rows16 (B; core/tensor.h).
//
// Usage: bench_experts TOKENS [LAYERS=16] [REPS=6] [IN_CACHE=0] [PER_EXPERT=0] [LAYOUT=rows|rows16|ab]
//   IN_CACHE=1: every expert of every layer aliases the first one (13 MB, cache-resident), which leaves
//   the compute; PER_EXPERT=n: 28 experts with exactly n tokens each instead of random routing; LAYOUT:
//   the layout the weights are placed in (default rows16 where the CPU engine places them so).
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "../core/mxfp4_layout.h"
#include "../cpu/ops.h"

using namespace gptoss;

#ifdef EXPERTS_AB
namespace gptoss::lab_A {
void q8_mxfp4w_matmul(const ExpertMatmul* jobs, int num_jobs);
}
namespace gptoss::lab_B {
void q8_mxfp4w_matmul(const ExpertMatmul* jobs, int num_jobs);
}
#endif

static double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

static uint8_t* huge_buffer(size_t n) {
  void* p = mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) std::exit(1);
  madvise(p, n, MADV_HUGEPAGE);
  return static_cast<uint8_t*>(p);
}

// Every expert matrix of src rewritten as Rows16 into dst (which may be src: through a per-matrix copy).
static void place_rows16(const uint8_t* blocks, const uint8_t* scales, uint8_t* dst_blocks, uint8_t* dst_scales, size_t matrices,
                         int64_t rows, int64_t cols, size_t block_stride, size_t scale_stride) {
  std::vector<uint8_t> b(static_cast<size_t>(rows * cols / 2)), sc(static_cast<size_t>(rows * cols / 32));
  for (size_t i = 0; i < matrices; ++i) {
    const MxFp4Matrix m{blocks + i * block_stride, scales + i * scale_stride, rows, cols};
    pack_rows16(m, b.data(), sc.data());
    std::memcpy(dst_blocks + i * block_stride, b.data(), b.size());
    std::memcpy(dst_scales + i * scale_stride, sc.data(), sc.size());
  }
}

int main(int argc, char** argv) {
  const int B = argc > 1 ? std::atoi(argv[1]) : 1, L = argc > 2 ? std::atoi(argv[2]) : 16;
  const int reps = argc > 3 ? std::atoi(argv[3]) : 6;
  const bool in_cache = argc > 4 && std::atoi(argv[4]) != 0;
  const int per_expert = argc > 5 ? std::atoi(argv[5]) : 0;
  const std::string layout = argc > 6 ? argv[6] : cpu::resident_expert_layout() == MxFp4Layout::Rows16 ? "rows16" : "rows";
  constexpr int E = 32, K = 4, H = 2880, I2 = 5760, nb = H / 32;
  const size_t b1 = size_t{I2} * nb * 16, s1 = size_t{I2} * nb, b2 = size_t{H} * nb * 16, s2 = size_t{H} * nb;
  const size_t layer_blocks = E * (b1 + b2), layer_scales = E * (s1 + s2);
  uint8_t* blocks = huge_buffer(L * layer_blocks);
  uint8_t* scales = huge_buffer(L * layer_scales);
  std::mt19937_64 rng(1);
  for (size_t i = 0; i + 8 <= L * layer_blocks; i += 8) {
    const uint64_t v = rng();
    std::memcpy(blocks + i, &v, 8);
  }
  for (size_t i = 0; i < L * layer_scales; ++i) scales[i] = static_cast<uint8_t>(118 + rng() % 8);
  // The Rows16 copy the B layers read (LAYOUT=ab), or the weights themselves rewritten (LAYOUT=rows16);
  // W1 and W2 have whole groups of 16 rows, so both layouts take the same bytes per matrix.
  uint8_t* blocks16 = layout == "ab" ? huge_buffer(L * layer_blocks) : blocks;
  uint8_t* scales16 = layout == "ab" ? huge_buffer(L * layer_scales) : scales;
  if (layout != "rows")
    for (int l = 0; l < L; ++l) {
      const size_t ob = l * layer_blocks, os = l * layer_scales;
      place_rows16(blocks + ob, scales + os, blocks16 + ob, scales16 + os, E, I2, H, b1, s1);
      place_rows16(blocks + ob + E * b1, scales + os + E * s1, blocks16 + ob + E * b1, scales16 + os + E * s1, E, H, H, b2, s2);
    }
  const int max_rows = std::max(B * K, 28 * per_expert);
  std::vector<float> x(size_t(max_rows) * I2), y(size_t(max_rows) * I2);
  for (float& v : x) v = static_cast<float>(static_cast<int>(rng() % 2001) - 1000) * 1e-3f;
  const OpSet& ops = cpu_ops();
  double total[2] = {0, 0}, bytes[2] = {0, 0};
  int layers_run[2] = {0, 0};
  for (int rep = 0; rep < reps; ++rep) {
    for (int l = 0; l < L; ++l) {
      int count[E] = {};
      for (int t = 0; t < B && !per_expert; ++t) {
        int chosen[K], n = 0;
        while (n < K) {
          const int e = static_cast<int>(rng() % E);
          if (std::find(chosen, chosen + n, e) == chosen + n) chosen[n++] = e;
        }
        for (const int e : chosen) ++count[e];
      }
      for (int e = 0; e < E && per_expert; ++e) count[e] = e < 28 ? per_expert : 0;
      const int v = (l + rep) & 1;  // which build takes this layer (A/B mode)
      for (int proj = 0; proj < 2; ++proj) {
        std::vector<ExpertMatmul> jobs;
        const size_t eb = proj ? b2 : b1, es = proj ? s2 : s1;
        const int64_t rows = proj ? H : I2;
        for (int e = 0, row = 0; e < E; row += count[e], ++e) {
          if (count[e] == 0) continue;
          const size_t layer = in_cache ? 0 : size_t(l), expert = in_cache ? 0 : size_t(e);
          const bool rows16 = layout == "rows16" || (layout == "ab" && v == 1);
          const uint8_t* bb = (rows16 ? blocks16 : blocks) + layer * layer_blocks + (proj ? E * b1 : 0) + expert * eb;
          const uint8_t* ss = (rows16 ? scales16 : scales) + layer * layer_scales + (proj ? E * s1 : 0) + expert * es;
          const MxFp4Matrix w{bb, ss, rows, H, rows16 ? MxFp4Layout::Rows16 : MxFp4Layout::Rows};
          jobs.push_back({x.data() + size_t(row) * H, count[e], w, nullptr, y.data() + size_t(row) * rows, RowPath::Stream});
          bytes[v] += static_cast<double>(eb + es);
        }
        const double t0 = now();
#ifdef EXPERTS_AB
        (v ? lab_B::q8_mxfp4w_matmul : lab_A::q8_mxfp4w_matmul)(jobs.data(), static_cast<int>(jobs.size()));
#else
        ops.q8_mxfp4w_matmul(jobs.data(), static_cast<int>(jobs.size()));
        (void)ops;
#endif
        total[v] += now() - t0;
      }
      ++layers_run[v];
    }
  }
#ifdef EXPERTS_AB
  const bool ab = true;
#else
  const bool ab = layout == "ab";
#endif
  const char* what = in_cache ? ", in cache" : "";
  const char* routing = per_expert ? ", fixed tokens per expert" : "";
  if (ab) {
    std::printf("tokens %d%s%s: A %.2f ms/layer (%.1f GB/s), B %.2f ms/layer (%.1f GB/s), B/A %.3f\n", B, what, routing,
                total[0] * 1e3 / layers_run[0], bytes[0] / total[0] / 1e9, total[1] * 1e3 / layers_run[1], bytes[1] / total[1] / 1e9,
                (total[1] / layers_run[1]) / (total[0] / layers_run[0]));
  } else {
    const double t = total[0] + total[1], b = bytes[0] + bytes[1];
    std::printf("tokens %d%s%s (%s): %.2f ms/layer, %.1f GB/s of expert weights\n", B, what, routing, layout.c_str(),
                t * 1e3 / (layers_run[0] + layers_run[1]), b / t / 1e9);
  }
  return 0;
}
