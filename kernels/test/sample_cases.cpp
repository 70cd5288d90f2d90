// sample_cases.cpp — f32_sample of a backend against the CPU op, setting by setting: the same token for
// the same (seed, counter), the same top logprob ids, logprobs within fp32 rounding (the CPU sums its
// log-sum-exp in fp32 lanes under AVX-512), and the same non-finite report. Small vocabularies for most
// cases, ties made on purpose, and one gpt-oss-sized row (201,088 tokens).
#include "sample_cases.h"

#include <cmath>
#include <random>
#include <string>
#include <vector>

namespace gptoss::test {

namespace {

struct Case {
  std::string name;
  std::vector<float> logits;
  SamplingParams p;
  std::vector<int32_t> bias_ids, prompt, output;
  std::vector<float> bias_values;
  int draws = 12;  // counters 0..draws-1, for each of two seeds
};

std::vector<float> random_row(int V, float scale, uint32_t seed, float step = 0.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(V);
  for (auto& x : v) x = step > 0.0f ? std::round(d(rng) / step) * step : d(rng);  // step > 0: many ties
  return v;
}

bool same(const SampleResult& a, const SampleResult& b, std::string* why) {
  if (a.token != b.token) return *why = "token " + std::to_string(a.token) + " vs cpu " + std::to_string(b.token), false;
  if (std::abs(a.logprob - b.logprob) > 1e-5f) return *why = "logprob " + std::to_string(a.logprob) + " vs " + std::to_string(b.logprob), false;
  if (a.num_top != b.num_top) return *why = "num_top differs", false;
  for (int j = 0; j < a.num_top; ++j)
    if (a.top_ids[j] != b.top_ids[j] || std::abs(a.top_logprobs[j] - b.top_logprobs[j]) > 1e-5f)
      return *why = "top logprob " + std::to_string(j) + " differs", false;
  if (a.non_finite != b.non_finite) return *why = "non_finite differs", false;
  return true;
}

void run_case(const OpSet& ops, Case c, const Expect& expect) {
  SamplingParams p = c.p;
  p.bias_ids = c.bias_ids.data(), p.bias_values = c.bias_values.data(), p.num_bias = static_cast<int>(c.bias_ids.size());
  p.prompt = c.prompt.data(), p.num_prompt = static_cast<int>(c.prompt.size());
  p.output = c.output.data(), p.num_output = static_cast<int>(c.output.size());
  const int V = static_cast<int>(c.logits.size());
  std::string why;
  int distinct = 0, last = -1;
  for (uint64_t seed : {uint64_t{7}, uint64_t{0x5eed}}) {
    p.seed = seed;
    for (int k = 0; k < c.draws && why.empty(); ++k) {
      SampleResult got{}, want{};
      ops.f32_sample(c.logits.data(), V, p, static_cast<uint64_t>(k), &got);
      cpu_ops().f32_sample(c.logits.data(), V, p, static_cast<uint64_t>(k), &want);
      if (!same(got, want, &why)) why = "seed " + std::to_string(seed) + " counter " + std::to_string(k) + ": " + why;
      distinct += want.token != last;
      last = want.token;
    }
  }
  expect(std::string(ops.name) + "/sample_vs_cpu/" + c.name, why.empty(), why.empty() ? std::to_string(distinct) + " token changes" : why);
}

std::vector<Case> cases() {
  std::vector<Case> out;
  SamplingParams greedy;
  out.push_back({"greedy_bias_penalties", random_row(1000, 2.0f, 1), greedy, {3, 9, 3}, {1, 2, 9, 9}, {9, 40, 40}, {4.0f, -1.0f, 2.0f}});
  out.back().p.repetition_penalty = 1.5f, out.back().p.presence_penalty = 0.4f, out.back().p.frequency_penalty = 0.3f;
  out.push_back({"greedy_ties_lowest_id_top_logprobs", random_row(1000, 2.0f, 2, 0.5f), greedy});
  out.back().p.num_top_logprobs = 20;
  SamplingParams t;
  t.temperature = 0.8f, t.top_p = 0.9f;
  out.push_back({"top_k0_top_p0.9", random_row(1000, 2.0f, 3), t});
  t.top_p = 0.3f;
  out.push_back({"top_k0_top_p0.3_top_logprobs", random_row(1000, 1.0f, 4), t});
  out.back().p.num_top_logprobs = 5;
  t.top_p = 1.0f, t.top_k = 100;
  out.push_back({"top_k100", random_row(1000, 1.0f, 5), t});
  t.top_k = 300, t.min_p = 0.05f, t.temperature = 1.3f;
  out.push_back({"top_k300_min_p", random_row(1000, 1.5f, 6), t});
  t.top_k = 0, t.min_p = 0.1f, t.top_p = 0.7f, t.repetition_penalty = 1.3f, t.presence_penalty = 0.5f, t.frequency_penalty = 0.2f;
  out.push_back({"min_p_top_p_penalties_bias", random_row(1000, 2.0f, 7), t, {5, 6, 5}, {1, 5, 17}, {17, 17, 2}, {3.0f, 2.5f, -0.5f}});
  SamplingParams ties;
  ties.temperature = 1.0f, ties.top_k = 37, ties.top_p = 0.5f;
  out.push_back({"ties_top_k_cut_inside_a_tie", random_row(1000, 1.0f, 8, 0.5f), ties});
  ties.top_k = 0, ties.top_p = 0.35f;
  out.push_back({"all_equal_top_p_cut_inside_the_tie", std::vector<float>(10, 0.0f), ties});
  ties.top_p = 1.0f, ties.top_k = 0;
  out.push_back({"all_equal_whole_list", std::vector<float>(10, -0.0f), ties, {}, {}, {}, {}, 40});
  out.back().logits[4] = 0.0f;  // −0 and +0 tie, as the CPU's comparisons see them
  SamplingParams edge;
  edge.temperature = 0.7f, edge.min_p = 1.5f;
  out.push_back({"min_p_above_one_keeps_the_first", random_row(300, 1.0f, 9, 0.25f), edge});
  edge.min_p = 0.0f, edge.top_k = 299;
  out.push_back({"top_k_V_minus_1", random_row(300, 4.0f, 10), edge});
  edge.top_k = 500, edge.temperature = 0.05f;
  out.push_back({"top_k_above_V_low_temperature_underflow", random_row(300, 30.0f, 11), edge});
  return out;
}

}  // namespace

void test_sample_against_cpu(const OpSet& ops, const Expect& expect) {
  for (Case& c : cases()) run_case(ops, std::move(c), expect);
  // Non-finite rows: the op names the first bad index (greedy: the CPU's sort is not run on NaN).
  for (const auto& [label, bad] : {std::pair{"nan", NAN}, std::pair{"plus_inf", INFINITY}, std::pair{"minus_inf", -INFINITY}}) {
    Case c{std::string("non_finite_") + label, random_row(500, 1.0f, 12), SamplingParams{}};
    c.logits[321] = bad, c.logits[400] = NAN, c.draws = 1;
    SampleResult got{};
    ops.f32_sample(c.logits.data(), 500, c.p, 0, &got);
    expect(std::string(ops.name) + "/sample_vs_cpu/" + c.name, got.non_finite == 321, std::to_string(got.non_finite));
  }
  // A gpt-oss row: the whole vocabulary as candidates (top_k 0) cut by top-p, and a wide top-k with min-p.
  SamplingParams big;
  big.temperature = 1.0f, big.top_p = 0.9f, big.num_top_logprobs = 3;
  run_case(ops, Case{"V201088_top_k0_top_p0.9", random_row(201088, 3.0f, 13), big, {}, {}, {}, {}, 2}, expect);
  big.top_p = 1.0f, big.top_k = 1000, big.min_p = 0.02f;
  run_case(ops, Case{"V201088_top_k1000_min_p", random_row(201088, 3.0f, 14), big, {}, {}, {}, {}, 2}, expect);
}

}  // namespace gptoss::test
