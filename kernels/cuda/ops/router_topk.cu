// router_topk.cu — MoE routing: top-k of each row of router logits (ties → lower expert index, as on
// CPU), then softmax over the k selected logits. One warp per row; each lane owns experts lane, lane+32, …
// (E ≤ 1024: a 32-bit mask per lane marks the ones already taken).
#include "../../cpu/ops.h"
#include "common.cuh"

namespace gptoss::cuda::GPTOSS_CUDA_NS {

// kernels
constexpr int kRouterWarps = 4;

__global__ void router_topk_kernel(const float* __restrict__ logits, int T, int E, int k, int32_t* __restrict__ idx,
                                   float* __restrict__ weights) {
  const int lane = threadIdx.x % 32;
  const int t = blockIdx.x * kRouterWarps + threadIdx.x / 32;
  if (t >= T) return;  // whole warps leave together
  const float* g = logits + static_cast<int64_t>(t) * E;
  uint32_t taken = 0;
  float top = 0.0f, z = 0.0f;
  for (int j = 0; j < k; ++j) {
    float v = -INFINITY;
    int best = 0x7fffffff;
    for (int s = 0, e = lane; e < E; ++s, e += 32)  // ascending e with strict '>': lower index kept
      if (!(taken >> s & 1u) && (best == 0x7fffffff || g[e] > v)) v = g[e], best = e;
    warp_argmax(v, best);
    if (best % 32 == lane) taken |= 1u << (best / 32);
    if (j == 0) top = v;
    const float w = expf(v - top);
    z += w;
    if (lane == 0) idx[t * k + j] = best, weights[t * k + j] = w;
  }
  __syncwarp();
  for (int j = lane; j < k; j += 32) weights[t * k + j] /= z;
}

// launchers
void f32_router_topk(const float* logits, int T, int E, int k, int32_t* idx, float* weights) {
  check(E <= 1024 && k >= 1 && k <= E, gptoss_status_invalid_argument, "router_topk (cuda): needs 1 ≤ k ≤ E ≤ 1024");
  if (T <= 0) return;
  const int blocks = (T + kRouterWarps - 1) / kRouterWarps;
  EMU_LAUNCH(router_topk_kernel, dim3(blocks), dim3(32 * kRouterWarps), 0, emu_stream_t{}, logits, T, E, k, idx, weights);
  dev_check_launch("router_topk_kernel");
}

}  // namespace gptoss::cuda::GPTOSS_CUDA_NS
