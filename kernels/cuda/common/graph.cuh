// graph.cuh — a sequence of kernel launches captured once and replayed as one: a CUDA graph under nvcc
// (stream capture of this thread's default stream: the CUDA sources build with
// --default-stream per-thread, which makes that stream capturable), an emu::Recording under the
// emulator. Between begin_capture and end_capture the launches are recorded, not run; replay() runs
// them with the arguments they were captured with, reading device memory as it is at replay, so a
// caller that rewrites its inputs in place (tokens, positions, block tables) replays a new step.
// Only launches may happen inside a capture: no synchronous copies, allocations or host reads.
#pragma once

#include <memory>

#include "device.cuh"

namespace gptoss::cuda {

#if defined(__CUDACC__)

class LaunchGraph {
 public:
  LaunchGraph() = default;
  LaunchGraph(const LaunchGraph&) = delete;
  LaunchGraph& operator=(const LaunchGraph&) = delete;
  ~LaunchGraph() { reset(); }

  void begin_capture() {
    reset();
    dev_check(cudaStreamBeginCapture(cudaStreamPerThread, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture");
  }
  void end_capture() {
    cudaGraph_t graph = nullptr;
    dev_check(cudaStreamEndCapture(cudaStreamPerThread, &graph), "cudaStreamEndCapture");
    const cudaError_t err = cudaGraphInstantiate(&exec_, graph, 0);
    cudaGraphDestroy(graph);
    dev_check(err, "cudaGraphInstantiate");
  }
  // Abandons a capture that failed half-way (the launches recorded so far are dropped).
  void abandon_capture() {
    cudaGraph_t graph = nullptr;
    cudaStreamEndCapture(cudaStreamPerThread, &graph);
    if (graph) cudaGraphDestroy(graph);
    cudaGetLastError();
  }
  bool ready() const { return exec_ != nullptr; }
  void replay() const { dev_check(cudaGraphLaunch(exec_, cudaStreamPerThread), "cudaGraphLaunch"); }
  void reset() {
    if (exec_) cudaGraphExecDestroy(exec_);
    exec_ = nullptr;
  }

 private:
  cudaGraphExec_t exec_ = nullptr;
};

#else

class LaunchGraph {
 public:
  void begin_capture() {
    reset();
    recording_ = std::make_unique<emu::Recording>();
    emu::begin_recording(*recording_);
  }
  void end_capture() {
    emu::end_recording();
    captured_ = true;
  }
  void abandon_capture() {
    emu::end_recording();
    reset();
  }
  bool ready() const { return captured_; }
  void replay() const { recording_->replay(); }
  void reset() {
    recording_.reset();
    captured_ = false;
  }
  // The emulator's view of what was captured (tests).
  size_t launches() const { return recording_ ? recording_->size() : 0; }

 private:
  std::unique_ptr<emu::Recording> recording_;
  bool captured_ = false;
};

#endif

}  // namespace gptoss::cuda
