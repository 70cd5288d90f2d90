// sample.cpp — token selection from one row of logits, in native code (no 800 KB logits round trip to JS).
// Order: allowed-token mask (disallowed ids are −inf) → logit_bias → repetition penalty (prompt ∪ output)
// → presence/frequency penalties (output) → greedy (temperature 0; lowest id on ties) or temperature →
// top-k → min-p → top-p → draw. The draw uses a counter-based generator keyed by (seed, counter), so a
// request's tokens do not depend on what else shares the batch. Logprobs are log-softmax of the model's
// raw logits (vLLM's default), masked: with a mask they are the constrained distribution's (as OpenAI
// reports them), and a disallowed id is never among the top logprobs.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <numeric>
#include <unordered_map>
#include <utility>
#include <vector>

#include "../core/error.h"
#include "ops.h"
#include "simd.h"
#include "vec_exp.h"

namespace gptoss::cpu {

// kernels
static uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

static double uniform01(uint64_t seed, uint64_t counter) {
  return static_cast<double>(splitmix64(splitmix64(seed) ^ counter) >> 11) * (1.0 / 9007199254740992.0);
}

// Index of the first NaN or ±Inf (exponent bits all ones), or -1: the device ops report it in the
// result, since their rows stay on the device; here the engine has checked already, so this only keeps
// the two contracts alike.
static int32_t first_non_finite(const float* x, int V) {
  for (int i = 0; i < V; ++i) {
    uint32_t bits;
    std::memcpy(&bits, x + i, sizeof bits);
    if ((bits & 0x7f800000u) == 0x7f800000u) return i;
  }
  return -1;
}

static void top_logprobs(const float* logits, int V, int n, float lse, SampleResult* out) {
  out->num_top = std::min(n, kMaxTopLogprobs);
  if (out->num_top <= 0) return;
  std::vector<int32_t> ids(V);
  std::iota(ids.begin(), ids.end(), 0);
  auto better = [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
  std::partial_sort(ids.begin(), ids.begin() + out->num_top, ids.end(), better);
  for (int i = 0; i < out->num_top; ++i) {
    out->top_ids[i] = ids[i];
    out->top_logprobs[i] = logits[ids[i]] - lse;
  }
}

// max and log-sum-exp of a logits row: AVX-512 (fp32 sum of 16-lane partials) or scalar (fp64).
__attribute__((target("avx512f,fma"))) static float lse_avx512(const float* x, int V, float* max_out) {
  __m512 vmax = _mm512_set1_ps(-INFINITY);
  int i = 0;
  for (; i + 16 <= V; i += 16) vmax = _mm512_max_ps(vmax, _mm512_loadu_ps(x + i));
  float mx = _mm512_reduce_max_ps(vmax);
  for (int j = i; j < V; ++j) mx = std::max(mx, x[j]);
  __m512 vsum = _mm512_setzero_ps();
  const __m512 vm = _mm512_set1_ps(mx);
  for (i = 0; i + 16 <= V; i += 16) vsum = _mm512_add_ps(vsum, exp16(_mm512_sub_ps(_mm512_loadu_ps(x + i), vm)));
  double z = _mm512_reduce_add_ps(vsum);
  for (int j = i; j < V; ++j) z += std::exp(static_cast<double>(x[j]) - mx);
  *max_out = mx;
  return mx + static_cast<float>(std::log(z));
}

// Log-sum-exp of a row: AVX-512 when the host has it, else scalar in fp64.
static float log_sum_exp(const float* x, int V) {
  float mx = x[0];
  if (simd_level() == Simd::Avx512) return lse_avx512(x, V, &mx);
  for (int i = 1; i < V; ++i) mx = std::max(mx, x[i]);
  double z = 0.0;
  for (int i = 0; i < V; ++i) z += std::exp(static_cast<double>(x[i]) - mx);
  return mx + static_cast<float>(std::log(z));
}

// The bits of mask word w that stand for token ids (in the last word, those of ids < V only).
static uint32_t id_bits(int w, int V) {
  const int ids = V - 32 * w;
  return ids >= 32 ? ~0u : (1u << ids) - 1u;
}

static uint32_t allowed_bits(const SamplingParams& p, int w, int V) { return p.allowed[w] & id_bits(w, V); }

static void check_some_allowed(int allowed, int V) {
  check(allowed > 0, gptoss_status_invalid_argument,
        "sample: the allowed-token mask allows no token id below the vocabulary size " + std::to_string(V));
}

// Disallowed ids of x to −inf, one mask word at a time (a word allowing all its ids costs one test);
// returns how many ids are allowed.
static int mask_disallowed(float* x, int V, const SamplingParams& p) {
  if (p.allowed == nullptr) return V;
  check_mask_words(p, V);
  int allowed = 0;
  for (int w = 0; w < mask_words(V); ++w) {
    const uint32_t bits = allowed_bits(p, w, V);
    allowed += std::popcount(bits);
    for (uint32_t out = id_bits(w, V) & ~bits; out != 0; out &= out - 1)
      x[32 * w + std::countr_zero(out)] = -INFINITY;
  }
  check_some_allowed(allowed, V);
  return allowed;
}

// The allowed ids in ascending order (0..V-1 without a mask).
static std::vector<int32_t> allowed_ids(const SamplingParams& p, int V, int allowed) {
  std::vector<int32_t> ids(allowed);
  if (p.allowed == nullptr) {
    std::iota(ids.begin(), ids.end(), 0);
    return ids;
  }
  int n = 0;
  for (int w = 0; w < mask_words(V); ++w)
    for (uint32_t bits = allowed_bits(p, w, V); bits != 0; bits &= bits - 1) ids[n++] = 32 * w + std::countr_zero(bits);
  return ids;
}

static void apply_bias_and_penalties(std::vector<float>& x, int V, const SamplingParams& p) {
  for (int i = 0; i < p.num_bias; ++i) {
    check(p.bias_ids[i] >= 0 && p.bias_ids[i] < V, gptoss_status_invalid_argument, "sample: logit_bias token out of range");
    x[p.bias_ids[i]] += p.bias_values[i];
  }
  if (p.repetition_penalty > 0.0f && p.repetition_penalty != 1.0f) {
    std::vector<bool> seen(V, false);
    for (int i = 0; i < p.num_prompt; ++i) seen[p.prompt[i]] = true;
    for (int i = 0; i < p.num_output; ++i) seen[p.output[i]] = true;
    for (int i = 0; i < V; ++i)
      if (seen[i]) x[i] = x[i] > 0 ? x[i] / p.repetition_penalty : x[i] * p.repetition_penalty;
  }
  if (p.presence_penalty != 0.0f || p.frequency_penalty != 0.0f) {
    std::unordered_map<int32_t, int> counts;
    for (int i = 0; i < p.num_output; ++i) ++counts[p.output[i]];
    for (const auto& [tok, n] : counts) x[tok] -= p.presence_penalty + p.frequency_penalty * static_cast<float>(n);
  }
}

// Sorts ids best first — processed logit descending, id ascending on ties — in the order the comparator
// `x[a] > x[b] || (x[a] == x[b] && a < b)` gives, by a radix sort of one 64-bit key per id: the
// logit's bits mapped to an order-preserving unsigned (−0 as +0, since they compare equal), inverted
// for descending, above the id. A comparison sort over a full vocabulary costs tens of milliseconds
// per sampled token; this costs a few passes over the keys.
static void sort_best_first(const std::vector<float>& x, std::vector<int32_t>& ids) {
  const size_t n = ids.size();
  std::vector<uint64_t> keys(n), tmp(n);
  for (size_t i = 0; i < n; ++i) {
    float v = x[ids[i]] == 0.0f ? 0.0f : x[ids[i]];
    uint32_t b;
    std::memcpy(&b, &v, sizeof b);
    const uint32_t ascending = (b & 0x80000000u) ? ~b : (b | 0x80000000u);
    keys[i] = (static_cast<uint64_t>(~ascending) << 32) | static_cast<uint32_t>(ids[i]);
  }
  constexpr int kBits = 16;
  std::vector<uint32_t> count(size_t{1} << kBits);
  for (int shift = 0; shift < 64; shift += kBits) {
    std::fill(count.begin(), count.end(), 0u);
    for (uint64_t k : keys) ++count[(k >> shift) & 0xffff];
    if (count[(keys[0] >> shift) & 0xffff] == n) continue;  // one digit for all: already in order
    uint32_t sum = 0;
    for (auto& c : count) sum += std::exchange(c, sum);
    for (uint64_t k : keys) tmp[count[(k >> shift) & 0xffff]++] = k;
    keys.swap(tmp);
  }
  for (size_t i = 0; i < n; ++i) ids[i] = static_cast<int32_t>(keys[i] & 0xffffffffu);
}

// Temperature sampling over the candidates `ids` (the allowed ids): sorted by processed logit, best
// first, cut by top-k; then probabilities at temperature, cut by min-p and top-p, and the draw.
static int32_t draw(const std::vector<float>& x, std::vector<int32_t> ids, const SamplingParams& p, uint64_t counter) {
  auto better = [&](int32_t a, int32_t b) { return x[a] > x[b] || (x[a] == x[b] && a < b); };
  int n = static_cast<int>(ids.size());
  if (p.top_k > 0 && p.top_k < n) {
    n = p.top_k;
    std::partial_sort(ids.begin(), ids.begin() + n, ids.end(), better);
  } else {
    sort_best_first(x, ids);
  }
  std::vector<double> prob(n);
  const double top = x[ids[0]];
  double total = 0.0;
  for (int i = 0; i < n; ++i) total += (prob[i] = std::exp((x[ids[i]] - top) / p.temperature));
  if (p.min_p > 0.0f) {
    const double floor = p.min_p * prob[0];  // prob[0] is the most likely candidate
    while (n > 1 && prob[n - 1] < floor) total -= prob[--n];
  }
  if (p.top_p > 0.0f && p.top_p < 1.0f) {
    double cum = 0.0;
    int keep = 0;
    while (keep < n) {
      cum += prob[keep++];
      if (cum >= p.top_p * total) break;
    }
    n = keep;
    total = cum;
  }
  double u = uniform01(p.seed, counter) * total;
  for (int i = 0; i < n; ++i) {
    u -= prob[i];
    if (u < 0.0) return ids[i];
  }
  return ids[n - 1];
}

}  // namespace gptoss::cpu

// launchers
namespace gptoss {

int allowed_tokens(const SamplingParams& p, int V) {
  if (p.allowed == nullptr) return V;
  check_mask_words(p, V);
  int allowed = 0;
  for (int w = 0; w < mask_words(V); ++w) allowed += std::popcount(cpu::allowed_bits(p, w, V));
  cpu::check_some_allowed(allowed, V);
  return allowed;
}

}  // namespace gptoss

namespace gptoss::cpu {

void f32_sample(const float* logits, int V, const SamplingParams& p, uint64_t counter, SampleResult* out) {
  check(V > 0, gptoss_status_invalid_argument, "sample: empty logits");
  std::vector<float> x(logits, logits + V);
  const int allowed = mask_disallowed(x.data(), V, p);
  // x holds the raw logits, masked: the reported logprobs are its log-softmax.
  const float lse = log_sum_exp(x.data(), V);
  out->num_top = 0;
  if (p.num_top_logprobs > 0) top_logprobs(x.data(), V, std::min(p.num_top_logprobs, allowed), lse, out);
  apply_bias_and_penalties(x, V, p);
  int32_t chosen = 0;
  if (p.temperature <= 0.0f) {
    for (int i = 1; i < V; ++i)  // a disallowed id is −inf: never above an allowed one
      if (x[i] > x[chosen]) chosen = i;
  } else {
    chosen = draw(x, allowed_ids(p, V, allowed), p, counter);
  }
  out->token = chosen;
  out->non_finite = first_non_finite(logits, V);
  out->logprob = logits[chosen] - lse;
}

}  // namespace gptoss::cpu
