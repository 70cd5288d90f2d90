// moe_route.cpp — groups a step's (token, expert) choices by this rank's experts, so that each expert's
// weights are read once for all its tokens. The order is the contract the expert products and
// f32_moe_combine rely on: experts ascending; within one, the tokens of streamed rows ascending, then
// those of panel rows ascending. Experts another rank holds, and experts no token chose, get no group.
#include <vector>

#include "ops.h"

namespace gptoss::cpu {

// kernels
// A counting sort: count each expert's streamed and panel rows, place the groups, then drop each
// choice at its slot in token order (stable).
static void route(const int32_t* idx, const float* weights, int T, int K, int E, const int32_t* local_of_global,
                  const uint8_t* panel_row, const MoeRoute& out) {
  std::vector<int> count(2 * static_cast<size_t>(E), 0), next(2 * static_cast<size_t>(E), 0);
  for (int t = 0; t < T; ++t)
    for (int j = 0; j < K; ++j) ++count[2 * idx[t * K + j] + (panel_row[t] != 0)];
  int rows = 0, g = 0;
  for (int e = 0; e < E; ++e) {
    const int streamed = count[2 * e], n = streamed + count[2 * e + 1];
    if (local_of_global[e] < 0 || n == 0) continue;
    out.groups[g++] = {e, local_of_global[e], rows, streamed, n};
    next[2 * e] = rows;
    next[2 * e + 1] = rows + streamed;
    rows += n;
  }
  for (int t = 0; t < T; ++t)
    for (int j = 0; j < K; ++j) {
      const int e = idx[t * K + j];
      if (local_of_global[e] < 0) {
        out.token_rows[t * K + j] = -1;
        continue;
      }
      const int r = next[2 * e + (panel_row[t] != 0)]++;
      out.token_rows[t * K + j] = r;
      out.row_weight[r] = weights[t * K + j];
    }
  out.totals[0] = g;
  out.totals[1] = rows;
}

// launchers
void moe_route(const int32_t* idx, const float* weights, int T, int K, int E, const int32_t* local_of_global,
               const uint8_t* panel_row, const MoeRoute& out) {
  route(idx, weights, T, K, E, local_of_global, panel_row, out);
}

}  // namespace gptoss::cpu
