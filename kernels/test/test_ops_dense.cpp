// test_ops_dense.cpp — the bf16 dense products in both layouts (core/tensor.h) and both precisions, on
// every backend: exact products (f32_bf16w_matmul) within fp32 rounding of the fp64 reference and, over
// Rows16, the same bits as over Rows; serving products (bf16x2_bf16w_matmul) within the split's bound
// Σ_k |w_k·x_k| · (2⁻¹⁶ + K·2⁻²³); a token's serving result bit-identical alone, in a 16-token block or
// among the rows after one; a device backend refuses Rows16; and the Rows16 rewrite (pack_bf16_rows16,
// unpack_bf16_rows16) round-trips.
#include <algorithm>
#include <cmath>
#include <exception>
#include <string>
#include <utility>
#include <vector>

#include "../core/bf16.h"
#include "../core/bf16_layout.h"
#include "../cpu/bf16_rows16.h"
#include "op_checks.h"
#include "reference/ops_ref.h"

namespace gptoss::test {

namespace {

// A random row-major bf16 matrix, placed as `layout` (Rows16: rewritten by pack_bf16_rows16).
struct Dense {
  std::vector<bf16_t> rows_data, rows16_data;
  std::vector<double> exact;  // [rows][cols]
  int rows, cols;
  MatrixBF16 view(BF16Layout layout) const {
    if (layout == BF16Layout::Rows) return MatrixBF16{rows_data.data(), rows, cols, cols};
    return MatrixBF16{rows16_data.data(), rows, cols, cols, BF16Layout::Rows16};
  }
};

Dense random_dense(int rows, int cols) {
  Dense m{std::vector<bf16_t>(static_cast<size_t>(rows) * cols), {}, {}, rows, cols};
  const auto v = randn(m.rows_data.size(), 1.0f / std::sqrt(static_cast<float>(cols)));
  for (size_t i = 0; i < v.size(); ++i) m.rows_data[i] = f32_to_bf16(v[i]);
  m.exact.resize(m.rows_data.size());
  for (size_t i = 0; i < m.exact.size(); ++i) m.exact[i] = bf16_to_f32(m.rows_data[i]);
  m.rows16_data.resize(static_cast<size_t>(bf16_rows16_elements(m.view(BF16Layout::Rows))));
  pack_bf16_rows16(m.view(BF16Layout::Rows), m.rows16_data.data());
  return m;
}

// The layouts an op set's dense products read: the CPU's also take Rows16.
std::vector<BF16Layout> dense_layouts(const OpSet& ops) {
  if (std::string(ops.name) == "cpu") return {BF16Layout::Rows, BF16Layout::Rows16};
  return {BF16Layout::Rows};
}
std::string suffix(BF16Layout layout) { return layout == BF16Layout::Rows16 ? "/rows16" : ""; }

using Product = void (*)(const DenseMatmul*, int);

std::vector<float> run(Product op, const float* x, int T, const MatrixBF16& w, const float* bias, RowPath path) {
  std::vector<float> y(static_cast<size_t>(T) * w.rows);
  const DenseMatmul job{x, T, w, bias, y.data(), w.rows, path};
  op(&job, 1);
  return y;
}

// Worst |y − ref| over the serving bound, per element.
double worst_over_bound(const std::vector<float>& y, const std::vector<float>& x, int T, const Dense& w, const std::vector<float>& bias) {
  double worst = 0.0;
  for (int t = 0; t < T; ++t)
    for (int r = 0; r < w.rows; ++r) {
      double sum = bias.empty() ? 0.0 : bias[r], mag = 0.0;
      for (int k = 0; k < w.cols; ++k) {
        const double p = w.exact[static_cast<size_t>(r) * w.cols + k] * x[static_cast<size_t>(t) * w.cols + k];
        sum += p, mag += std::abs(p);
      }
      const double bound = mag * (std::ldexp(1.0, -16) + w.cols * std::ldexp(1.0, -23)) + std::abs(sum) * std::ldexp(1.0, -23) + 1e-30;
      const double got = y[static_cast<size_t>(t) * w.rows + r];
      worst = std::max(worst, std::isfinite(got) ? std::abs(got - sum) / bound : INFINITY);
    }
  return worst;
}

void test_products(const OpSet& ops) {
  struct C { const char* name; int T, rows, cols; bool bias; RowPath path; };
  for (C c : {C{"dense/single_token_k2880", 1, 70, 2880, true, RowPath::Stream}, C{"dense/four_tokens_odd_k301", 4, 33, 301, true, RowPath::Stream},
              C{"dense/five_rows_seven_tokens", 7, 5, 64, false, RowPath::Stream}, C{"dense/one_block_16", 16, 40, 96, true, RowPath::Stream},
              C{"dense/two_blocks_and_5_k75", 37, 20, 75, true, RowPath::Stream}, C{"dense/panel_T67_odd_k75", 67, 50, 75, true, RowPath::Panel},
              C{"dense/panel_T24_k2880", 24, 33, 2880, false, RowPath::Panel}}) {
    const Dense w = random_dense(c.rows, c.cols);
    const auto x = randn(static_cast<size_t>(c.T) * c.cols);
    const auto b = c.bias ? randn(c.rows, 0.1f) : std::vector<float>{};
    const auto bd = widen(b);
    const auto want = ref::matmul(widen(x), c.T, c.cols, w.exact, c.rows, c.bias ? &bd : nullptr);
    const float* bias = c.bias ? b.data() : nullptr;
    const auto rows = run(ops.f32_bf16w_matmul, x.data(), c.T, w.view(BF16Layout::Rows), bias, c.path);
    for (const BF16Layout layout : dense_layouts(ops)) {
      const std::string name = std::string(ops.name) + "/" + c.name + suffix(layout);
      const auto exact = run(ops.f32_bf16w_matmul, x.data(), c.T, w.view(layout), bias, c.path);
      expect_close(name, exact.data(), want, 1e-5);
      if (layout != BF16Layout::Rows) expect_true(name + "_same_bits_as_rows", exact == rows);
      const auto serving = run(ops.bf16x2_bf16w_matmul, x.data(), c.T, w.view(layout), bias, c.path);
      const double worst = worst_over_bound(serving, x, c.T, w, b);
      expect_true(name + "/bf16x2", worst <= 1.0, "max |Δ| / bound = " + std::to_string(worst));
    }
  }
}

// A token's serving result: the same bits alone, in a whole 16-token block (the CPU's token tile) and
// among the rows after the last block (its row tile), at any offset.
void test_rows_independent(const OpSet& ops) {
  const int T = 37, rows = 70, cols = 200;
  const Dense w = random_dense(rows, cols);
  const auto x = randn(static_cast<size_t>(T) * cols);
  const auto b = randn(rows, 0.1f);
  for (const BF16Layout layout : dense_layouts(ops)) {
    const auto all = run(ops.bf16x2_bf16w_matmul, x.data(), T, w.view(layout), b.data(), RowPath::Stream);
    int differ = 0;
    for (const auto [first, count] : {std::pair{0, 1}, std::pair{20, 1}, std::pair{3, 16}, std::pair{1, 35}, std::pair{30, 7}, std::pair{5, 4}}) {
      const auto part = run(ops.bf16x2_bf16w_matmul, x.data() + static_cast<size_t>(first) * cols, count, w.view(layout), b.data(), RowPath::Stream);
      for (size_t i = 0; i < part.size(); ++i) differ += part[i] != all[static_cast<size_t>(first) * rows + i];
    }
    expect_true(std::string(ops.name) + "/dense/bf16x2_rows_independent" + suffix(layout), differ == 0, std::to_string(differ) + " values differ");
  }
}

// A device backend never gets Rows16 weights (place_weights rewrites only the CPU engine's resident ones):
// its product refuses them instead of reading them as row-major.
void test_refuses_rows16(const OpSet& ops) {
  const Dense w = random_dense(16, 32);
  const auto x = randn(32);
  bool refused = false;
  try {
    run(ops.f32_bf16w_matmul, x.data(), 1, w.view(BF16Layout::Rows16), nullptr, RowPath::Stream);
  } catch (const std::exception&) {
    refused = true;
  }
  expect_true(std::string(ops.name) + "/dense/refuses_rows16", refused);
}

}  // namespace

void test_bf16_dense(const OpSet& ops) {
  test_products(ops);
  test_rows_independent(ops);
  if (dense_layouts(ops).size() == 1) test_refuses_rows16(ops);
}

void test_bf16_rows16_layout() {
  const Dense w = random_dense(21, 75);
  std::vector<bf16_t> back(static_cast<size_t>(w.rows) * w.cols);
  cpu::unpack_bf16_rows16(w.view(BF16Layout::Rows16), 0, w.rows, back.data(), w.cols);
  std::vector<bf16_t> tail(static_cast<size_t>(3) * w.cols);
  cpu::unpack_bf16_rows16(w.view(BF16Layout::Rows16), 17, 3, tail.data(), w.cols);
  bool pad_zero = true;  // rows 21..31 and the odd last column's partner
  for (int r = 0; r < 32; ++r)
    for (int64_t p = 0; p < bf16_pairs(w.cols); ++p) {
      const bf16_t* pair = w.rows16_data.data() + bf16_rows16_offset(w.cols, r, p);
      if (r >= w.rows) pad_zero = pad_zero && pair[0] == 0 && pair[1] == 0;
      else if (2 * p + 1 == w.cols) pad_zero = pad_zero && pair[1] == 0;
    }
  expect_true("layout/bf16_rows16_round_trip", back == w.rows_data);
  expect_true("layout/bf16_rows16_rows_from_17", std::equal(tail.begin(), tail.end(), w.rows_data.begin() + 17 * w.cols));
  expect_true("layout/bf16_rows16_padding_zero", pad_zero);
}

}  // namespace gptoss::test
