// sample.cu — token selection from one row of logits, the CPU op's order and arithmetic: logit_bias →
// repetition penalty (prompt ∪ output) → presence/frequency penalties → greedy (lowest id on ties) or
// temperature → top-k → min-p → top-p → draw with the counter-based generator keyed by (seed, counter);
// logprobs are log-softmax of the raw logits. One block does the whole row: the elementwise passes and
// arg-max searches are block-parallel, the short candidate list is walked by thread 0 in fp64.
// This version draws only with top_k in 1..kMaxCandidates when temperature > 0 (the CPU op sorts the
// whole vocabulary otherwise); other settings throw "not implemented on cuda yet".
// Under nvcc, the logits, the SamplingParams arrays (bias, prompt, output) and `out` are device memory;
// the scratch row is dev_malloc'ed per call for now (a later step gives the engine a workspace).
#include "../../cpu/ops.h"
#include "common.cuh"

namespace gptoss::cuda::GPTOSS_CUDA_NS {

// kernels
constexpr int kSampleThreads = 256;
constexpr int kMaxCandidates = 64;
constexpr uint32_t kSeen = 1u, kTaken = 1u << 30, kTopTaken = 1u << 29, kCountShift = 1;  // flags[i] bits

__device__ uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Arg-max over v[i] for i not flagged with `skip` (ties → lower index), returned to every thread.
__device__ int block_argmax(const float* v, const uint32_t* flags, uint32_t skip, int V) {
  EMU_SHARED(float, sv, 32);
  EMU_SHARED(int, si, 33);
  float best = -INFINITY;
  int idx = 0x7fffffff;
  for (int i = threadIdx.x; i < V; i += blockDim.x)
    if (!(flags[i] & skip) && (idx == 0x7fffffff || v[i] > best)) best = v[i], idx = i;
  warp_argmax(best, idx);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0) sv[warp] = best, si[warp] = idx;
  __syncthreads();
  if (warp == 0) {
    best = lane < kSampleThreads / 32 ? sv[lane] : -INFINITY;
    idx = lane < kSampleThreads / 32 ? si[lane] : 0x7fffffff;
    warp_argmax(best, idx);
    if (lane == 0) si[32] = idx;
  }
  __syncthreads();
  const int r = si[32];
  __syncthreads();
  return r;
}

// Thread 0: the CPU op's candidate walk (probabilities, min-p, top-p, draw) over `n` sorted candidates.
__device__ int draw_candidate(const float* x, const int* ids, int n, const SamplingParams& p, uint64_t counter) {
  double prob[kMaxCandidates];
  const double top = x[ids[0]];
  double total = 0.0;
  for (int i = 0; i < n; ++i) total += (prob[i] = exp((x[ids[i]] - top) / p.temperature));
  if (p.min_p > 0.0f) {
    const double floor = p.min_p * prob[0];
    while (n > 1 && prob[n - 1] < floor) total -= prob[--n];
  }
  if (p.top_p > 0.0f && p.top_p < 1.0f) {
    double cum = 0.0;
    int keep = 0;
    while (keep < n) {
      cum += prob[keep++];
      if (cum >= p.top_p * total) break;
    }
    n = keep, total = cum;
  }
  double u = static_cast<double>(splitmix64(splitmix64(p.seed) ^ counter) >> 11) * (1.0 / 9007199254740992.0) * total;
  for (int i = 0; i < n; ++i)
    if ((u -= prob[i]) < 0.0) return ids[i];
  return ids[n - 1];
}

// Bias and penalties into x (thread 0 walks the id lists so duplicates count as on the CPU).
__device__ void apply_penalties(float* x, uint32_t* flags, int V, const SamplingParams& p) {
  if (threadIdx.x == 0) {
    for (int i = 0; i < p.num_bias; ++i)
      if (p.bias_ids[i] >= 0 && p.bias_ids[i] < V) x[p.bias_ids[i]] += p.bias_values[i];
    for (int i = 0; i < p.num_prompt; ++i) flags[p.prompt[i]] |= kSeen;
    for (int i = 0; i < p.num_output; ++i) flags[p.output[i]] = (flags[p.output[i]] | kSeen) + (1u << kCountShift);
  }
  __syncthreads();
  const bool rep = p.repetition_penalty > 0.0f && p.repetition_penalty != 1.0f;
  for (int i = threadIdx.x; i < V; i += blockDim.x) {
    if (rep && (flags[i] & kSeen)) x[i] = x[i] > 0 ? x[i] / p.repetition_penalty : x[i] * p.repetition_penalty;
    const uint32_t n = (flags[i] & (kTopTaken - 1)) >> kCountShift;
    if (n && (p.presence_penalty != 0.0f || p.frequency_penalty != 0.0f))
      x[i] -= p.presence_penalty + p.frequency_penalty * static_cast<float>(n);
  }
  __syncthreads();
}

__global__ void sample_kernel(const float* __restrict__ logits, int V, SamplingParams p, uint64_t counter, float* x,
                              uint32_t* flags, SampleResult* out) {
  EMU_SHARED(int, cand, kMaxCandidates);
  for (int i = threadIdx.x; i < V; i += blockDim.x) x[i] = logits[i], flags[i] = 0;
  __syncthreads();
  const float mx = logits[block_argmax(logits, flags, 0, V)];
  double z = 0.0;
  for (int i = threadIdx.x; i < V; i += blockDim.x) z += exp(static_cast<double>(logits[i]) - mx);
  const float lse = mx + static_cast<float>(log(block_sum(z)));
  apply_penalties(x, flags, V, p);
  int chosen;
  if (p.temperature <= 0.0f) {
    chosen = block_argmax(x, flags, 0, V);
  } else {
    const int n = p.top_k < V ? p.top_k : V;
    for (int j = 0; j < n; ++j) {
      const int c = block_argmax(x, flags, kTaken, V);
      if (threadIdx.x == 0) cand[j] = c, flags[c] |= kTaken;
      __syncthreads();
    }
    if (threadIdx.x == 0) cand[0] = draw_candidate(x, cand, n, p, counter);
    __syncthreads();
    chosen = cand[0];
  }
  const int num_top = p.num_top_logprobs < kMaxTopLogprobs ? p.num_top_logprobs : kMaxTopLogprobs;
  for (int j = 0; j < num_top; ++j) {  // the raw logits' best, ties → lower id (the CPU's partial sort)
    const int c = block_argmax(logits, flags, kTopTaken, V);
    if (threadIdx.x == 0) out->top_ids[j] = c, out->top_logprobs[j] = logits[c] - lse, flags[c] |= kTopTaken;
    __syncthreads();
  }
  if (threadIdx.x == 0) out->token = chosen, out->logprob = logits[chosen] - lse, out->num_top = num_top > 0 ? num_top : 0;
}

// launchers
void f32_sample(const float* logits, int V, const SamplingParams& p, uint64_t counter, SampleResult* out) {
  check(V > 0, gptoss_status_invalid_argument, "sample: empty logits");
  check(p.temperature <= 0.0f || (p.top_k > 0 && p.top_k <= kMaxCandidates), gptoss_status_unsupported_argument,
        "sample (cuda): temperature sampling needs top_k in 1..64; other settings are not implemented on cuda yet");
  float* x = static_cast<float*>(dev_malloc(sizeof(float) * V));
  uint32_t* flags = static_cast<uint32_t*>(dev_malloc(sizeof(uint32_t) * V));
  EMU_LAUNCH(sample_kernel, dim3(1), dim3(kSampleThreads), 0, emu_stream_t{}, logits, V, p, counter, x, flags, out);
  dev_check_launch("sample_kernel");
  dev_synchronize();
  dev_free(x);
  dev_free(flags);
}

}  // namespace gptoss::cuda::GPTOSS_CUDA_NS
