// ops_ref.h — plain double-precision references for every op in cpu/ops.h. Written from the spec
// (docs: gpt-oss-spec.md §3-§4), deliberately naive: dense loops, no paging, no tiling, no SIMD.
#pragma once

#include <cstdint>
#include <vector>

#include "../../cpu/ops.h"  // defines: SamplingParams

namespace gptoss::ref {

std::vector<double> rmsnorm(const std::vector<double>& x, int T, int H, const std::vector<double>& g, double eps);
// y[t][n] = Σ_k x[t][k] w[n][k] + b[n]
std::vector<double> matmul(const std::vector<double>& x, int T, int K, const std::vector<double>& w, int N,
                           const std::vector<double>* bias);
std::vector<double> rope(const std::vector<double>& x, int T, int heads, int D, const std::vector<int>& pos,
                         const std::vector<double>& inv_freq, double concentration);
// Dense attention with sinks over full sequences: q[T,Hq,D], k/v[T,Hkv,D], positions 0..T-1.
std::vector<double> sdpa_sinks(const std::vector<double>& q, const std::vector<double>& k, const std::vector<double>& v,
                               int T, int Hq, int Hkv, int D, const std::vector<double>& sinks, double scale, int window);
void router_topk(const std::vector<double>& logits, int T, int E, int k, std::vector<int>& idx, std::vector<double>& w);
// MXFP4 dequantization by the spec's formula, then a dense matmul.
std::vector<double> dequant_mxfp4(const uint8_t* blocks, const uint8_t* scales, int rows, int cols);
std::vector<double> swiglu(const std::vector<double>& u, int n, int I, double limit, double alpha);

// y + x.
std::vector<double> add(const std::vector<double>& y, const std::vector<double>& x);
// MoE routing as the model once wrote it: per expert a list of (token, choice) in token order, local
// experts only, each list stably partitioned into streamed rows then panel rows; concatenated in expert order.
struct Routed {
  std::vector<int> token_rows;  // [T·K]: routed row of each choice, -1 for other ranks' experts
  std::vector<float> row_weight;
  std::vector<std::vector<int>> groups;  // {expert, slot, begin, streamed, n}
};
Routed moe_route(const std::vector<int32_t>& idx, const std::vector<float>& w, int T, int K, int E,
                 const std::vector<int>& local_of_global, const std::vector<uint8_t>& panel_row);
// out[t] = Σ_j row_weight[r] · y[r] with r = token_rows[t, j] ≥ 0.
std::vector<double> moe_combine(const std::vector<double>& y, int H, const std::vector<int>& token_rows,
                                const std::vector<float>& row_weight, int T, int K);

// Token selection (the settings of cpu/sample.cpp, in its order), naively in fp64: every id the mask
// disallows is out first; then logit_bias, repetition penalty (prompt ∪ output), presence/frequency
// penalties (output); the allowed ids sorted by that value (ties → lower id); greedy keeps the first,
// else top-k, min-p and top-p cut the list (probabilities exp((x − x₀) / temperature)). The draw is
// not modelled: a sampler's token must be one of `candidates`.
struct SampleRef {
  std::vector<double> logprobs;  // per id: log-softmax of the raw logits over the allowed ids (−inf elsewhere)
  std::vector<int> top;          // the allowed ids by logprob, ties → lower id (at most kMaxTopLogprobs)
  std::vector<int> candidates;   // best first
  int allowed = 0;               // ids below V the mask allows
};
SampleRef sample(const std::vector<float>& logits, const SamplingParams& p);

}  // namespace gptoss::ref
