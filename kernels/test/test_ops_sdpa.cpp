// test_ops_sdpa.cpp — the attention cases of test_ops (f32_sdpa_sinks with f32_kv_store) against the fp64
// reference: one sequence through the paged cache, and steps that mix several decode and prefill
// sequences, each of whose rows must also equal what the sequence gives when run alone. Every case runs
// with an fp32, a bf16 and an fp8 pool; for bf16 and fp8 the reference takes the cached rows as the
// cache gives them back (rounded to bf16; quantized to e4m3 under each row's scale), so the tolerance is
// the fp32 one.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "../core/bf16.h"
#include "../core/fp8.h"
#include "op_checks.h"
#include "reference/ops_ref.h"

namespace gptoss::test {

namespace {

// A pool of `blocks` blocks as raw bytes, every element a NaN (fp32 and bf16: 0x7fc0 in every 16-bit
// half; fp8: the code 0x7f), and for fp8 the row scales after the codes: a read of a row never stored
// shows as NaN.
std::vector<uint8_t> nan_pool(int blocks, int Hkv, int block, int D, KvType type) {
  const int64_t elems = static_cast<int64_t>(blocks) * 2 * Hkv * block * D;
  if (type == KvType::FP8) return std::vector<uint8_t>(elems + static_cast<int64_t>(blocks) * 2 * Hkv * block * 4, 0x7f);
  std::vector<uint8_t> pool(elems * KvLayer::kv_elem_bytes(type));
  for (size_t i = 0; i < pool.size(); i += 2) pool[i] = 0xc0, pool[i + 1] = 0x7f;
  return pool;
}

KvLayer pool_layer(std::vector<uint8_t>& pool, int block, int Hkv, int D, KvType type) {
  KvLayer kv{pool.data(), block, Hkv, D, type};
  if (type == KvType::FP8) kv.scales = reinterpret_cast<float*>(pool.data() + pool.size() / (D + 4) * D);
  return kv;
}

// Poisons block b, as the scheduler frees it: a read of it would show as NaN.
void poison_block(std::vector<uint8_t>& pool, const KvLayer& kv, int b) {
  const int64_t bytes = kv.block_elems() * kv.elem_bytes();
  if (kv.type == KvType::FP8) std::fill_n(pool.begin() + b * bytes, bytes, 0x7f);
  else for (int64_t i = b * bytes; i < (b + 1) * bytes; i += 2) pool[i] = 0xc0, pool[i + 1] = 0x7f;
}

// x with its first `cached` elements as the cache gives them back: rounded to bf16, or each row of D
// elements quantized to e4m3 under its scale.
std::vector<float> as_cached(std::vector<float> x, size_t cached, KvType type, int D) {
  if (type == KvType::BF16)
    for (size_t i = 0; i < cached; ++i) x[i] = bf16_to_f32(f32_to_bf16(x[i]));
  if (type == KvType::FP8)
    for (size_t r = 0; r < cached; r += D) {
      float amax = 0.0f;
      for (int d = 0; d < D; ++d) amax = std::max(amax, std::fabs(x[r + d]));
      const float scale = fp8_row_scale(amax);
      for (int d = 0; d < D; ++d) x[r + d] = e4m3_to_f32(fp8_encode(x[r + d], scale)) * scale;
    }
  return x;
}

std::string case_name(const OpSet& ops, const char* name, KvType type) {
  return std::string(ops.name) + "/" + name + (type == KvType::BF16 ? "/bf16_kv" : type == KvType::FP8 ? "/fp8_kv" : "");
}

}  // namespace

// Attention through the paged cache: `cached` rows are stored first, then the rest attend.
void test_sdpa(const OpSet& ops, KvType type) {
  // free_old: blocks wholly before the window are poisoned with NaN and marked -1, as the scheduler frees them.
  struct C { const char* name; int T, cached, Hq, Hkv, D, window, block; float sink; bool free_old; };
  for (C c : {C{"sdpa_sinks/prefill_full_causal", 20, 0, 4, 2, 16, 0, 4, 0.3f, false},
              C{"sdpa_sinks/sliding_window_edge_T_eq_W_plus_1", 9, 0, 4, 2, 16, 8, 4, 0.0f, true},
              C{"sdpa_sinks/decode_through_pages", 37, 36, 8, 2, 16, 0, 4, -0.5f, false},
              C{"sdpa_sinks/sliding_decode_old_blocks_freed", 40, 39, 4, 4, 16, 8, 4, 0.1f, true},
              C{"sdpa_sinks/sliding_chunk_after_freed_prefix", 30, 21, 4, 2, 16, 8, 4, 0.2f, true},
              C{"sdpa_sinks/sink_dominates", 6, 0, 2, 1, 16, 0, 4, 30.0f, false},
              C{"sdpa_sinks/sink_negligible", 6, 0, 2, 1, 16, 0, 4, -30.0f, false},
              C{"sdpa_sinks/gqa_group_8_head_dim_64", 5, 2, 8, 1, 64, 0, 16, 0.0f, false},
              C{"sdpa_sinks/prefill_vector_path_sliding_T70_W8_D64", 70, 0, 8, 2, 64, 8, 16, 0.7f, true},
              C{"sdpa_sinks/prefill_vector_path_sink_dominates_T33", 33, 0, 4, 2, 32, 0, 8, 25.0f, false}}) {
    const int T = c.T, D = c.D;
    auto q = randn(static_cast<size_t>(T) * c.Hq * D), k = randn(static_cast<size_t>(T) * c.Hkv * D), v = randn(static_cast<size_t>(T) * c.Hkv * D);
    std::vector<float> sinks(c.Hq, c.sink);
    const float scale = 1.0f / std::sqrt(static_cast<float>(D));
    const int nblocks = (T + c.block - 1) / c.block;
    std::vector<int32_t> table(nblocks);
    for (int i = 0; i < nblocks; ++i) table[i] = nblocks - 1 - i;  // non-identity block order
    std::vector<uint8_t> pool = nan_pool(nblocks, c.Hkv, c.block, D, type);
    const KvLayer kv = pool_layer(pool, c.block, c.Hkv, D, type);
    // Store the cached prefix one token at a time (as decode would), then run the rest as one chunk.
    for (int p = 0; p < c.cached; ++p) {
      AttnSeq s{0, 1, p, table.data(), nblocks};
      ops.f32_kv_store(k.data() + static_cast<size_t>(p) * c.Hkv * D, v.data() + static_cast<size_t>(p) * c.Hkv * D, c.Hkv * D, &s, 1, kv);
    }
    if (c.free_old) {
      const int first_live = std::max(0, c.cached - c.window + 1) / c.block;
      for (int i = 0; i < first_live; ++i) {
        poison_block(pool, kv, table[i]);
        table[i] = -1;
      }
    }
    const int n = T - c.cached;
    AttnSeq s{0, n, c.cached, table.data(), nblocks};
    std::vector<float> out(static_cast<size_t>(n) * c.Hq * D);
    std::vector<float> work(ops.sdpa_workspace_floats(1, c.Hq, D));
    ops.f32_sdpa_sinks(q.data() + static_cast<size_t>(c.cached) * c.Hq * D, c.Hq * D, k.data() + static_cast<size_t>(c.cached) * c.Hkv * D,
                       v.data() + static_cast<size_t>(c.cached) * c.Hkv * D, c.Hkv * D, &s, 1, kv, c.Hq, sinks.data(), scale, c.window,
                       out.data(), c.Hq * D, work.data());
    const size_t cached = static_cast<size_t>(c.cached) * c.Hkv * D;
    auto want = ref::sdpa_sinks(widen(q), widen(as_cached(k, cached, type, D)), widen(as_cached(v, cached, type, D)), T, c.Hq, c.Hkv, D,
                                widen(sinks), scale, c.window);
    want.erase(want.begin(), want.begin() + static_cast<long>(c.cached) * c.Hq * D);
    expect_close(case_name(ops, c.name, type), out.data(), want, 1e-5);
  }
}

// Several sequences in one step through the paged cache, decode (one new row) and prefill (several)
// mixed: each sequence's first `cached` positions are stored first, then every sequence's remaining rows
// attend in one call. Covers the CUDA split-K decode path (ranges of several 256-key chunks, more chunks
// than splits, a window across chunk borders) and the tiled prefill path (cached prefix + new rows, row
// counts off the tile, GQA groups of 8 and of 12). Each sequence is also run alone: its rows must be
// bit-identical to the mixed step's (batch invariance).
namespace {

struct StepSeq { int T, cached; };
struct StepCase { const char* name; std::vector<StepSeq> seqs; int Hq, Hkv, D, window, block; float sink; bool free_old; };

struct StepInputs {
  std::vector<std::vector<float>> q, k, v;  // per sequence, all T rows
  std::vector<std::vector<int32_t>> tables;
  KvType type;
  std::vector<uint8_t> pool;
  std::vector<float> sinks;
};

StepInputs step_inputs(const OpSet& ops, const StepCase& c, KvType type) {
  StepInputs in;
  in.type = type;
  const int D = c.D;
  int total_blocks = 0;
  for (const StepSeq& s : c.seqs) total_blocks += (s.T + c.block - 1) / c.block;
  in.pool = nan_pool(total_blocks, c.Hkv, c.block, D, type);
  const KvLayer kv = pool_layer(in.pool, c.block, c.Hkv, D, type);
  int next_block = total_blocks;  // handed out downwards: block ids are not in position order
  for (const StepSeq& s : c.seqs) {
    in.q.push_back(randn(static_cast<size_t>(s.T) * c.Hq * D));
    in.k.push_back(randn(static_cast<size_t>(s.T) * c.Hkv * D));
    in.v.push_back(randn(static_cast<size_t>(s.T) * c.Hkv * D));
    const int nblocks = (s.T + c.block - 1) / c.block;
    std::vector<int32_t> table(nblocks);
    for (auto& b : table) b = --next_block;
    if (s.cached > 0) {
      AttnSeq prefix{0, s.cached, 0, table.data(), nblocks};
      ops.f32_kv_store(in.k.back().data(), in.v.back().data(), c.Hkv * D, &prefix, 1, kv);
    }
    if (c.free_old) {  // blocks wholly before the first new row's window are poisoned and unmapped, as the scheduler frees them
      const int first_live = std::max(0, s.cached - c.window + 1) / c.block;
      for (int i = 0; i < first_live; ++i) {
        poison_block(in.pool, kv, table[i]);
        table[i] = -1;
      }
    }
    in.tables.push_back(std::move(table));
  }
  in.sinks.resize(c.Hq);
  for (int h = 0; h < c.Hq; ++h) in.sinks[h] = c.sink + 0.25f * static_cast<float>(h % 3);
  return in;
}

float step_scale(const StepCase& c) { return 1.0f / std::sqrt(static_cast<float>(c.D)); }

// Runs the new rows of the sequences `pick` as one step; returns their outputs, in pick order.
std::vector<float> run_step(const OpSet& ops, const StepCase& c, StepInputs& in, const std::vector<int>& pick) {
  const int D = c.D;
  std::vector<float> q, k, v;
  std::vector<AttnSeq> seqs;
  int rows = 0;
  for (int i : pick) {
    const StepSeq& s = c.seqs[i];
    q.insert(q.end(), in.q[i].begin() + static_cast<long>(s.cached) * c.Hq * D, in.q[i].end());
    k.insert(k.end(), in.k[i].begin() + static_cast<long>(s.cached) * c.Hkv * D, in.k[i].end());
    v.insert(v.end(), in.v[i].begin() + static_cast<long>(s.cached) * c.Hkv * D, in.v[i].end());
    seqs.push_back({rows, s.T - s.cached, s.cached, in.tables[i].data(), static_cast<int>(in.tables[i].size())});
    rows += s.T - s.cached;
  }
  std::vector<float> out(static_cast<size_t>(rows) * c.Hq * D, NAN);
  const KvLayer kv = pool_layer(in.pool, c.block, c.Hkv, D, in.type);
  std::vector<float> work(ops.sdpa_workspace_floats(static_cast<int>(seqs.size()), c.Hq, D));
  ops.f32_sdpa_sinks(q.data(), c.Hq * D, k.data(), v.data(), c.Hkv * D, seqs.data(), static_cast<int>(seqs.size()), kv, c.Hq,
                     in.sinks.data(), step_scale(c), c.window, out.data(), c.Hq * D, work.data());
  return out;
}

}  // namespace

void test_sdpa_steps(const OpSet& ops, KvType type) {
  const std::vector<StepCase> cases = {
      {"sdpa_steps/decode_700_keys_three_chunks", {{700, 699}}, 4, 2, 16, 0, 16, 0.3f, false},
      {"sdpa_steps/decode_4500_keys_more_chunks_than_splits", {{4500, 4499}}, 2, 1, 8, 0, 64, -0.2f, false},
      {"sdpa_steps/sliding_decode_window_across_chunk_border", {{601, 600}}, 4, 2, 16, 300, 16, 0.1f, true},
      {"sdpa_steps/prefill_cached_prefix_rows_off_tile", {{90, 50}}, 4, 2, 32, 0, 16, 0.2f, false},
      {"sdpa_steps/mixed_gqa8_decode_and_prefill_D64", {{300, 299}, {45, 0}, {70, 33}, {1, 0}, {600, 599}}, 16, 2, 64, 0, 16, 0.0f, false},
      {"sdpa_steps/mixed_sliding_freed_blocks", {{300, 299}, {100, 60}, {37, 0}, {3, 1}}, 4, 1, 16, 40, 8, 0.4f, true},
      {"sdpa_steps/mixed_gqa12_partial_head_block", {{40, 20}, {300, 299}}, 12, 1, 16, 0, 16, -0.3f, false}};
  for (const StepCase& c : cases) {
    StepInputs in = step_inputs(ops, c, type);
    std::vector<int> all(c.seqs.size());
    for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int>(i);
    const std::vector<float> out = run_step(ops, c, in, all);
    std::vector<double> want;
    for (size_t i = 0; i < c.seqs.size(); ++i) {
      const StepSeq& s = c.seqs[i];
      const size_t cached = static_cast<size_t>(s.cached) * c.Hkv * c.D;
      auto w = ref::sdpa_sinks(widen(in.q[i]), widen(as_cached(in.k[i], cached, type, c.D)), widen(as_cached(in.v[i], cached, type, c.D)), s.T,
                               c.Hq, c.Hkv, c.D, widen(in.sinks), step_scale(c), c.window);
      want.insert(want.end(), w.begin() + static_cast<long>(s.cached) * c.Hq * c.D, w.end());
    }
    expect_close(case_name(ops, c.name, type), out.data(), want, 1e-5);
    if (c.seqs.size() < 2) continue;
    bool same = true;
    size_t offset = 0;
    for (int i : all) {
      const std::vector<float> alone = run_step(ops, c, in, {i});
      same = same && std::memcmp(alone.data(), out.data() + offset, alone.size() * sizeof(float)) == 0;
      offset += alone.size();
    }
    expect_true(case_name(ops, c.name, type) + "/rows_as_when_alone", same);
  }
}

// With an fp32 pool, rows computed behind a cached prefix (a prefix-cache hit, or decode) are bit-identical
// to the same rows of one fresh prefill chunk: the keys are the same floats wherever they lie, and the CPU
// op gives a row the same arithmetic whichever chunk it is in (a CPU property: the CUDA decode splits keys).
void test_sdpa_resumes_as_fresh(const OpSet& ops) {
  for (const StepCase& resumed : {StepCase{"sdpa_resume/prefix_hit_50_of_90", {{90, 50}}, 8, 1, 64, 0, 16, 0.2f, false},
                                  StepCase{"sdpa_resume/decode_row_90", {{90, 89}}, 8, 1, 64, 0, 16, 0.2f, false},
                                  StepCase{"sdpa_resume/sliding_prefix_hit_130_of_200", {{200, 130}}, 8, 2, 64, 40, 16, -0.1f, false},
                                  StepCase{"sdpa_resume/sliding_decode_row_200", {{200, 199}}, 8, 2, 64, 40, 16, -0.1f, false}}) {
    StepInputs in = step_inputs(ops, resumed, KvType::F32);
    const std::vector<float> got = run_step(ops, resumed, in, {0});
    StepCase fresh = resumed;
    fresh.seqs = {{resumed.seqs[0].T, 0}};
    StepInputs all = step_inputs(ops, fresh, KvType::F32);
    all.q = in.q, all.k = in.k, all.v = in.v;
    const std::vector<float> want = run_step(ops, fresh, all, {0});
    const size_t skip = static_cast<size_t>(resumed.seqs[0].cached) * resumed.Hq * resumed.D;
    expect_true(std::string(ops.name) + "/" + resumed.name, got.size() + skip == want.size() &&
                                                            std::memcmp(got.data(), want.data() + skip, got.size() * sizeof(float)) == 0);
  }
}

void test_fp8_codes() {
  int bad_round_trip = 0, bad_ties = 0;
  for (int c = 0; c < 256; ++c) {
    const float x = e4m3_to_f32(static_cast<uint8_t>(c));
    if ((c & 0x7f) == 0x7f) {
      bad_round_trip += !std::isnan(x) || f32_to_e4m3(x) != (c & 0x80 ? 0xff : 0x7f);
      continue;
    }
    bad_round_trip += f32_to_e4m3(x) != c;
    // Between this code and the next larger magnitude: the midpoint goes to the even code, either side
    // of it to the nearer one.
    if ((c & 0x7f) >= 0x7e) continue;
    const float next = e4m3_to_f32(static_cast<uint8_t>(c + 1)), mid = (x + next) / 2;
    const int even = c % 2 == 0 ? c : c + 1;
    bad_ties += f32_to_e4m3(mid) != even;
    bad_ties += f32_to_e4m3(std::nextafter(mid, x)) != c || f32_to_e4m3(std::nextafter(mid, next)) != c + 1;
  }
  expect_true("fp8/e4m3_every_code_round_trips", bad_round_trip == 0, std::to_string(bad_round_trip) + " codes");
  expect_true("fp8/e4m3_ties_to_even", bad_ties == 0, std::to_string(bad_ties) + " midpoints");
  expect_true("fp8/e4m3_saturates", f32_to_e4m3(1e6f) == 0x7e && f32_to_e4m3(-463.9f) == 0xfe && f32_to_e4m3(INFINITY) == 0x7e &&
                                        e4m3_to_f32(0x7e) == 448.0f);
  expect_true("fp8/e4m3_subnormals", e4m3_to_f32(0x01) == std::ldexp(1.0f, -9) && f32_to_e4m3(std::ldexp(1.0f, -10)) == 0x00 &&
                                         f32_to_e4m3(std::ldexp(3.0f, -10)) == 0x02 && f32_to_e4m3(-std::ldexp(1.0f, -6)) == 0x88);
  expect_true("fp8/row_scale_zero_row_reads_zero", fp8_encode(0.0f, fp8_row_scale(0.0f)) == 0 && std::isnan(e4m3_to_f32(fp8_encode(NAN, 1.0f))));
}

void test_kv_store_fp8_as_cpu(const OpSet& ops) {
  const int Hkv = 2, D = 64, block = 16, T = 37, nblocks = (T + block - 1) / block;
  auto k = randn(static_cast<size_t>(T) * Hkv * D, 3.0f), v = randn(static_cast<size_t>(T) * Hkv * D, 0.01f);
  k[5] = NAN;  // a NaN element: its row's other codes keep their scale
  std::fill_n(v.begin() + D, D, 0.0f);  // an all-zero row
  std::vector<int32_t> table(nblocks);
  for (int i = 0; i < nblocks; ++i) table[i] = nblocks - 1 - i;
  std::vector<uint8_t> mine = nan_pool(nblocks, Hkv, block, D, KvType::FP8), cpu = mine;
  const AttnSeq s{0, T, 0, table.data(), nblocks};
  ops.f32_kv_store(k.data(), v.data(), Hkv * D, &s, 1, pool_layer(mine, block, Hkv, D, KvType::FP8));
  cpu_ops().f32_kv_store(k.data(), v.data(), Hkv * D, &s, 1, pool_layer(cpu, block, Hkv, D, KvType::FP8));
  expect_true(std::string(ops.name) + "/kv_store/fp8_bytes_as_cpu", mine == cpu);
}

}  // namespace gptoss::test
