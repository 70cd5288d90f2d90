// launch.h — a kernel launch under the emulator: checks the configuration as CUDA would, then runs
// the blocks of the grid one after another (x fastest), each to completion, on the calling OS thread.
// Launches are synchronous; streams are accepted and ignored. An open Recording collects launches
// instead of running them (the emulator's CUDA graph). Not here: scheduling inside a block (block.h).
#pragma once

#include <algorithm>
#include <functional>
#include <tuple>
#include <utility>
#include <vector>

#include "block.h"

namespace emu::detail {

[[noreturn]] inline void launch_error(const std::string& why) { fatal("invalid launch: " + why); }

// Sizes the fiber pool, warps and shared memory for `block` threads; fibers are only ever added.
inline void prepare(Scheduler& s, const dim3& block, size_t dynamic_bytes) {
  s.nthreads = block.x * block.y * block.z;
  while (s.threads.size() < s.nthreads) s.threads.push_back(std::make_unique<Thread>());
  s.warps.resize((s.nthreads + kWarpSize - 1) / kWarpSize);
  s.ready.resize(s.nthreads);
  for (unsigned i = 0; i < s.nthreads; ++i) {
    Thread& t = *s.threads[i];
    t.linear = i;
    t.idx = dim3(i % block.x, i / block.x % block.y, i / (block.x * block.y));
  }
  s.dynamic_bytes = dynamic_bytes;
  if (s.dynamic_smem.size() < dynamic_bytes) s.dynamic_smem.resize(dynamic_bytes);
}

inline void run_block(Scheduler& s) {
  for (unsigned i = 0; i < s.nthreads; ++i) {
    s.threads[i]->state = State::ready;
    s.threads[i]->fiber.start(fiber_entry);
    s.ready[i] = i;
  }
  for (size_t w = 0; w < s.warps.size(); ++w) {
    const unsigned lanes = std::min<unsigned>(kWarpSize, s.nthreads - static_cast<unsigned>(w) * kWarpSize);
    s.warps[w].waiting = 0;
    s.warps[w].live = lanes == kWarpSize ? ~0u : (1u << lanes) - 1;
  }
  s.ready_head = 1;
  s.ready_count = s.nthreads - 1;
  s.live = s.nthreads;
  s.at_barrier = 0;
  s.static_used = 0;
  s.static_decls.clear();
  if (s.dynamic_bytes) std::memset(s.dynamic_smem.data(), 0xff, s.dynamic_bytes);  // uninitialised reads show up as NaN / -1
  switch_to(s, s.threads[0].get());  // back here once every thread of the block has exited
}

inline void run_grid(const dim3& grid, const dim3& block, size_t dynamic_bytes, void (*body)(void*), void* arg) {
  if (g_self) launch_error("a kernel launched from inside a kernel (dynamic parallelism is not emulated)");
  const unsigned long long threads = 1ull * block.x * block.y * block.z;
  if (threads == 0 || threads > kMaxBlockThreads || block.z > 64)
    launch_error("block (" + std::to_string(block.x) + "," + std::to_string(block.y) + "," + std::to_string(block.z) +
                 ") must have 1 to 1024 threads and z ≤ 64");
  if (grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.y > 65535 || grid.z > 65535)
    launch_error("grid dimensions must be positive, y and z ≤ 65535");
  if (dynamic_bytes > kDynamicSharedBytes) launch_error("dynamic shared memory of " + std::to_string(dynamic_bytes) + " bytes");
  Scheduler& s = scheduler();
  g_sched = &s;
  s.grid_dim = grid;
  s.block_dim = block;
  s.body = body;
  s.arg = arg;
  prepare(s, block, dynamic_bytes);
  for (unsigned z = 0; z < grid.z; ++z)
    for (unsigned y = 0; y < grid.y; ++y)
      for (unsigned x = 0; x < grid.x; ++x) {
        s.block_idx = dim3(x, y, z);
        run_block(s);
      }
  g_sched = nullptr;
}

}  // namespace emu::detail

namespace emu {

// A recorded launch sequence (what stream capture makes a CUDA graph of): while a Recording is open
// on this OS thread, launches are appended to it instead of running, each with its configuration
// and its arguments copied by value as a capture fixes them; replay() runs them in order, reading
// device memory as it is then (so updated inputs at the same addresses flow through, as in a graph).
class Recording {
 public:
  void replay() const {
    for (const auto& launch : launches_) launch();
  }
  size_t size() const { return launches_.size(); }
  void clear() { launches_.clear(); }
  void add(std::function<void()> launch) { launches_.push_back(std::move(launch)); }

 private:
  std::vector<std::function<void()>> launches_;
};

namespace detail {
inline thread_local Recording* g_recording = nullptr;
}

// Launches on this thread go into `r` until end_recording() (one recording open at a time).
inline void begin_recording(Recording& r) {
  if (detail::g_recording) detail::fatal("a recording is already open on this thread");
  detail::g_recording = &r;
}
inline void end_recording() { detail::g_recording = nullptr; }

// Runs `kernel(args...)` once per thread of the grid. Every thread calls the kernel with its own
// copies of the arguments, converted to the parameter types as a <<<>>> launch converts them.
template <typename... Params, typename... Args>
void launch(void (*kernel)(Params...), dim3 grid, dim3 block, size_t dynamic_shared_bytes, Args&&... args) {
  static_assert(sizeof...(Params) == sizeof...(Args), "emu::launch: argument count differs from the kernel's");
  if (detail::g_recording) {
    detail::g_recording->add([kernel, grid, block, dynamic_shared_bytes, saved = std::tuple<std::decay_t<Args>...>(args...)]() {
      std::apply([&](const auto&... a) { launch(kernel, grid, block, dynamic_shared_bytes, a...); }, saved);
    });
    return;
  }
  auto call = [&]() { kernel(args...); };
  using Call = decltype(call);
  detail::run_grid(grid, block, dynamic_shared_bytes, [](void* c) { (*static_cast<Call*>(c))(); }, &call);
}

// Fiber switches since the process started on this OS thread (the benchmark's counter).
inline uint64_t switch_count() { return detail::scheduler().switches; }

}  // namespace emu
