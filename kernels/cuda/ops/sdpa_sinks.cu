// sdpa_sinks.cu — attention with sinks over paged KV plus this step's rows. One warp per (row, q head):
// keys are visited in order (sliding window: the last `window` positions) with an online softmax that
// starts from the head's sink logit, and the sink's exp joins the denominator at the end (it weighs no
// value), as on the CPU. Lanes split head_dim (d = lane, lane + 32, …) and a warp_sum forms each score,
// so a row's arithmetic does not depend on how many rows share the call. Grid: (sequence, q head);
// the block's warps loop over the sequence's rows, so the host needs no per-sequence sizes. `seqs` and
// the block tables are read by the kernel: under nvcc they must be device-resident (a later step).
#include "kv_cache.cuh"

namespace gptoss::cuda::GPTOSS_CUDA_NS {

// kernels
constexpr int kAttnWarps = 4;
constexpr int kMaxHeadDim = 128;  // 4 accumulators per lane

struct AttnArgs {
  const float* q;
  int64_t ldq;
  const float* k_new;
  const float* v_new;
  int64_t ldkv;
  const AttnSeq* seqs;
  KvLayer kv;
  int group;  // q heads per kv head
  const float* sinks;
  float scale;
  int window;
  float* out;
  int64_t ldo;
};

__device__ void attend_row(const AttnArgs& a, const AttnSeq& s, int t, int h, int lane) {
  const int D = a.kv.head_dim, kvh = h / a.group, row = s.token_begin + t, pos = s.pos_begin + t;
  const float* q = a.q + row * a.ldq + static_cast<int64_t>(h) * D;
  float qr[kMaxHeadDim / 32], acc[kMaxHeadDim / 32];
  for (int c = 0; c < kMaxHeadDim / 32; ++c) qr[c] = lane + 32 * c < D ? q[lane + 32 * c] : 0.0f, acc[c] = 0.0f;
  const float sink = a.sinks[h];
  float m = sink, l = 0.0f;
  const int lo = a.window > 0 && pos - a.window + 1 > 0 ? pos - a.window + 1 : 0;
  for (int j = lo; j <= pos; ++j) {
    const bool cached = j < s.pos_begin;
    const int64_t fresh = static_cast<int64_t>(s.token_begin + j - s.pos_begin) * a.ldkv + static_cast<int64_t>(kvh) * D;
    const float* k = cached ? kv_slot(a.kv, s, j, kvh, false) : a.k_new + fresh;
    const float* v = cached ? kv_slot(a.kv, s, j, kvh, true) : a.v_new + fresh;
    float dot = 0.0f;
    for (int c = 0; c < kMaxHeadDim / 32; ++c)
      if (lane + 32 * c < D) dot += qr[c] * k[lane + 32 * c];
    const float score = warp_sum(dot) * a.scale;
    if (score > m) {  // every lane holds the same score, so they all take this branch together
      const float r = expf(m - score);
      l *= r;
      for (int c = 0; c < kMaxHeadDim / 32; ++c) acc[c] *= r;
      m = score;
    }
    const float p = expf(score - m);
    l += p;
    for (int c = 0; c < kMaxHeadDim / 32; ++c)
      if (lane + 32 * c < D) acc[c] += p * v[lane + 32 * c];
  }
  const float inv = 1.0f / (l + expf(sink - m));
  float* o = a.out + row * a.ldo + static_cast<int64_t>(h) * D;
  for (int c = 0; c < kMaxHeadDim / 32; ++c)
    if (lane + 32 * c < D) o[lane + 32 * c] = acc[c] * inv;
}

__global__ void sdpa_sinks_kernel(AttnArgs a) {
  const AttnSeq s = a.seqs[blockIdx.x];
  const int h = blockIdx.y, warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  for (int t = warp; t < s.num_tokens; t += kAttnWarps) attend_row(a, s, t, h, lane);
}

// launchers
void f32_sdpa_sinks(const float* q, int64_t ldq, const float* k_new, const float* v_new, int64_t ldkv, const AttnSeq* seqs,
                    int num_seqs, const KvLayer& kv, int q_heads, const float* sinks, float scale, int window, float* out,
                    int64_t ldo) {
  check(kv.head_dim <= kMaxHeadDim && kv.kv_heads > 0 && q_heads % kv.kv_heads == 0, gptoss_status_invalid_argument,
        "sdpa_sinks (cuda): needs head_dim ≤ 128 and q_heads a multiple of kv_heads");
  if (num_seqs <= 0 || q_heads <= 0) return;
  const AttnArgs a{q, ldq, k_new, v_new, ldkv, seqs, kv, q_heads / kv.kv_heads, sinks, scale, window, out, ldo};
  EMU_LAUNCH(sdpa_sinks_kernel, dim3(num_seqs, q_heads), dim3(32 * kAttnWarps), 0, emu_stream_t{}, a);
  dev_check_launch("sdpa_sinks_kernel");
}

}  // namespace gptoss::cuda::GPTOSS_CUDA_NS
