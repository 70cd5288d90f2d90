// moe_route.cu — groups a step's expert choices by local expert on the device, in the order the CPU op
// defines (cpu/moe_route.cpp): experts ascending; in each, streamed tokens ascending, then panel tokens.
// Two launches, no host round-trip: (1) one block counts each expert's streamed and panel choices in
// shared memory and turns the counts into the group table with two block scans (rows, groups);
// (2) one block per expert walks the tokens in tiles, a block scan of "chose me" flags placing each
// choice at its row, so the order is the tokens' order whatever the thread timing.
#include "../../cpu/ops.h"
#include "common.cuh"

namespace gptoss::cuda::GPTOSS_CUDA_NS {

// kernels
constexpr int kRouteThreads = 1024;  // launch 1: one thread per expert (E ≤ 1024, as router_topk)
constexpr int kPlaceThreads = 256;   // launch 2: tokens per tile

__global__ void route_count_kernel(const int32_t* __restrict__ idx, int T, int K, int E, const int32_t* __restrict__ local_of_global,
                                   const uint8_t* __restrict__ panel_row, ExpertRows* __restrict__ groups, int32_t* __restrict__ totals) {
  EMU_DYNAMIC_SHARED(int, count);  // [2E]: streamed, panel choices per expert
  const int tid = threadIdx.x;
  for (int i = tid; i < 2 * E; i += blockDim.x) count[i] = 0;
  __syncthreads();
  for (int64_t c = tid; c < static_cast<int64_t>(T) * K; c += blockDim.x)
    atomicAdd(&count[2 * idx[c] + (panel_row[c / K] != 0)], 1);
  __syncthreads();
  const int e = tid;
  const int streamed = e < E ? count[2 * e] : 0, n = e < E ? streamed + count[2 * e + 1] : 0;
  const bool grouped = e < E && local_of_global[e] >= 0 && n > 0;
  int num_rows = 0, num_groups = 0;
  const int begin = block_exclusive_scan(grouped ? n : 0, &num_rows);
  const int g = block_exclusive_scan(grouped ? 1 : 0, &num_groups);
  if (grouped) groups[g] = ExpertRows{e, local_of_global[e], begin, streamed, n};
  if (tid == 0) totals[0] = num_groups, totals[1] = num_rows;
}

// The group of expert e among the sorted groups, or null.
__device__ const ExpertRows* find_group(const ExpertRows* groups, int num_groups, int e) {
  int lo = 0, hi = num_groups;
  while (lo < hi) {
    const int mid = (lo + hi) / 2;
    if (groups[mid].expert < e) lo = mid + 1;
    else hi = mid;
  }
  return lo < num_groups && groups[lo].expert == e ? &groups[lo] : nullptr;
}

__global__ void route_place_kernel(const int32_t* __restrict__ idx, const float* __restrict__ weights, int T, int K,
                                   const int32_t* __restrict__ local_of_global, const uint8_t* __restrict__ panel_row,
                                   const ExpertRows* __restrict__ groups, const int32_t* __restrict__ totals,
                                   float* __restrict__ row_weight, int32_t* __restrict__ token_rows) {
  const int e = blockIdx.x;
  const ExpertRows* grp = local_of_global[e] >= 0 ? find_group(groups, totals[0], e) : nullptr;
  for (int pass = 0; pass < 2; ++pass) {  // streamed rows, then panel rows
    int cursor = grp ? grp->begin + (pass ? grp->streamed : 0) : 0;
    for (int base = 0; base < T; base += kPlaceThreads) {
      const int t = base + threadIdx.x;
      int choice = -1;
      if (t < T && (panel_row[t] != 0) == (pass == 1))
        for (int j = 0; j < K; ++j)
          if (idx[t * K + j] == e) choice = t * K + j;
      if (!grp) {  // another rank's expert (or nobody chose it): its choices have no row here
        if (choice >= 0) token_rows[choice] = -1;
        continue;
      }
      int tile_total = 0;
      const int at = block_exclusive_scan(choice >= 0 ? 1 : 0, &tile_total);
      if (choice >= 0) {
        token_rows[choice] = cursor + at;
        row_weight[cursor + at] = weights[choice];
      }
      cursor += tile_total;
    }
  }
}

// launchers
void moe_route(const int32_t* idx, const float* weights, int T, int K, int E, const int32_t* local_of_global,
               const uint8_t* panel_row, const MoeRoute& out) {
  check(E >= 1 && E <= kRouteThreads && K >= 1 && K <= E, gptoss_status_invalid_argument, "moe_route (cuda): needs 1 ≤ k ≤ E ≤ 1024");
  EMU_LAUNCH(route_count_kernel, dim3(1), dim3(kRouteThreads), 2 * E * sizeof(int), emu_stream_t{}, idx, T, K, E, local_of_global,
             panel_row, out.groups, out.totals);
  dev_check_launch("route_count_kernel");
  if (T <= 0) return;
  EMU_LAUNCH(route_place_kernel, dim3(E), dim3(kPlaceThreads), 0, emu_stream_t{}, idx, weights, T, K, local_of_global, panel_row,
             out.groups, out.totals, out.row_weight, out.token_rows);
  dev_check_launch("route_place_kernel");
}

}  // namespace gptoss::cuda::GPTOSS_CUDA_NS
