// test_ops.cpp — every op of every available backend against the plain fp64 references, with named
// boundary cases and explicit tolerances (fp32 accumulation vs fp64): "cpu", and "cuda-emu" (the CUDA op
// sources built by g++ against the emulator) with the same cases, none shrunk. Backends without a device,
// and CUDA entries not implemented yet, report themselves SKIPPED. Exit status 0 only when every case passed.
// The checks the suites share are declared in op_checks.h; the attention cases live in test_ops_sdpa.cpp.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "../core/bf16.h"
#include "../core/mxfp4_layout.h"
#include "../cpu/ops.h"
#include "../cpu/simd.h"
#include "../cuda/cuda_device.h"
#include "../cuda/ops/cuda_ops.h"
#include "op_checks.h"
#include "reference/ops_ref.h"
#include "sample_cases.h"
#if defined(GPTOSS_HAS_CUDA)
#include "device_ops.h"
#endif

using namespace gptoss;

namespace gptoss::test {

int g_failed = 0, g_passed = 0;
std::mt19937 rng(1234);

std::vector<float> randn(size_t n, float scale) {
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}
std::vector<double> widen(const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); }

// bf16 weights: the test rounds them first, so the reference sees exactly what the op sees.
struct Bf16Matrix {
  std::vector<bf16_t> data;
  std::vector<double> exact;
  int rows, cols, ld;
};
Bf16Matrix bf16_matrix(int rows, int cols, int ld, float scale) {
  Bf16Matrix m{std::vector<bf16_t>(static_cast<size_t>(rows) * ld), {}, rows, cols, ld};
  m.exact.resize(static_cast<size_t>(rows) * cols);
  auto v = randn(m.data.size(), scale);
  for (size_t i = 0; i < v.size(); ++i) m.data[i] = f32_to_bf16(v[i]);
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c) m.exact[static_cast<size_t>(r) * cols + c] = bf16_to_f32(m.data[static_cast<size_t>(r) * ld + c]);
  return m;
}

void expect_close(const std::string& name, const float* got, const std::vector<double>& want, double tol) {
  double worst = 0, scale = 1e-30;
  for (size_t i = 0; i < want.size(); ++i) {
    scale = std::max(scale, std::abs(want[i]));
    if (!std::isfinite(got[i])) worst = INFINITY;
    else worst = std::max(worst, std::abs(got[i] - want[i]));
  }
  const double rel = worst / std::max(1.0, scale);
  const bool ok = rel <= tol;
  (ok ? g_passed : g_failed)++;
  std::printf("%s %-52s max|Δ|/max(1,|ref|) = %.2e (tol %.0e)\n", ok ? "PASS" : "FAIL", name.c_str(), rel, tol);
}

void expect_true(const std::string& name, bool ok, const std::string& detail) {
  (ok ? g_passed : g_failed)++;
  std::printf("%s %-52s %s\n", ok ? "PASS" : "FAIL", name.c_str(), detail.c_str());
}

}  // namespace gptoss::test

namespace {

using namespace gptoss::test;

// Whether `ops` implements the entry; a CUDA entry not written yet is reported SKIPPED, not run.
bool ready(const OpSet& ops, const char* entry) {
  if (&ops != &cuda::emulated::cuda_ops() || cuda::emulated::cuda_op_ready(entry)) return true;
  std::printf("SKIP %s/%s: not implemented on cuda yet\n", ops.name, entry);
  return false;
}

void test_rmsnorm(const OpSet& ops) {
  struct C { const char* name; int T, H; float scale; };
  for (C c : {C{"rmsnorm/single_token", 1, 64, 1.0f}, C{"rmsnorm/wide_2880", 5, 2880, 1.0f},
              C{"rmsnorm/eps_dominates_tiny_values", 3, 96, 1e-6f}, C{"rmsnorm/large_values", 3, 96, 1e4f}}) {
    auto x = randn(static_cast<size_t>(c.T) * c.H, c.scale);
    auto g = randn(c.H, 1.0f);
    std::vector<float> y(x.size());
    ops.f32_rmsnorm(x.data(), c.T, c.H, g.data(), 1e-5f, y.data());
    expect_close(std::string(ops.name) + "/" + c.name, y.data(), ref::rmsnorm(widen(x), c.T, c.H, widen(g), 1e-5), 1e-5);
  }
}

void test_matmul(const OpSet& ops) {
  struct C { const char* name; int T, K, N, ld; bool bias; };
  for (C c : {C{"matmul/single_token", 1, 64, 48, 64, true}, C{"matmul/partial_token_tile_13", 13, 64, 40, 64, true},
              C{"matmul/k_not_multiple_of_256_300", 3, 300, 17, 300, true},
              C{"matmul/strided_columns_o_proj_shard", 4, 64, 32, 160, true}, C{"matmul/no_bias_k2880", 2, 2880, 33, 2880, false},
              C{"matmul/packed_panels_T40_rows70_k200", 40, 200, 70, 200, true}, C{"matmul/packed_panels_T31_strided", 31, 96, 130, 144, false},
              C{"matmul/panel_odd_k75_T67_rows20", 67, 75, 20, 75, true}, C{"matmul/panel_k2880_T24", 24, 2880, 33, 2880, true}}) {
    auto w = bf16_matrix(c.N, c.K, c.ld, 1.0f / std::sqrt(static_cast<float>(c.K)));
    auto x = randn(static_cast<size_t>(c.T) * c.K);
    auto b = randn(c.N, 0.1f);
    std::vector<float> y(static_cast<size_t>(c.T) * c.N);
    matmul(ops, x.data(), c.T, MatrixBF16{w.data.data(), c.N, c.K, c.ld}, c.bias ? b.data() : nullptr, y.data(), c.N,
           c.T >= 24 ? RowPath::Panel : RowPath::Stream);
    const auto bd = widen(b);
    expect_close(std::string(ops.name) + "/" + c.name, y.data(), ref::matmul(widen(x), c.T, c.K, w.exact, c.N, c.bias ? &bd : nullptr), 1e-5);
  }
  // Batch invariance on either path: a row's result is bit-identical alone, among many, at any offset.
  {
    const int T = 70, K = 200, N = 70;
    auto w = bf16_matrix(N, K, K, 0.07f);
    const MatrixBF16 wm{w.data.data(), N, K, K};
    const auto x = randn(static_cast<size_t>(T) * K);
    const auto b = randn(N, 0.1f);
    for (const RowPath path : {RowPath::Stream, RowPath::Panel}) {
      std::vector<float> all(static_cast<size_t>(T) * N);
      matmul(ops, x.data(), T, wm, b.data(), all.data(), N, path);
      int differ = 0;
      for (const auto [first, count] : {std::pair{0, 1}, std::pair{66, 1}, std::pair{3, 5}, std::pair{5, 65}}) {
        std::vector<float> part(static_cast<size_t>(count) * N);
        matmul(ops, x.data() + static_cast<size_t>(first) * K, count, wm, b.data(), part.data(), N, path);
        for (size_t i = 0; i < part.size(); ++i) differ += part[i] != all[static_cast<size_t>(first) * N + i];
      }
      expect_true(std::string(ops.name) + (path == RowPath::Stream ? "/matmul/rows_independent_stream" : "/matmul/rows_independent_panel"),
                  differ == 0, std::to_string(differ) + " values differ");
    }
  }
  // unembed is the same product without bias, output stride = vocab.
  auto w = bf16_matrix(1000, 96, 96, 0.1f);
  auto x = randn(3 * 96);
  std::vector<float> y(3 * 1000);
  for (const RowPath path : {RowPath::Stream, RowPath::Panel}) {
    ops.f32_bf16w_unembed(x.data(), 3, MatrixBF16{w.data.data(), 1000, 96, 96}, y.data(), path);
    expect_close(std::string(ops.name) + (path == RowPath::Stream ? "/unembed/vocab_1000_stream" : "/unembed/vocab_1000_panel"), y.data(),
                 ref::matmul(widen(x), 3, 96, w.exact, 1000, nullptr), 1e-5);
  }
}

void test_rope(const OpSet& ops) {
  struct C { const char* name; int T, heads, D, pos0; };
  for (C c : {C{"rope/position_zero", 1, 4, 64, 0}, C{"rope/long_context_131071", 2, 2, 64, 131070},
              C{"rope/head_dim_24", 5, 3, 24, 17}}) {
    std::vector<float> inv(c.D / 2);
    for (int f = 0; f < c.D / 2; ++f) inv[f] = std::pow(150000.0f, -2.0f * f / c.D);
    auto x = randn(static_cast<size_t>(c.T) * c.heads * c.D);
    std::vector<int32_t> pos(c.T);
    std::vector<int> posd(c.T);
    for (int t = 0; t < c.T; ++t) pos[t] = posd[t] = c.pos0 + t;
    std::vector<double> invd(inv.begin(), inv.end());
    // The op takes p·inv_freq in fp32 (as the reference implementation does); compare on its own angles.
    for (int t = 0; t < c.T; ++t) posd[t] = pos[t];
    auto want = ref::rope(widen(x), c.T, c.heads, c.D, posd, invd, 1.3465735902799727);
    ops.f32_rope(x.data(), c.T, c.heads, c.D, static_cast<int64_t>(c.heads) * c.D, pos.data(), inv.data(), 1.3465735902799727f);
    const double tol = c.pos0 > 1000 ? 2e-2 : 1e-5;  // fp32 angle at p≈131k carries ~0.008 rad phase error (spec §4.3)
    expect_close(std::string(ops.name) + "/" + c.name, x.data(), want, tol);
  }
}

void test_router(const OpSet& ops) {
  {
    const int T = 7, E = 32, K = 4;
    auto g = randn(static_cast<size_t>(T) * E);
    std::vector<int32_t> idx(T * K);
    std::vector<float> w(T * K);
    ops.f32_router_topk(g.data(), T, E, K, idx.data(), w.data());
    std::vector<int> ridx;
    std::vector<double> rw;
    ref::router_topk(widen(g), T, E, K, ridx, rw);
    expect_true(std::string(ops.name) + "/router_topk/indices_e32_k4", std::vector<int>(idx.begin(), idx.end()) == ridx);
    expect_close(std::string(ops.name) + "/router_topk/weights_e32_k4", w.data(), rw, 1e-6);
  }
  {
    std::vector<float> g = {1, 3, 2, 3, 2, 0};  // ties at the boundary: lower expert index wins
    std::vector<int32_t> idx(3);
    std::vector<float> w(3);
    ops.f32_router_topk(g.data(), 1, 6, 3, idx.data(), w.data());
    expect_true(std::string(ops.name) + "/router_topk/ties_at_boundary_lower_index", idx[0] == 1 && idx[1] == 3 && idx[2] == 2);
  }
  {
    std::vector<float> g = {0.5f, -1.0f, 2.0f};
    std::vector<int32_t> idx(3);
    std::vector<float> w(3);
    ops.f32_router_topk(g.data(), 1, 3, 3, idx.data(), w.data());
    expect_true(std::string(ops.name) + "/router_topk/k_equals_E_sums_to_1", std::abs(w[0] + w[1] + w[2] - 1.0f) < 1e-6f);
  }
}

// Random MXFP4 codes; every other block's scale is scale_hi, the rest uniform in [scale_lo, scale_hi].
std::pair<std::vector<uint8_t>, std::vector<uint8_t>> random_mxfp4(int rows, int cols, int scale_lo, int scale_hi) {
  std::uniform_int_distribution<int> byte(0, 255), sc(scale_lo, scale_hi);
  std::vector<uint8_t> blocks(static_cast<size_t>(rows) * cols / 2), scales(static_cast<size_t>(rows) * cols / 32);
  for (auto& b : blocks) b = static_cast<uint8_t>(byte(rng));
  for (size_t i = 0; i < scales.size(); ++i) scales[i] = static_cast<uint8_t>(i % 2 ? scale_hi : sc(rng));
  return {std::move(blocks), std::move(scales)};
}

// The layouts an op set's expert products read: the CPU's also take Rows16 (core/tensor.h), the layout
// its resident experts are placed in.
std::vector<MxFp4Layout> expert_layouts(const OpSet& ops) {
  if (std::string(ops.name) == "cpu") return {MxFp4Layout::Rows, MxFp4Layout::Rows16};
  return {MxFp4Layout::Rows};
}
std::string layout_suffix(MxFp4Layout layout) { return layout == MxFp4Layout::Rows16 ? "/rows16" : ""; }

// A Rows matrix as `layout` (Rows16: rewritten by pack_rows16 into storage the result points into).
struct PlacedMxFp4 {
  std::vector<uint8_t> blocks, scales;
  MxFp4Matrix w;
  PlacedMxFp4(const MxFp4Matrix& rows, MxFp4Layout layout) : w(rows) {
    if (layout == MxFp4Layout::Rows) return;
    blocks.resize(static_cast<size_t>(rows16_block_bytes(rows))), scales.resize(static_cast<size_t>(rows16_scale_bytes(rows)));
    pack_rows16(rows, blocks.data(), scales.data());
    w = MxFp4Matrix{blocks.data(), scales.data(), rows.rows, rows.cols, MxFp4Layout::Rows16};
  }
};

// One expert product through `op` (the panel path from 24 tokens, as a long prefill chunk would take it).
using ExpertOp = void (*)(const ExpertMatmul*, int);
std::vector<float> run_expert(ExpertOp op, const std::vector<float>& x, int n, const std::vector<uint8_t>& blocks,
                              const std::vector<uint8_t>& scales, int rows, int cols, const std::vector<float>& bias,
                              MxFp4Layout layout = MxFp4Layout::Rows) {
  std::vector<float> y(static_cast<size_t>(n) * rows);
  const PlacedMxFp4 placed(MxFp4Matrix{blocks.data(), scales.data(), rows, cols}, layout);
  const ExpertMatmul job{x.data(), n, placed.w, bias.data(), y.data(), n >= 24 ? RowPath::Panel : RowPath::Stream};
  op(&job, 1);
  return y;
}

void test_mxfp4(const OpSet& ops) {
  struct C { const char* name; int n, rows, cols; int scale_lo, scale_hi; };
  for (C c : {C{"moe_mxfp4_matmul/single_token", 1, 40, 64, 118, 124}, C{"moe_mxfp4_matmul/partial_token_tile_11", 11, 24, 96, 118, 124},
              C{"moe_mxfp4_matmul/cols_160_five_blocks", 3, 16, 160, 120, 122}, C{"moe_mxfp4_matmul/scale_extremes_0_and_254", 2, 8, 64, 0, 254},
              C{"moe_mxfp4_matmul/four_tokens_stream", 4, 9, 96, 118, 124}, C{"moe_mxfp4_matmul/packed_panels_n37_rows_70", 37, 70, 160, 118, 124}}) {
    const auto [blocks, scales] = random_mxfp4(c.rows, c.cols, c.scale_lo, c.scale_hi);
    auto x = randn(static_cast<size_t>(c.n) * c.cols, c.scale_hi > 200 ? 1e-30f : 1.0f);
    const auto b = randn(c.rows, 0.1f);
    const auto bd = widen(b);
    auto want = ref::matmul(widen(x), c.n, c.cols, ref::dequant_mxfp4(blocks.data(), scales.data(), c.rows, c.cols), c.rows, &bd);
    const auto rows = run_expert(ops.f32_mxfp4w_matmul, x, c.n, blocks, scales, c.rows, c.cols, b);
    for (const MxFp4Layout layout : expert_layouts(ops)) {
      const auto y = run_expert(ops.f32_mxfp4w_matmul, x, c.n, blocks, scales, c.rows, c.cols, b, layout);
      expect_close(std::string(ops.name) + "/" + c.name + layout_suffix(layout), y.data(), want, 1e-5);
      // Exact results do not depend on the layout the weights were placed in.
      if (layout != MxFp4Layout::Rows)
        expect_true(std::string(ops.name) + "/" + c.name + layout_suffix(layout) + "_same_bits_as_rows", y == rows);
    }
  }
  {
    // The spec's worked example: byte 0x2F with scale 126 → element 0 = −3.0, element 1 = +0.5.
    std::vector<uint8_t> blocks(16, 0), scales(1, 126);
    blocks[0] = 0x2F;
    std::vector<float> x(32, 0.0f), y(1);
    x[0] = 1.0f;
    mxfp4_matmul(ops, x.data(), 1, MxFp4Matrix{blocks.data(), scales.data(), 1, 32}, nullptr, y.data());
    x[0] = 0.0f;
    x[1] = 1.0f;
    std::vector<float> y2(1);
    mxfp4_matmul(ops, x.data(), 1, MxFp4Matrix{blocks.data(), scales.data(), 1, 32}, nullptr, y2.data());
    expect_true(std::string(ops.name) + "/moe_mxfp4_matmul/spec_worked_example_0x2F", y[0] == -3.0f && y2[0] == 0.5f,
                "got " + std::to_string(y[0]) + ", " + std::to_string(y2[0]));
  }
}

// Serving precision: every output must lie within the quantization bound of the exact product,
// Σ_k |w_k| · (max|x_token| / 127) / 256 (two int8 digits of one scale per token), plus fp32 rounding.
void test_mxfp4_q8(const OpSet& ops) {
  struct C { const char* name; int n, rows, cols; int scale_lo, scale_hi; bool int_acts; };
  for (C c : {C{"q8_mxfp4_matmul/single_token_90_blocks_tail_2", 1, 12, 2880, 118, 124, false},
              C{"q8_mxfp4_matmul/three_blocks_tail_only", 2, 9, 96, 118, 124, false},
              C{"q8_mxfp4_matmul/five_blocks_tokens_3", 3, 16, 160, 120, 122, false},
              C{"q8_mxfp4_matmul/token_tiles_4_and_3", 7, 10, 256, 118, 124, false},
              C{"q8_mxfp4_matmul/rows_40_two_groups_and_a_part", 5, 40, 2880, 118, 124, false},
              C{"q8_mxfp4_matmul/scale_extremes_1_and_254", 2, 8, 128, 1, 254, false},
              C{"q8_mxfp4_matmul/int8_exact_activations", 4, 8, 192, 118, 124, true},
              C{"q8_mxfp4_matmul/panel_path_n30", 30, 20, 128, 118, 124, false},
              C{"q8_mxfp4_matmul/panel_scale_extremes_1_and_254", 26, 8, 128, 1, 254, false},
              C{"q8_mxfp4_matmul/panel_int8_exact_activations", 25, 8, 192, 118, 124, true},
              C{"q8_mxfp4_matmul/panel_token_tiles_64_and_6_rows_51", 70, 51, 2880, 118, 124, false}}) {
    std::uniform_int_distribution<int> small(-127, 127);
    const auto [blocks, scales] = random_mxfp4(c.rows, c.cols, c.scale_lo, c.scale_hi);
    auto x = randn(static_cast<size_t>(c.n) * c.cols, c.scale_hi > 200 ? 1e-30f : 1.0f);
    if (c.int_acts)  // integers with one ±127 per token: quantization is exact
      for (size_t i = 0; i < x.size(); ++i) x[i] = i % c.cols == 5 ? 127.0f : static_cast<float>(small(rng));
    for (int k = 0; k < 32; ++k) x[k] = 0.0f;  // an all-zero block
    if (c.n > 1) std::fill(x.end() - c.cols, x.end(), 0.0f);  // an all-zero token (activation scale 0)
    const auto b = randn(c.rows, 0.1f);
    const auto bd = widen(b);
    const auto wd = ref::dequant_mxfp4(blocks.data(), scales.data(), c.rows, c.cols);
    const auto want = ref::matmul(widen(x), c.n, c.cols, wd, c.rows, &bd);
    for (const MxFp4Layout layout : expert_layouts(ops)) {
      const auto y = run_expert(ops.q8_mxfp4w_matmul, x, c.n, blocks, scales, c.rows, c.cols, b, layout);
      double worst = 0.0;  // |got − want| / allowed, over all outputs
      for (int t = 0; t < c.n; ++t)
        for (int r = 0; r < c.rows; ++r) {
          double amax = 0.0, wsum = 0.0, magnitude = 0.0;
          for (int k = 0; k < c.cols; ++k) {
            amax = std::max(amax, std::abs(static_cast<double>(x[t * c.cols + k])));
            wsum += std::abs(wd[static_cast<size_t>(r) * c.cols + k]);
            magnitude += std::abs(wd[static_cast<size_t>(r) * c.cols + k] * x[t * c.cols + k]);
          }
          const double bound = c.int_acts ? 0.0 : wsum * amax / 127.0 / 256.0;
          const double allowed = bound * 1.001 + 1e-5 * (magnitude + std::abs(bd[r])) + 1e-30;
          const double err = std::abs(y[static_cast<size_t>(t) * c.rows + r] - want[static_cast<size_t>(t) * c.rows + r]);
          worst = std::max(worst, std::isfinite(y[static_cast<size_t>(t) * c.rows + r]) ? err / allowed : INFINITY);
        }
      expect_true(std::string(ops.name) + "/" + c.name + layout_suffix(layout), worst <= 1.0,
                  "max |Δ| / bound = " + std::to_string(worst));
    }
  }
}

// Batch invariance: on either path, in either precision, a row's result is bit-identical whether it is
// computed alone, as part of a product of many rows, or at another offset among them.
void test_mxfp4_row_independence(const OpSet& ops) {
  const int rows = 52, cols = 2880, n = 40;
  std::uniform_int_distribution<int> byte(0, 255), sc(118, 124);
  std::vector<uint8_t> blocks(static_cast<size_t>(rows) * cols / 2), scales(static_cast<size_t>(rows) * cols / 32);
  for (auto& b : blocks) b = static_cast<uint8_t>(byte(rng));
  for (auto& s : scales) s = static_cast<uint8_t>(sc(rng));
  const auto x = randn(static_cast<size_t>(n) * cols, 1.0f);
  const auto b = randn(rows, 0.1f);
  for (const MxFp4Layout layout : expert_layouts(ops)) {
    const PlacedMxFp4 placed(MxFp4Matrix{blocks.data(), scales.data(), rows, cols}, layout);
    const MxFp4Matrix& w = placed.w;
    for (const auto op : {ops.f32_mxfp4w_matmul, ops.q8_mxfp4w_matmul})
      for (const RowPath path : {RowPath::Stream, RowPath::Panel}) {
        std::vector<float> all(static_cast<size_t>(n) * rows);
        const ExpertMatmul whole{x.data(), n, w, b.data(), all.data(), path};
        op(&whole, 1);
        int differ = 0;
        for (const auto [first, count] : {std::pair{0, 1}, std::pair{7, 1}, std::pair{3, 5}, std::pair{11, 29}}) {
          std::vector<float> part(static_cast<size_t>(count) * rows);
          const ExpertMatmul sub{x.data() + static_cast<size_t>(first) * cols, count, w, b.data(), part.data(), path};
          op(&sub, 1);
          for (size_t i = 0; i < part.size(); ++i) differ += part[i] != all[static_cast<size_t>(first) * rows + i];
        }
        expect_true(std::string(ops.name) + (op == ops.f32_mxfp4w_matmul ? "/moe_mxfp4_matmul" : "/q8_mxfp4_matmul") +
                        (path == RowPath::Stream ? "/rows_independent_stream" : "/rows_independent_panel") + layout_suffix(layout),
                    differ == 0, std::to_string(differ) + " values differ");
      }
  }
}

void test_swiglu(const OpSet& ops) {
  std::vector<float> u = {7.0f, 7.0f, 7.5f, -7.5f, -20.0f, 3.0f, 0.0f, 0.0f, 6.99f, 100.0f, -3.0f, -0.5f};
  auto more = randn(2 * 2 * 50, 4.0f);
  u.insert(u.end(), more.begin(), more.end());
  const int I = 2, n = static_cast<int>(u.size()) / (2 * I);
  std::vector<float> z(static_cast<size_t>(n) * I);
  ops.f32_swiglu_oai(u.data(), n, I, 7.0f, 1.702f, z.data());
  expect_close(std::string(ops.name) + "/swiglu_oai/clamp_edges_and_random", z.data(), ref::swiglu(widen(u), n, I, 7.0, 1.702), 1e-6);
  // Wide rows take the vector path (16 units at a time) plus a scalar tail: I = 2880 + 5.
  const int I2 = 2885, n2 = 3;
  auto u2 = randn(static_cast<size_t>(n2) * 2 * I2, 5.0f);
  u2[0] = 7.0f, u2[1] = 7.0f, u2[2] = 7.5f, u2[3] = -7.5f, u2[4] = -90.0f, u2[6] = 90.0f;
  std::vector<float> z2(static_cast<size_t>(n2) * I2);
  ops.f32_swiglu_oai(u2.data(), n2, I2, 7.0f, 1.702f, z2.data());
  expect_close(std::string(ops.name) + "/swiglu_oai/vector_path_I2885_extremes", z2.data(), ref::swiglu(widen(u2), n2, I2, 7.0, 1.702), 1e-6);
}

void test_embed(const OpSet& ops) {
  auto table = bf16_matrix(300, 32, 32, 1.0f);
  std::vector<int32_t> ids = {0, 299, 7};
  std::vector<float> out(3 * 32);
  ops.bf16w_embed(MatrixBF16{table.data.data(), 300, 32, 32}, ids.data(), 3, out.data());
  std::vector<double> want;
  for (int id : ids) want.insert(want.end(), table.exact.begin() + id * 32, table.exact.begin() + (id + 1) * 32);
  expect_close(std::string(ops.name) + "/embed/first_and_last_id", out.data(), want, 0.0);
}

void test_sample(const OpSet& ops) {
  std::vector<float> logits = {0.1f, 2.0f, -1.0f, 2.0f};
  SamplingParams p;
  SampleResult r{};
  ops.f32_sample(logits.data(), 4, p, 0, &r);
  expect_true(std::string(ops.name) + "/sample/greedy_ties_lowest_id", r.token == 1);
  p.temperature = 1.0f;
  p.top_k = 2;
  p.seed = 5;
  int counts[4] = {};
  for (int i = 0; i < 4000; ++i) {
    ops.f32_sample(logits.data(), 4, p, i, &r);
    counts[r.token]++;
  }
  expect_true(std::string(ops.name) + "/sample/top_k_2_only_two_tokens_roughly_even", counts[0] == 0 && counts[2] == 0 &&
                                                                                           counts[1] > 1800 && counts[3] > 1800,
              std::to_string(counts[1]) + "/" + std::to_string(counts[3]));
}

void test_add(const OpSet& ops) {
  for (int n : {1, 2880, 3 * 2880 + 7}) {
    auto y = randn(n), x = randn(n);
    const auto want = ref::add(widen(y), widen(x));
    ops.f32_add(y.data(), x.data(), n);
    expect_close(std::string(ops.name) + "/add/n" + std::to_string(n), y.data(), want, 2e-7);
  }
}

// Routing, gathering and combining a step's rows: the routed order must be exactly the reference's (the
// combine sums in it), experts of other ranks and unchosen experts get no group.
void test_moe_route_combine(const OpSet& ops) {
  struct C { const char* name; int T, K, E, H; bool half_local, mixed_paths; };
  for (C c : {C{"single_token_all_local", 1, 4, 32, 64, false, false}, C{"decode_batch_half_local", 16, 4, 32, 96, true, false},
              C{"prefill_mixed_paths_unchosen_experts", 40, 4, 128, 80, true, true},
              C{"long_prefill_many_tiles", 700, 4, 32, 16, true, true}}) {
    std::vector<int32_t> idx(static_cast<size_t>(c.T) * c.K);
    std::vector<float> w(idx.size());
    for (int t = 0; t < c.T; ++t) {
      std::vector<int> ids(c.E);
      for (int e = 0; e < c.E; ++e) ids[e] = e;
      std::shuffle(ids.begin(), ids.end(), rng);  // distinct experts per token, as top-k gives
      for (int j = 0; j < c.K; ++j) idx[t * c.K + j] = ids[j], w[t * c.K + j] = std::abs(randn(1)[0]);
    }
    std::vector<int> local(c.E);
    for (int e = 0, slot = 0; e < c.E; ++e) local[e] = c.half_local && e % 2 == 1 ? -1 : slot++;
    std::vector<uint8_t> panel(c.T);
    for (int t = 0; t < c.T; ++t) panel[t] = c.mixed_paths && t % 3 == 0;
    std::vector<int32_t> token_rows(idx.size(), 77), totals(2, 77);
    std::vector<float> row_weight(idx.size());
    std::vector<ExpertRows> groups(c.E);
    ops.moe_route(idx.data(), w.data(), c.T, c.K, c.E, local.data(), panel.data(),
                  MoeRoute{row_weight.data(), token_rows.data(), groups.data(), totals.data()});
    const auto want = ref::moe_route(idx, w, c.T, c.K, c.E, local, panel);
    const int num_groups = totals[0], rows = totals[1];
    bool same = rows == static_cast<int>(want.row_weight.size()) && num_groups == static_cast<int>(want.groups.size()) &&
                std::vector<int>(token_rows.begin(), token_rows.end()) == want.token_rows;
    for (int r = 0; same && r < rows; ++r) same = row_weight[r] == want.row_weight[r];
    for (int g = 0; same && g < num_groups; ++g) {
      const ExpertRows& x = groups[g];
      same = std::vector<int>{x.expert, x.slot, x.begin, x.streamed, x.n} == want.groups[g];
    }
    const std::string name = std::string(ops.name) + "/moe_route/" + c.name;
    expect_true(name, same, std::to_string(rows) + " rows, " + std::to_string(num_groups) + " groups");
    if (!same) continue;

    auto x = randn(static_cast<size_t>(c.T) * c.H);
    std::vector<float> xs(static_cast<size_t>(rows) * c.H);
    ops.f32_scatter_rows(x.data(), c.H, token_rows.data(), c.T, c.K, xs.data());
    std::vector<double> gathered(xs.size());
    for (int t = 0; t < c.T; ++t)
      for (int j = 0; j < c.K; ++j)
        if (const int r = want.token_rows[t * c.K + j]; r >= 0) std::copy_n(x.begin() + t * c.H, c.H, gathered.begin() + r * c.H);
    expect_close(std::string(ops.name) + "/scatter_rows/" + c.name, xs.data(), gathered, 0.0);

    auto y = randn(static_cast<size_t>(rows) * c.H);
    std::vector<float> out(static_cast<size_t>(c.T) * c.H, 123.0f);  // stale values must not leak in
    ops.f32_moe_combine(y.data(), c.H, token_rows.data(), row_weight.data(), c.T, c.K, out.data());
    expect_close(std::string(ops.name) + "/moe_combine/" + c.name, out.data(),
                 ref::moe_combine(widen(y), c.H, want.token_rows, want.row_weight, c.T, c.K), 1e-6);
  }
}

// The MoE products over moe_route's groups: every routed row equals its expert's product (with the
// SwiGLU folded in for W1), experts of other ranks untouched, on decode-sized and many-group steps, and
// on groups whose panel rows are no multiple of the tensor-core tile (67 rows: a full tile and 3; 17).
void test_moe_experts(const OpSet& ops) {
  enum Paths { kAllStream, kThirdPanel, kMostlyPanel };  // panel rows: none, t % 3 == 0, t % 3 != 0
  struct C { const char* name; int T, K, E, rows, cols; bool half_local; Paths paths; };
  for (C c : {C{"decode_4_tokens_all_local", 4, 2, 4, 64, 64, false, kAllStream},
              C{"prefill_mixed_paths_half_local", 21, 4, 8, 48, 96, true, kThirdPanel},
              C{"prefill_panel_rows_67_both_experts", 101, 2, 2, 72, 96, false, kMostlyPanel},
              C{"prefill_panel_odd_rows_half_local", 53, 3, 6, 136, 64, true, kMostlyPanel}}) {
    std::vector<int32_t> idx(static_cast<size_t>(c.T) * c.K);
    std::vector<float> w(idx.size(), 1.0f);
    for (int t = 0; t < c.T; ++t) {
      std::vector<int> ids(c.E);
      for (int e = 0; e < c.E; ++e) ids[e] = e;
      std::shuffle(ids.begin(), ids.end(), rng);
      // The mostly-panel cases route by rotation so that their panel row counts are known (67; 17).
      for (int j = 0; j < c.K; ++j) idx[t * c.K + j] = c.paths == kMostlyPanel ? (t + j) % c.E : ids[j];
    }
    std::vector<int> local(c.E);
    int slots = 0;
    for (int e = 0; e < c.E; ++e) local[e] = c.half_local && e % 2 == 1 ? -1 : slots++;
    std::vector<uint8_t> panel(c.T);
    for (int t = 0; t < c.T; ++t) panel[t] = c.paths == kThirdPanel ? t % 3 == 0 : c.paths == kMostlyPanel && t % 3 != 0;
    const int panel_tokens = static_cast<int>(std::count(panel.begin(), panel.end(), 1));
    std::vector<int32_t> token_rows(idx.size()), totals(2);
    std::vector<float> row_weight(idx.size());
    std::vector<ExpertRows> groups(c.E);
    ops.moe_route(idx.data(), w.data(), c.T, c.K, c.E, local.data(), panel.data(),
                  MoeRoute{row_weight.data(), token_rows.data(), groups.data(), totals.data()});
    const auto want_route = ref::moe_route(idx, w, c.T, c.K, c.E, local, panel);
    const int rows = static_cast<int>(want_route.row_weight.size());
    if (c.paths == kMostlyPanel) {  // the case is there for a group with an odd panel row count past one m16 tile
      bool odd = false;
      for (const auto& g : want_route.groups) odd |= (g[4] - g[3]) >= 17 && (g[4] - g[3]) % 2 == 1;
      expect_true(std::string(ops.name) + "/mxfp4_moe/" + c.name + "/has_odd_panel_group", odd);
    }
    // Each slot's weights (rows × cols, bias), and each routed row's expert from the reference routing.
    std::vector<std::pair<std::vector<uint8_t>, std::vector<uint8_t>>> packed;
    std::vector<std::vector<float>> bias;
    std::vector<ExpertProj> table;
    for (int k = 0; k < slots; ++k) {
      packed.push_back(random_mxfp4(c.rows, c.cols, 118, 124));
      bias.push_back(randn(c.rows, 0.1f));
    }
    for (int k = 0; k < slots; ++k)
      table.push_back({MxFp4Matrix{packed[k].first.data(), packed[k].second.data(), c.rows, c.cols}, bias[k].data()});
    std::vector<int> slot_of_row(rows);
    for (const auto& g : want_route.groups)
      for (int r = g[2]; r < g[2] + g[4]; ++r) slot_of_row[r] = g[1];
    const auto x = randn(static_cast<size_t>(rows) * c.cols);
    std::vector<double> want, want_swiglu;
    for (int r = 0; r < rows; ++r) {
      const int k = slot_of_row[r];
      const auto bd = widen(bias[k]);
      const auto y = ref::matmul(std::vector<double>(x.begin() + r * c.cols, x.begin() + (r + 1) * c.cols), 1, c.cols,
                                 ref::dequant_mxfp4(packed[k].first.data(), packed[k].second.data(), c.rows, c.cols), c.rows, &bd);
      want.insert(want.end(), y.begin(), y.end());
      const auto z = ref::swiglu(y, 1, c.rows / 2, 7.0, 1.702);
      want_swiglu.insert(want_swiglu.end(), z.begin(), z.end());
    }
    for (const auto& [label, entry] : {std::pair{"f32", ops.f32_mxfp4w_moe}, std::pair{"q8", ops.q8_mxfp4w_moe}}) {
      std::vector<float> out(static_cast<size_t>(rows) * c.rows), wide(out.size()), folded(static_cast<size_t>(rows) * c.rows / 2);
      MoeMatmul p{x.data(), groups.data(), totals.data(), std::min(c.E, c.T * c.K), table.data(), c.rows, c.cols, out.data()};
      p.max_panel_rows = panel_tokens * c.K;
      entry(p);
      p.out = folded.data();
      p.swiglu = true;
      p.limit = 7.0f;
      p.alpha = 1.702f;
      p.wide = wide.data();
      entry(p);
      // Serving precision may quantize activations (error ≤ d / 256 per element, d = max|x| / 127).
      const double tol = std::string(label) == "f32" ? 1e-5 : 2e-2;
      expect_close(std::string(ops.name) + "/mxfp4_moe_" + label + "/" + c.name, out.data(), want, tol);
      expect_close(std::string(ops.name) + "/mxfp4_moe_" + label + "_swiglu/" + c.name, folded.data(), want_swiglu, tol);
    }
  }
}

}  // namespace

// --cpu-only: the CPU column alone, for the runs that vary only EXPERTMESH_SIMD (which the CUDA columns
// do not read), so each other SIMD path costs no second pass over the emulated kernels.
int main(int argc, char** argv) {
  const bool cpu_only = argc > 1 && std::string(argv[1]) == "--cpu-only";
  std::vector<const OpSet*> backends = {&cpu_ops()};
  std::printf("cpu: SIMD path %s (EXPERTMESH_SIMD=scalar|avx2|avx512 selects another)\n", cpu::simd_name(cpu::simd_level()));
  const auto cuda = cuda::probe_devices();
  if (cpu_only) std::printf("SKIP cuda and cuda-emu: --cpu-only\n");
  else if (!cuda.compiled) std::printf("SKIP cuda: backend not compiled in this build\n");
  else if (cuda.device_count == 0) std::printf("SKIP cuda: no CUDA device visible (%s)\n", cuda.error.c_str());
#if defined(GPTOSS_HAS_CUDA)
  else {
    test::use_managed_heap();  // from here on the cases' buffers are reachable from the device
    backends.push_back(&test::synced_cuda_ops());
    std::printf("cuda: %d device(s), running the nvcc-built op set on device 0\n", cuda.device_count);
  }
#endif
  // The CUDA sources built against the emulator (cuda/emu): same cases and tolerances as the CPU.
  if (!cpu_only) backends.push_back(&cuda::emulated::cuda_ops());
  test::test_fp8_codes();
  test::test_q8_conversion();
  test::test_q8_layout();
  test::test_bf16_rows16_layout();
  for (const OpSet* ops : backends) {
    if (ready(*ops, "f32_rmsnorm")) test_rmsnorm(*ops);
    if (ready(*ops, "f32_bf16w_matmul") && ready(*ops, "f32_bf16w_unembed")) test_matmul(*ops);
    if (ready(*ops, "f32_bf16w_matmul") && ready(*ops, "bf16x2_bf16w_matmul")) test::test_bf16_dense(*ops);
    if (ready(*ops, "f32_rope")) test_rope(*ops);
    if (ready(*ops, "f32_kv_store") && ready(*ops, "f32_sdpa_sinks")) {
      for (KvType type : {KvType::F32, KvType::BF16, KvType::FP8}) {
        test_sdpa(*ops, type);
        test_sdpa_steps(*ops, type);
      }
      if (ops != &cpu_ops()) test::test_kv_store_fp8_as_cpu(*ops);
      if (ops == &cpu_ops()) test::test_sdpa_resumes_as_fresh(*ops);
    }
    if (ready(*ops, "f32_router_topk")) test_router(*ops);
    if (ready(*ops, "q8_q8w_matmul")) test::test_q8_dense(*ops);
    if (ready(*ops, "f32_mxfp4w_matmul")) test_mxfp4(*ops);
    if (ready(*ops, "q8_mxfp4w_matmul")) test_mxfp4_q8(*ops);
    if (ready(*ops, "f32_mxfp4w_matmul") && ready(*ops, "q8_mxfp4w_matmul")) test_mxfp4_row_independence(*ops);
    if (ready(*ops, "f32_swiglu_oai")) test_swiglu(*ops);
    if (ready(*ops, "bf16w_embed")) test_embed(*ops);
    if (ready(*ops, "f32_sample")) test_sample(*ops), test::test_sample_against_cpu(*ops, expect_true);
    if (ready(*ops, "f32_add")) test_add(*ops);
    if (ready(*ops, "moe_route") && ready(*ops, "f32_scatter_rows") && ready(*ops, "f32_moe_combine")) test_moe_route_combine(*ops);
    if (ready(*ops, "moe_route") && ready(*ops, "f32_mxfp4w_moe") && ready(*ops, "q8_mxfp4w_moe")) test_moe_experts(*ops);
  }
  std::printf("ops: %d passed, %d failed\n", g_passed, g_failed);
  return g_failed == 0 ? 0 : 1;
}
