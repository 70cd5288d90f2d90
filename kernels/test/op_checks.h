// op_checks.h — what the op suites of test_ops share across its files: the seeded inputs, the checks
// that count PASS / FAIL, and the suites that live in files of their own (test_ops_sdpa.cpp, test_ops_q8.cpp, test_ops_dense.cpp). Defined in
// test_ops.cpp, whose main() runs every suite on every backend.
#pragma once

#include <cstddef>
#include <random>
#include <string>
#include <vector>

#include "../cpu/ops.h"

namespace gptoss::test {

extern int g_failed, g_passed;
extern std::mt19937 rng;  // one stream for the whole run: a case's inputs depend on the suites before it

std::vector<float> randn(size_t n, float scale = 1.0f);
std::vector<double> widen(const std::vector<float>& v);
// Passes when max|got − want| / max(1, max|want|) ≤ tol (a non-finite value fails).
void expect_close(const std::string& name, const float* got, const std::vector<double>& want, double tol);
void expect_true(const std::string& name, bool ok, const std::string& detail = "");

// Attention (test_ops_sdpa.cpp): single sequences through the paged cache, and mixed steps, with the
// pool's elements of `type`.
void test_sdpa(const OpSet& ops, KvType type);
void test_sdpa_steps(const OpSet& ops, KvType type);
// The CPU op: rows behind a cached prefix come out as in one fresh prefill chunk (fp32 pool).
void test_sdpa_resumes_as_fresh(const OpSet& ops);
// The e4m3 codes of core/fp8.h: every code round-trips, ties round to even, saturation, NaN.
void test_fp8_codes();
// A device op set's fp8 KV store writes the CPU op's bytes: the same codes and scales.
void test_kv_store_fp8_as_cpu(const OpSet& ops);
// Dense products over q8 weights (test_ops_q8.cpp), and the load-time conversion to q8.
void test_q8_dense(const OpSet& ops);
void test_q8_conversion();
void test_q8_layout();
// Dense bf16 products in both layouts and both precisions (test_ops_dense.cpp), and the Rows16 rewrite.
void test_bf16_dense(const OpSet& ops);
void test_bf16_rows16_layout();

}  // namespace gptoss::test
