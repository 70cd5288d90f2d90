// sample_cases.cpp — f32_sample of a backend against the CPU op, setting by setting: the same token for
// the same (seed, counter), the same top logprob ids, logprobs within fp32 rounding (the CPU sums its
// log-sum-exp in fp32 lanes under AVX-512), and the same non-finite report. Every draw is also held to
// the fp64 reference (reference/ops_ref.h): a token the settings leave as a candidate, and the logprobs
// of the (masked) log-softmax. Small vocabularies for most cases, ties made on purpose, allowed-token
// masks of every shape (one token, a few scattered, every other word, all but the argmax, bits past the
// vocabulary), and gpt-oss-sized rows (201,088 tokens).
#include "sample_cases.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "reference/ops_ref.h"

namespace gptoss::test {

namespace {

struct Case {
  std::string name;
  std::vector<float> logits;
  SamplingParams p;
  std::vector<int32_t> bias_ids, prompt, output;
  std::vector<float> bias_values;
  int draws = 12;  // counters 0..draws-1, for each of two seeds
  std::vector<uint32_t> mask = {};  // allowed-token bitmask; empty: none
};

// A mask of mask_words(V) + extra words allowing `ids`.
std::vector<uint32_t> mask_of(int V, const std::vector<int>& ids, int extra = 0) {
  std::vector<uint32_t> m(mask_words(V) + extra, 0u);
  for (int id : ids) m[id / 32] |= 1u << (id % 32);
  return m;
}

std::vector<uint32_t> every_other_word(int V) {
  std::vector<uint32_t> m(mask_words(V), 0u);
  for (size_t w = 0; w < m.size(); w += 2) m[w] = ~0u;
  return m;
}

std::vector<uint32_t> all_but(int V, int id) {
  std::vector<uint32_t> m(mask_words(V), ~0u);
  m[id / 32] &= ~(1u << (id % 32));
  return m;
}

int argmax_of(const std::vector<float>& v) { return static_cast<int>(std::max_element(v.begin(), v.end()) - v.begin()); }

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

// A result against the fp64 reference: a candidate token, and the masked log-softmax's logprobs (its
// top ids in order, ties → lower id, no more than the mask allows). The tolerance is the fp32
// log-sum-exp's over up to 201,088 terms.
bool as_reference(const SampleResult& got, const ref::SampleRef& want, int requested_top, std::string* why) {
  constexpr double kTol = 1e-4;
  if (std::find(want.candidates.begin(), want.candidates.end(), got.token) == want.candidates.end())
    return *why = "token " + std::to_string(got.token) + " is not a reference candidate", false;
  if (std::abs(got.logprob - want.logprobs[got.token]) > kTol)
    return *why = "logprob " + std::to_string(got.logprob) + " vs reference " + std::to_string(want.logprobs[got.token]), false;
  if (got.non_finite != -1) return *why = "a finite row reported non-finite at " + std::to_string(got.non_finite), false;
  const int num_top = std::min({requested_top, kMaxTopLogprobs, want.allowed});
  if (got.num_top != num_top) return *why = "num_top " + std::to_string(got.num_top) + " vs " + std::to_string(num_top), false;
  for (int j = 0; j < num_top; ++j)
    if (got.top_ids[j] != want.top[j] || std::abs(got.top_logprobs[j] - want.logprobs[want.top[j]]) > kTol)
      return *why = "top logprob " + std::to_string(j) + " differs from the reference", false;
  return true;
}

void run_case(const OpSet& ops, Case c, const Expect& expect) {
  SamplingParams p = c.p;
  p.bias_ids = c.bias_ids.data(), p.bias_values = c.bias_values.data(), p.num_bias = static_cast<int>(c.bias_ids.size());
  p.prompt = c.prompt.data(), p.num_prompt = static_cast<int>(c.prompt.size());
  p.output = c.output.data(), p.num_output = static_cast<int>(c.output.size());
  if (!c.mask.empty()) p.allowed = c.mask.data(), p.allowed_words = static_cast<int>(c.mask.size());
  const int V = static_cast<int>(c.logits.size());
  const ref::SampleRef reference = ref::sample(c.logits, p);
  std::string why;
  int distinct = 0, last = -1;
  for (uint64_t seed : {uint64_t{7}, uint64_t{0x5eed}}) {
    p.seed = seed;
    for (int k = 0; k < c.draws && why.empty(); ++k) {
      SampleResult got{}, want{};
      ops.f32_sample(c.logits.data(), V, p, static_cast<uint64_t>(k), &got);
      cpu_ops().f32_sample(c.logits.data(), V, p, static_cast<uint64_t>(k), &want);
      if (!same(got, want, &why) || !as_reference(got, reference, p.num_top_logprobs, &why))
        why = "seed " + std::to_string(seed) + " counter " + std::to_string(k) + ": " + why;
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

// The same settings under allowed-token masks (V = 1000: the last of 32 words holds 8 ids).
std::vector<Case> masked_cases() {
  std::vector<Case> out;
  const std::vector<int> scattered = {3, 9, 40, 517, 998, 999};
  SamplingParams greedy, t;
  greedy.num_top_logprobs = 5;
  out.push_back({"mask_one_token_greedy_top_logprobs", random_row(1000, 2.0f, 21), greedy});
  out.back().mask = mask_of(1000, {777});
  t.temperature = 1.0f, t.top_p = 0.5f;
  out.push_back({"mask_one_token_temperature_top_p", random_row(1000, 2.0f, 22), t});
  out.back().mask = mask_of(1000, {777});
  greedy.repetition_penalty = 1.5f, greedy.presence_penalty = 0.4f, greedy.frequency_penalty = 0.3f;
  // +50 on the disallowed id 5 must not bring it back.
  out.push_back({"mask_scattered_greedy_bias_penalties", random_row(1000, 2.0f, 23), greedy, {3, 5, 9}, {1, 2, 9}, {40, 40, 517}, {4.0f, 50.0f, -1.0f}});
  out.back().mask = mask_of(1000, scattered);
  t.top_p = 1.0f, t.min_p = 0.05f, t.repetition_penalty = 1.3f, t.presence_penalty = 0.5f, t.frequency_penalty = 0.2f;
  out.push_back({"mask_scattered_min_p_penalties_bias", random_row(1000, 1.0f, 24), t, {3, 5, 999}, {9}, {40, 999}, {1.0f, 50.0f, 0.5f}});
  out.back().mask = mask_of(1000, scattered);
  SamplingParams wide;
  wide.temperature = 0.8f, wide.top_k = 50, wide.top_p = 0.9f, wide.num_top_logprobs = 20;
  out.push_back({"mask_every_other_word_top_k_top_p_top_logprobs", random_row(1000, 2.0f, 25), wide});
  out.back().mask = every_other_word(1000);
  wide.top_k = 50, wide.top_p = 1.0f, wide.num_top_logprobs = 0, wide.temperature = 1.0f;
  out.push_back({"mask_fewer_ids_than_top_k", random_row(1000, 1.0f, 26), wide});
  out.back().mask = mask_of(1000, {1, 2, 33, 64, 500, 501, 998});
  SamplingParams top3;
  top3.num_top_logprobs = 3;
  out.push_back({"mask_all_but_the_argmax_greedy", random_row(1000, 2.0f, 27), top3});
  out.back().mask = all_but(1000, argmax_of(out.back().logits));
  top3.temperature = 1.3f, top3.min_p = 0.1f;
  out.push_back({"mask_all_but_the_argmax_min_p", random_row(1000, 2.0f, 28), top3});
  out.back().mask = all_but(1000, argmax_of(out.back().logits));
  return out;
}

// Ties at the top, and bits the op must ignore.
std::vector<Case> masked_edge_cases() {
  std::vector<Case> out;
  SamplingParams greedy, ties;
  std::vector<float> tied = random_row(1000, 1.0f, 29);
  tied[100] = tied[200] = tied[300] = 50.0f;
  out.push_back({"mask_ties_lowest_allowed_id_greedy", tied, greedy});
  out.back().mask = all_but(1000, 100);
  ties.temperature = 1.0f, ties.top_k = 1;
  out.push_back({"mask_ties_top_k1_lowest_allowed_id", tied, ties});
  out.back().mask = all_but(1000, 100);
  greedy.num_top_logprobs = 3;
  // Ids 1000..1023 of the last word and eight words past mask_words(V), all set: not tokens.
  out.push_back({"mask_bits_past_V_ignored", random_row(1000, 2.0f, 30), greedy});
  out.back().mask = mask_of(1000, {5}, 8);
  out.back().mask[31] |= 0xffffff00u;
  std::fill(out.back().mask.begin() + 32, out.back().mask.end(), ~0u);
  return out;
}

// A mask that allows no id below V: the CPU op fails with invalid_argument; a device op, which cannot
// read its device-resident mask on the host, answers token -1 (the engine checks masks before the step).
// A mask shorter than mask_words(V) fails on every backend.
void test_mask_errors(const OpSet& ops, const Expect& expect) {
  const std::vector<float> logits = random_row(1000, 1.0f, 31);
  std::vector<uint32_t> past_v = mask_of(1000, {});
  past_v[31] = 0xffffff00u;
  for (const auto& [label, mask] : {std::pair{"allows_nothing", mask_of(1000, {})}, std::pair{"allows_only_ids_past_V", past_v}}) {
    SamplingParams p;
    p.allowed = mask.data(), p.allowed_words = static_cast<int>(mask.size()), p.num_top_logprobs = 2;
    SampleResult got{};
    std::string error;
    try {
      ops.f32_sample(logits.data(), 1000, p, 0, &got);
    } catch (const Error& e) {
      error = e.status() == gptoss_status_invalid_argument ? e.what() : "wrong status";
    }
    const bool ok = ops.memory.host_is_device ? error == "sample: the allowed-token mask allows no token id below the vocabulary size 1000"
                                              : error.empty() && got.token == -1 && got.num_top == 0 && got.non_finite == -1;
    expect(std::string(ops.name) + "/sample_mask/" + label, ok, error.empty() ? "token " + std::to_string(got.token) : error);
  }
  const std::vector<uint32_t> short_mask(31, ~0u);
  SamplingParams p;
  p.allowed = short_mask.data(), p.allowed_words = 31;
  std::string error;
  try {
    SampleResult got{};
    ops.f32_sample(logits.data(), 1000, p, 0, &got);
  } catch (const Error& e) {
    if (e.status() == gptoss_status_invalid_argument) error = e.what();
  }
  expect(std::string(ops.name) + "/sample_mask/shorter_than_ceil_V_over_32", error == "sample: the allowed-token mask has 31 words; a vocabulary of 1000 tokens needs 32", error);
}

}  // namespace

void test_sample_against_cpu(const OpSet& ops, const Expect& expect) {
  for (Case& c : cases()) run_case(ops, std::move(c), expect);
  for (Case& c : masked_cases()) run_case(ops, std::move(c), expect);
  for (Case& c : masked_edge_cases()) run_case(ops, std::move(c), expect);
  test_mask_errors(ops, expect);
  // Non-finite rows: the op names the first bad index (greedy: the CPU's sort is not run on NaN).
  for (const auto& [label, bad] : {std::pair{"nan", NAN}, std::pair{"plus_inf", INFINITY}, std::pair{"minus_inf", -INFINITY}}) {
    Case c{std::string("non_finite_") + label, random_row(500, 1.0f, 12), SamplingParams{}};
    c.logits[321] = bad, c.logits[400] = NAN, c.draws = 1;
    SampleResult got{};
    ops.f32_sample(c.logits.data(), 500, c.p, 0, &got);
    expect(std::string(ops.name) + "/sample_vs_cpu/" + c.name, got.non_finite == 321, std::to_string(got.non_finite));
    // The check reads the raw row: a bad logit the mask disallows is still reported, and the mask's own
    // −inf never is.
    const std::vector<uint32_t> mask = mask_of(500, {7});
    c.p.allowed = mask.data(), c.p.allowed_words = static_cast<int>(mask.size());
    ops.f32_sample(c.logits.data(), 500, c.p, 0, &got);
    expect(std::string(ops.name) + "/sample_vs_cpu/" + c.name + "_disallowed", got.non_finite == 321, std::to_string(got.non_finite));
  }
  // A gpt-oss row: the whole vocabulary as candidates (top_k 0) cut by top-p, and a wide top-k with min-p.
  SamplingParams big;
  big.temperature = 1.0f, big.top_p = 0.9f, big.num_top_logprobs = 3;
  run_case(ops, Case{"V201088_top_k0_top_p0.9", random_row(201088, 3.0f, 13), big, {}, {}, {}, {}, 2}, expect);
  big.top_p = 1.0f, big.top_k = 1000, big.min_p = 0.02f;
  run_case(ops, Case{"V201088_top_k1000_min_p", random_row(201088, 3.0f, 14), big, {}, {}, {}, {}, 2}, expect);
  big.top_p = 0.9f, big.top_k = 0, big.min_p = 0.0f;
  run_case(ops, Case{"V201088_mask_every_other_word_top_p0.9", random_row(201088, 3.0f, 15), big, {}, {}, {}, {}, 2, every_other_word(201088)}, expect);
}

}  // namespace gptoss::test
