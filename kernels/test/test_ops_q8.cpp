// test_ops_q8.cpp — the q8 dense-weight products (q8_q8w_matmul) against the fp64 product of the
// dequantized weights, on every backend: stream rows within the two-digit activation bound
// Σ_k |w_k| · (max|x_token| / 127) / 256, panel rows (exact activations) within fp32 rounding; rows
// independent of their neighbours on either path; on the CPU with AVX512-VNNI the same over the Rows16
// layout (every row within the digit bound), where device backends refuse it; the code layouts
// (core/tensor.h's runs of 16 blocks, the Rows16 rewrite); and the load-time conversion (quantize_q8_rows).
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "../core/bf16.h"
#include "../core/q8_layout.h"
#include "../cpu/ops.h"
#include "../model/weights.h"
#include "op_checks.h"
#include "reference/ops_ref.h"

namespace gptoss::test {

namespace {

struct Q8 {
  std::vector<uint8_t> codes;
  std::vector<float> scales;
  std::vector<double> exact;  // the dequantized weights
  std::vector<uint8_t> codes16;  // the same as Rows16 (pack_q8_rows16)
  std::vector<float> scales16;
  MatrixQ8 view(int rows, int cols, Q8Layout layout = Q8Layout::Runs) const {
    if (layout == Q8Layout::Rows16) return MatrixQ8{codes16.data(), scales16.data(), rows, cols, Q8Layout::Rows16};
    return MatrixQ8{codes.data(), scales.data(), rows, cols};
  }
};

// The layouts an op set's q8 products read: the CPU's also Rows16 where it has AVX512-VNNI.
std::vector<Q8Layout> q8_layouts(const OpSet& ops) {
  if (std::string(ops.name) == "cpu" && cpu::q8_rows16_supported()) return {Q8Layout::Runs, Q8Layout::Rows16};
  return {Q8Layout::Runs};
}
std::string suffix(Q8Layout layout) { return layout == Q8Layout::Rows16 ? "/rows16" : ""; }

// Random codes (one block with scale 0, one with every code at 128 = 0) and positive block scales.
Q8 random_q8(int rows, int cols) {
  std::uniform_int_distribution<int> code(1, 255);
  std::uniform_real_distribution<float> scale(0.5f, 2.0f);
  const int nb = cols / 32;
  Q8 m{std::vector<uint8_t>(static_cast<size_t>(rows) * cols), std::vector<float>(static_cast<size_t>(rows) * nb), {}};
  for (auto& c : m.codes) c = static_cast<uint8_t>(code(rng));
  for (auto& s : m.scales) s = scale(rng) / 127.0f / std::sqrt(static_cast<float>(cols));
  m.scales[0] = 0.0f;
  if (m.scales.size() > 1)
    for (int k = 32; k < 64; ++k) m.codes[static_cast<size_t>(q8_code_offset(cols, k))] = 128;
  m.exact.resize(m.codes.size());
  for (int r = 0; r < rows; ++r)
    for (int k = 0; k < cols; ++k)
      m.exact[static_cast<size_t>(r) * cols + k] = (static_cast<int>(m.codes[static_cast<size_t>(r) * cols + q8_code_offset(cols, k)]) - 128) *
                                                   static_cast<double>(m.scales[static_cast<size_t>(r) * nb + k / 32]);
  const MatrixQ8 runs = m.view(rows, cols);
  m.codes16.resize(static_cast<size_t>(q8_rows16_code_bytes(runs)));
  m.scales16.resize(static_cast<size_t>(q8_rows16_scale_count(runs)));
  pack_q8_rows16(runs, m.codes16.data(), m.scales16.data());
  return m;
}

std::vector<float> run(const OpSet& ops, const std::vector<float>& x, int T, const Q8& w, int rows, int cols, const float* bias,
                       RowPath path, Q8Layout layout = Q8Layout::Runs) {
  std::vector<float> y(static_cast<size_t>(T) * rows);
  const DenseQ8Matmul job{x.data(), T, w.view(rows, cols, layout), bias, y.data(), rows, path};
  ops.q8_q8w_matmul(&job, 1);
  return y;
}

void test_products(const OpSet& ops) {
  struct C { const char* name; int T, rows, cols; RowPath path; bool int_acts; };
  for (C c : {C{"q8_q8w_matmul/single_token_k2880", 1, 12, 2880, RowPath::Stream, false},
              C{"q8_q8w_matmul/three_blocks_half_step_tail", 2, 9, 96, RowPath::Stream, false},
              C{"q8_q8w_matmul/seven_tokens_rows_past_4q", 7, 10, 256, RowPath::Stream, false},
              C{"q8_q8w_matmul/two_runs_and_a_2_block_run", 3, 8, 1088, RowPath::Stream, false},
              C{"q8_q8w_matmul/one_whole_run", 2, 17, 512, RowPath::Stream, false},
              C{"q8_q8w_matmul/run_and_1_block_run", 5, 21, 544, RowPath::Stream, false},
              C{"q8_q8w_matmul/panel_path_run_and_tail", 26, 9, 544, RowPath::Panel, false},
              C{"q8_q8w_matmul/int8_exact_activations", 4, 8, 192, RowPath::Stream, true},
              C{"q8_q8w_matmul/panel_path_T30", 30, 50, 128, RowPath::Panel, false},
              C{"q8_q8w_matmul/panel_path_T5_k2880", 5, 20, 2880, RowPath::Panel, false}}) {
    std::uniform_int_distribution<int> small(-127, 127);
    const Q8 w = random_q8(c.rows, c.cols);
    auto x = randn(static_cast<size_t>(c.T) * c.cols, 1.0f);
    if (c.int_acts)  // integers with one ±127 per token: the digits are exact
      for (size_t i = 0; i < x.size(); ++i) x[i] = i % c.cols == 5 ? 127.0f : static_cast<float>(small(rng));
    for (int k = 32; k < 64; ++k) x[k] = 0.0f;  // an all-zero block
    if (c.T > 1) std::fill(x.end() - c.cols, x.end(), 0.0f);  // an all-zero token (activation scale 0)
    const auto b = randn(c.rows, 0.1f);
    const auto bd = widen(b);
    const auto want = ref::matmul(widen(x), c.T, c.cols, w.exact, c.rows, &bd);
    for (const Q8Layout layout : q8_layouts(ops)) {
    const auto y = run(ops, x, c.T, w, c.rows, c.cols, b.data(), c.path, layout);
    // Rows16 takes the digits on every path.
    const bool digits = (c.path == RowPath::Stream || layout == Q8Layout::Rows16) && !c.int_acts;
    double worst = 0.0;  // |got − want| / allowed, over all outputs
    for (int t = 0; t < c.T; ++t)
      for (int r = 0; r < c.rows; ++r) {
        double amax = 0.0, wsum = 0.0, magnitude = 0.0;
        for (int k = 0; k < c.cols; ++k) {
          const double wk = w.exact[static_cast<size_t>(r) * c.cols + k], xk = x[static_cast<size_t>(t) * c.cols + k];
          amax = std::max(amax, std::abs(xk));
          wsum += std::abs(wk);
          magnitude += std::abs(wk * xk);
        }
        const double bound = digits ? wsum * amax / 127.0 / 256.0 : 0.0;
        const double allowed = bound * 1.001 + 1e-5 * (magnitude + std::abs(bd[r])) + 1e-30;
        const size_t i = static_cast<size_t>(t) * c.rows + r;
        worst = std::max(worst, std::isfinite(y[i]) ? std::abs(y[i] - want[i]) / allowed : INFINITY);
      }
    expect_true(std::string(ops.name) + "/" + c.name + suffix(layout), worst <= 1.0, "max |Δ| / bound = " + std::to_string(worst));
    }
  }
}

// Rows [r0, r0 + nr) of w as a matrix of their own (Rows16: r0 starts a group).
MatrixQ8 sub_matrix(const Q8& w, int cols, int r0, int nr, Q8Layout layout) {
  const int nb = cols / 32;
  if (layout == Q8Layout::Rows16)
    return MatrixQ8{w.codes16.data() + q8_rows16_piece_offset(nb, r0, 0, 0), w.scales16.data() + rows16_scale_offset(nb, r0, 0), nr, cols, layout};
  return MatrixQ8{w.codes.data() + r0 * cols, w.scales.data() + r0 * nb, nr, cols};
}

// Batch invariance: a row's result is bit-identical alone, among many, at any offset, on either path, and
// whichever rows it is computed with; over Rows16 both paths give the same bits.
void test_row_independence(const OpSet& ops) {
  const int rows = 52, cols = 2880, T = 40;
  const Q8 w = random_q8(rows, cols);
  const auto x = randn(static_cast<size_t>(T) * cols, 1.0f);
  const auto b = randn(rows, 0.1f);
  for (const Q8Layout layout : q8_layouts(ops)) {
    std::vector<float> stream;
    for (const RowPath path : {RowPath::Stream, RowPath::Panel}) {
      const auto all = run(ops, x, T, w, rows, cols, b.data(), path, layout);
      int differ = 0;
      for (const auto [first, count] : {std::pair{0, 1}, std::pair{39, 1}, std::pair{3, 5}, std::pair{5, 35}, std::pair{2, 3}}) {
        const std::vector<float> part_x(x.begin() + static_cast<int64_t>(first) * cols, x.begin() + static_cast<int64_t>(first + count) * cols);
        const auto part = run(ops, part_x, count, w, rows, cols, b.data(), path, layout);
        for (size_t i = 0; i < part.size(); ++i) differ += part[i] != all[static_cast<size_t>(first) * rows + i];
      }
      // Rows r0.. as a matrix of their own: other row tiles (and rows past the tiled ones) compute them.
      const int r0 = layout == Q8Layout::Rows16 ? 16 : 3, nr = 17;
      std::vector<float> sub(static_cast<size_t>(T) * nr);
      const DenseQ8Matmul job{x.data(), T, sub_matrix(w, cols, r0, nr, layout), b.data() + r0, sub.data(), nr, path};
      ops.q8_q8w_matmul(&job, 1);
      for (int t = 0; t < T; ++t)
        for (int r = 0; r < nr; ++r) differ += sub[static_cast<size_t>(t) * nr + r] != all[static_cast<size_t>(t) * rows + r0 + r];
      if (path == RowPath::Stream) stream = all;
      else if (layout == Q8Layout::Rows16) differ += static_cast<int>(stream != all);
      expect_true(std::string(ops.name) + (path == RowPath::Stream ? "/q8_q8w_matmul/rows_independent_stream" : "/q8_q8w_matmul/rows_independent_panel") +
                      suffix(layout),
                  differ == 0, std::to_string(differ) + " values differ");
    }
  }
}

// A device backend (and a CPU without AVX512-VNNI) never gets Rows16 q8 weights: its product refuses them
// instead of reading them as runs.
void test_refuses_rows16(const OpSet& ops) {
  const Q8 w = random_q8(16, 64);
  const auto x = randn(64);
  bool refused = false;
  try {
    run(ops, x, 1, w, 16, 64, nullptr, RowPath::Stream, Q8Layout::Rows16);
  } catch (const std::exception&) {
    refused = true;
  }
  expect_true(std::string(ops.name) + "/q8_q8w_matmul/refuses_rows16", refused);
}

}  // namespace

void test_q8_dense(const OpSet& ops) {
  test_products(ops);
  test_row_independence(ops);
  if (q8_layouts(ops).size() == 1) test_refuses_rows16(ops);
}

// The conversion: each block's largest magnitude becomes ±127 exactly, every element is within half a
// step of its bf16 value, an all-zero block has scale 0 and codes 128, and a strided view reads its own columns.
// Every row width's offsets are a permutation of the row, each run holding its blocks' pieces in order.
void test_q8_layout() {
  bool permutation = true;
  for (int cols : {32, 96, 512, 544, 1088, 2880}) {
    std::vector<int> seen(static_cast<size_t>(cols), 0);
    for (int c = 0; c < cols; ++c) {
      const int64_t o = q8_code_offset(cols, c);
      if (o < 0 || o >= cols) permutation = false;
      else ++seen[static_cast<size_t>(o)];
    }
    permutation = permutation && std::all_of(seen.begin(), seen.end(), [](int n) { return n == 1; });
  }
  expect_true("layout/q8_offsets_permute_each_row", permutation);
  // Run 0 of a 2880-wide row: piece 0 of blocks 0..15, then piece 1; the 10-block last run starts at 2560.
  // Rows16: every element's code and scale where q8_rows16_piece_offset / rows16_scale_offset say, the
  // padding rows code 128 and scale 0.
  const Q8 w = random_q8(21, 544);
  const int nb = 544 / 32;
  bool same = true, padding = true;
  for (int r = 0; r < 32; ++r)
    for (int c = 0; c < 544; ++c) {
      const uint8_t code = w.codes16[static_cast<size_t>(q8_rows16_piece_offset(nb, r, c / 32, c % 32 / 4) + c % 4)];
      const float scale = w.scales16[static_cast<size_t>(rows16_scale_offset(nb, r, c / 32))];
      if (r < 21) same = same && code == w.codes[static_cast<size_t>(r * 544 + q8_code_offset(544, c))] && scale == w.scales[static_cast<size_t>(r * nb + c / 32)];
      else padding = padding && code == 128 && scale == 0.0f;
    }
  expect_true("layout/q8_rows16_same_codes", same && w.codes16.size() == 32u * 544u && w.scales16.size() == 32u * 17u);
  expect_true("layout/q8_rows16_padding", padding);
  expect_true("layout/q8_run_order", q8_code_offset(2880, 32) == 4 && q8_code_offset(2880, 4) == 64 && q8_code_offset(2880, 2560 + 32 + 5) == 2560 + 40 + 4 + 1,
              "offsets " + std::to_string(q8_code_offset(2880, 32)) + " " + std::to_string(q8_code_offset(2880, 4)) + " " +
                  std::to_string(q8_code_offset(2880, 2560 + 32 + 5)));
}

void test_q8_conversion() {
  const int rows = 5, cols = 96, ld = 128;
  std::vector<bf16_t> w(static_cast<size_t>(rows) * ld);
  const auto v = randn(w.size(), 0.05f);
  for (size_t i = 0; i < w.size(); ++i) w[i] = f32_to_bf16(v[i]);
  for (int k = 0; k < 32; ++k) w[static_cast<size_t>(ld) + k] = f32_to_bf16(0.0f);  // row 1, block 0
  std::vector<uint8_t> codes(static_cast<size_t>(rows) * cols);
  std::vector<float> scales(static_cast<size_t>(rows) * cols / 32);
  quantize_q8_rows(MatrixBF16{w.data(), rows, cols, ld}, codes.data(), scales.data());
  double worst = 0.0;
  bool extremes = true, zero_block = scales[3] == 0.0f;
  for (int r = 0; r < rows; ++r)
    for (int b = 0; b < cols / 32; ++b) {
      const float s = scales[static_cast<size_t>(r) * 3 + b];
      int peak = 0;
      for (int k = 0; k < 32; ++k) {
        const int q = static_cast<int>(codes[static_cast<size_t>(r) * cols + q8_code_offset(cols, b * 32 + k)]) - 128;
        peak = std::max(peak, std::abs(q));
        const double err = std::abs(q * static_cast<double>(s) - bf16_to_f32(w[static_cast<size_t>(r) * ld + b * 32 + k]));
        worst = std::max(worst, s > 0.0f ? err / (0.5 * s) : err);
        if (r == 1 && b == 0) zero_block = zero_block && q == 0;
      }
      if (s > 0.0f) extremes = extremes && peak == 127;
    }
  expect_true("convert/q8_from_bf16_half_step", worst <= 1.0 + 1e-6, "max error / half step = " + std::to_string(worst));
  expect_true("convert/q8_block_peak_is_127", extremes);
  expect_true("convert/q8_zero_block", zero_block);
}

}  // namespace gptoss::test
