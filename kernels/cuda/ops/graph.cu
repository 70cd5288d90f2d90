// graph.cu — the CUDA backend's LaunchGraphs (core/device.h) over cuda/common/graph.cuh: a CUDA graph
// of this thread's default stream under nvcc, a recorded launch list under the emulator.
#include "../../cpu/ops.h"
#include "../common/graph.cuh"
#include "common.cuh"

namespace gptoss::cuda::GPTOSS_CUDA_NS {

void* graph_begin() {
  auto* g = new LaunchGraph();
  try {
    g->begin_capture();
  } catch (...) {
    delete g;
    throw;
  }
  return g;
}

void graph_end(void* graph) { static_cast<LaunchGraph*>(graph)->end_capture(); }

void graph_replay(void* graph) { static_cast<LaunchGraph*>(graph)->replay(); }

void graph_release(void* graph) {
  auto* g = static_cast<LaunchGraph*>(graph);
  if (g != nullptr && !g->ready()) g->abandon_capture();
  delete g;
}

}  // namespace gptoss::cuda::GPTOSS_CUDA_NS
