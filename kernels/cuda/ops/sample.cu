// sample.cu — token selection from one row of logits, the CPU op's order and arithmetic: allowed-token
// mask → logit_bias → repetition penalty (prompt ∪ output) → presence/frequency penalties → greedy
// (lowest id on ties) or temperature → top-k → min-p → top-p → draw with the counter-based generator
// keyed by (seed, counter); logprobs are log-softmax of the raw logits over the allowed ids. One block
// does the whole row. A disallowed id is flagged out of everything (the CPU's −inf) and is never a
// candidate, so the cuts below see the CPU's list of allowed ids.
// Every setting the CPU op takes works here, on any vocabulary: instead of sorting, each cut of the CPU's
// candidate list (value descending, ties → lower id) is found as a threshold. "The shortest prefix whose
// mass reaches t" is a search over the float ordering, then over the ids of the elements tied at the
// found value, each block-wide pass trying kProbes cuts (about 11 passes for the 2^32 orderings, plus a
// few when there are ties); the mass is a count (top-k) or the fp64 probabilities (top-p, and the draw,
// which is the shortest prefix whose mass exceeds u). O(V) per pass, independent of k.
// The probabilities are the CPU's fp64 values; only their sums are taken in a different order (a tree
// instead of a running sum), which can change a draw only when u lies within rounding of a boundary.
// A NaN or ±Inf raw logit is reported in out->non_finite (its index; nothing else is meaningful then).
// Under nvcc, the logits, the SamplingParams arrays (bias, prompt, output, allowed), p.scratch and `out`
// are device memory; without p.scratch the launcher allocates sample_scratch_bytes(V) for the call. The
// mask's contents are not checked here (the engine checks them on the host, allowed_tokens): a mask
// allowing no id gives token -1.
#include <climits>

#include "../../cpu/ops.h"
#include "common.cuh"

namespace gptoss::cuda::GPTOSS_CUDA_NS {

// kernels
constexpr int kSampleThreads = 512;
constexpr int kProbes = 8;  // cuts tried per pass of a threshold search
constexpr uint32_t kSeen = 1u, kCand = 1u << 30, kTopTaken = 1u << 29, kCountShift = 1;  // flags[i] bits
constexpr uint32_t kBanned = 1u << 31;  // disallowed by the mask

__device__ uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// The largest v over the block, returned to every thread.
__device__ int block_max_int(int v) {
  EMU_SHARED(int, part, 33);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  v = warp_max(v);
  if (lane == 0) part[warp] = v;
  __syncthreads();
  if (warp == 0) {
    const int m = warp_max(lane < kSampleThreads / 32 ? part[lane] : INT_MIN);
    if (lane == 0) part[32] = m;
  }
  __syncthreads();
  const int r = part[32];
  __syncthreads();
  return r;
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

// Index of the first NaN or ±Inf in v, or -1 (all threads).
__device__ int block_first_non_finite(const float* v, int V) {
  int last = -1;  // as INT_MAX - index, so the block's max is the lowest index
  for (int i = threadIdx.x; i < V; i += blockDim.x)
    if ((__float_as_uint(v[i]) & 0x7f800000u) == 0x7f800000u && INT_MAX - i > last) last = INT_MAX - i;
  const int m = block_max_int(last);
  return m < 0 ? -1 : INT_MAX - m;
}

// Unsigned bits ordered as the floats are (−0 and +0 equal, as the CPU's comparisons see them).
__device__ uint32_t order_bits(float v) {
  const uint32_t u = v == 0.0f ? 0u : __float_as_uint(v);
  return (u & 0x80000000u) ? ~u : u | 0x80000000u;
}

// A prefix of the CPU's candidate order: element i is in it when its value orders above `bits`, or at
// `bits` with i ≤ id.
struct Cut {
  uint32_t bits;
  int id;
};
__device__ bool within(float v, int i, Cut c) {
  const uint32_t b = order_bits(v);
  return b > c.bits || (b == c.bits && i <= c.id);
}

// The block's sums of kProbes per-thread values at once, to every thread: a warp tree per value, then the
// warps' partials in warp order (two barriers for all of them, not three each). Every mass below goes
// through here, so equal sets give equal sums, and a larger set never a smaller sum.
__device__ void block_sums(double* s) {
  constexpr int kWarps = kSampleThreads / 32;
  EMU_SHARED(double, part, kProbes * kWarps);
  EMU_SHARED(double, total, kProbes);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  for (int j = 0; j < kProbes; ++j) {
    const double v = warp_sum(s[j]);
    if (lane == 0) part[j * kWarps + warp] = v;
  }
  __syncthreads();
  if (threadIdx.x < kProbes) {
    double t = 0.0;
    for (int k = 0; k < kWarps; ++k) t += part[threadIdx.x * kWarps + k];
    total[threadIdx.x] = t;
  }
  __syncthreads();
  for (int j = 0; j < kProbes; ++j) s[j] = total[j];
  __syncthreads();  // part and total are reused by the next call
}

// For each of kProbes cuts, the sum over the candidates inside it of w[i] (or of 1 when w is null), in
// one pass over the row: a search narrows its range (kProbes + 1)-fold per pass instead of 2-fold.
__device__ void masses_within(const float* x, const double* w, const uint32_t* flags, int V, const Cut* cuts, double* out) {
  for (int j = 0; j < kProbes; ++j) out[j] = 0.0;
  for (int i = threadIdx.x; i < V; i += blockDim.x) {
    if (!(flags[i] & kCand)) continue;
    const uint32_t b = order_bits(x[i]);
    const double wi = w ? w[i] : 1.0;
    for (int j = 0; j < kProbes; ++j)
      if (b > cuts[j].bits || (b == cuts[j].bits && i <= cuts[j].id)) out[j] += wi;
  }
  block_sums(out);
}

// The mass of the whole candidate list.
__device__ double whole_mass(const float* x, const double* w, const uint32_t* flags, int V) {
  Cut all[kProbes];
  double m[kProbes];
  for (int j = 0; j < kProbes; ++j) all[j] = Cut{0u, INT_MAX};
  masses_within(x, w, flags, V, all, m);
  return m[0];
}

// The largest value bits whose candidates at or above reach (`reaches` holds at 0 and falls as bits grow).
template <class Reaches>
__device__ uint32_t largest_reaching_bits(const float* x, const double* w, const uint32_t* flags, int V, Reaches reaches) {
  uint32_t lo = 0, hi = 0xffffffffu;
  while (lo < hi) {  // probes spread over (lo, hi], ascending
    Cut probe[kProbes];
    double m[kProbes];
    const uint64_t span = hi - lo;
    for (int j = 0; j < kProbes; ++j) probe[j] = Cut{static_cast<uint32_t>(lo + 1 + (span - 1) * (j + 1) / (kProbes + 1)), INT_MAX};
    masses_within(x, w, flags, V, probe, m);
    for (int j = 0; j < kProbes; ++j) {
      if (!reaches(m[j])) {
        hi = probe[j].bits - 1;
        break;
      }
      lo = probe[j].bits;
    }
  }
  return lo;
}

// The shortest prefix of the candidates whose mass reaches `target` (exceeds it when `strict`); the caller
// knows the whole candidate list does. Its last element is the candidate at (bits, id).
__device__ Cut shortest_prefix(const float* x, const double* w, const uint32_t* flags, int V, double target, bool strict) {
  auto reaches = [&](double m) { return strict ? m > target : m >= target; };
  const uint32_t bits = largest_reaching_bits(x, w, flags, V, reaches);
  int first = -1, last = -1;  // the ids tied at those bits (first as INT_MAX - id, for one max reduction)
  for (int i = threadIdx.x; i < V; i += blockDim.x)
    if ((flags[i] & kCand) && order_bits(x[i]) == bits) {
      if (INT_MAX - i > first) first = INT_MAX - i;
      if (i > last) last = i;
    }
  int a = INT_MAX - block_max_int(first), b = block_max_int(last);
  while (a < b) {  // ties go to the lower ids first: the smallest id whose prefix reaches; probes in [a, b)
    Cut probe[kProbes];
    double m[kProbes];
    for (int j = 0; j < kProbes; ++j) probe[j] = Cut{bits, a + static_cast<int>(static_cast<int64_t>(b - a) * (j + 1) / (kProbes + 1))};
    masses_within(x, w, flags, V, probe, m);
    for (int j = 0; j < kProbes; ++j) {
      if (reaches(m[j])) {
        b = probe[j].id;
        break;
      }
      a = probe[j].id + 1;
    }
  }
  return Cut{bits, a};
}

// Drops the candidates outside `c`.
__device__ void keep_within(const float* x, uint32_t* flags, int V, Cut c) {
  for (int i = threadIdx.x; i < V; i += blockDim.x)
    if (!within(x[i], i, c)) flags[i] &= ~kCand;
  __syncthreads();
}

// Temperature sampling over the processed row x (the `allowed` elements not banned start as candidates).
__device__ int sample_temperature(const float* x, double* prob, uint32_t* flags, int V, int allowed, const SamplingParams& p,
                                  uint64_t counter) {
  const int first = block_argmax(x, flags, kBanned, V);  // the CPU's ids[0]
  const double top = x[first];
  if (p.top_k > 0 && p.top_k < allowed) keep_within(x, flags, V, shortest_prefix(x, nullptr, flags, V, p.top_k, false));
  // prob[ids[0]] is exp(0) = 1, so min-p's floor is min_p; the probabilities fall along the list, so
  // dropping the tail below the floor is dropping every candidate below it, but never the first.
  const double floor = p.min_p > 0.0f ? p.min_p * 1.0 : 0.0;
  for (int i = threadIdx.x; i < V; i += blockDim.x) {
    double q = 0.0;
    if (flags[i] & kCand) {
      q = exp((static_cast<double>(x[i]) - top) / p.temperature);
      if (q < floor && i != first) flags[i] &= ~kCand, q = 0.0;
    }
    prob[i] = q;
  }
  double total = whole_mass(x, prob, flags, V);  // summed as the searches sum, so they agree on the whole
  if (p.top_p > 0.0f && p.top_p < 1.0f) {
    keep_within(x, flags, V, shortest_prefix(x, prob, flags, V, p.top_p * total, false));
    total = whole_mass(x, prob, flags, V);
  }
  const double u = static_cast<double>(splitmix64(splitmix64(p.seed) ^ counter) >> 11) * (1.0 / 9007199254740992.0) * total;
  if (u < total) return shortest_prefix(x, prob, flags, V, u, true).id;
  // u rounded up to the whole mass: the CPU's walk ends on its last candidate.
  return shortest_prefix(x, nullptr, flags, V, whole_mass(x, nullptr, flags, V), false).id;
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

// The raw logits' best allowed ids, ties → lower id (the CPU's partial sort), as log-softmax values.
__device__ void top_logprobs(const float* logits, uint32_t* flags, int V, int num_top, float lse, SampleResult* out) {
  for (int j = 0; j < num_top; ++j) {
    const int c = block_argmax(logits, flags, kTopTaken | kBanned, V);
    if (threadIdx.x == 0) out->top_ids[j] = c, out->top_logprobs[j] = logits[c] - lse, flags[c] |= kTopTaken;
    __syncthreads();
  }
}

// x and flags for the row: an allowed element is a candidate with its raw logit, a disallowed one is
// banned at −inf (what the CPU's row holds). Returns the number of allowed elements (V without a mask).
__device__ int mask_allowed(const float* logits, int V, const uint32_t* allowed, float* x, uint32_t* flags) {
  int n = 0;
  for (int i = threadIdx.x; i < V; i += blockDim.x) {
    const bool ok = allowed == nullptr || ((allowed[i >> 5] >> (i & 31)) & 1u);
    x[i] = ok ? logits[i] : -INFINITY;
    flags[i] = ok ? kCand : kBanned;
    n += ok;
  }
  return block_sum(n);  // its barriers also publish x and flags to the block
}

__global__ void sample_kernel(const float* __restrict__ logits, int V, SamplingParams p, uint64_t counter, float* x,
                              uint32_t* flags, double* prob, SampleResult* out) {
  const int bad = block_first_non_finite(logits, V);
  if (bad >= 0) {  // the engine fails the step; the probabilities below would be NaN
    if (threadIdx.x == 0) out->non_finite = bad, out->token = 0, out->logprob = 0.0f, out->num_top = 0;
    return;
  }
  const int allowed = mask_allowed(logits, V, p.allowed, x, flags);
  if (allowed == 0) {  // the engine's host-side check rules this out; called directly, say so and stop
    if (threadIdx.x == 0) out->non_finite = -1, out->token = -1, out->logprob = 0.0f, out->num_top = 0;
    return;
  }
  const float mx = logits[block_argmax(logits, flags, kBanned, V)];
  double z = 0.0;
  for (int i = threadIdx.x; i < V; i += blockDim.x)
    if (!(flags[i] & kBanned)) z += exp(static_cast<double>(logits[i]) - mx);
  const float lse = mx + static_cast<float>(log(block_sum(z)));
  apply_penalties(x, flags, V, p);
  const int chosen =
      p.temperature <= 0.0f ? block_argmax(x, flags, kBanned, V) : sample_temperature(x, prob, flags, V, allowed, p, counter);
  int num_top = p.num_top_logprobs < kMaxTopLogprobs ? p.num_top_logprobs : kMaxTopLogprobs;
  num_top = num_top < allowed ? num_top : allowed;
  top_logprobs(logits, flags, V, num_top, lse, out);
  if (threadIdx.x == 0)
    out->token = chosen, out->logprob = logits[chosen] - lse, out->num_top = num_top > 0 ? num_top : 0, out->non_finite = -1;
}

// launchers
void f32_sample(const float* logits, int V, const SamplingParams& p, uint64_t counter, SampleResult* out) {
  check(V > 0, gptoss_status_invalid_argument, "sample: empty logits");
  check_mask_words(p, V);
  void* scratch = p.scratch != nullptr ? p.scratch : dev_malloc(sample_scratch_bytes(V));
  double* prob = static_cast<double*>(scratch);  // first: 8-byte aligned
  float* x = reinterpret_cast<float*>(prob + V);
  uint32_t* flags = reinterpret_cast<uint32_t*>(x + V);
  EMU_LAUNCH(sample_kernel, dim3(1), dim3(kSampleThreads), 0, emu_stream_t{}, logits, V, p, counter, x, flags, prob, out);
  dev_check_launch("sample_kernel");
  if (p.scratch == nullptr) {
    dev_synchronize();
    dev_free(scratch);
  }
}

}  // namespace gptoss::cuda::GPTOSS_CUDA_NS
