// block.h — the emulator's scheduler: the blocks of a grid run one after another on the calling OS
// thread; the threads of a block are fibers that run until they reach a barrier, a warp collective or
// their end, then switch straight to the next ready thread (no scheduler round trip). The thread that
// completes a barrier or collective releases the waiters and carries on without switching.
// A barrier that can never complete aborts with "emu: barrier divergence" and the block's state.
// Not here: the kernel-facing names (emu.h), the collectives' arithmetic (intrinsics.h).
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <source_location>
#include <string>
#include <utility>
#include <vector>

#include "fiber.h"

struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

namespace emu::detail {

inline constexpr int kWarpSize = 32;
inline constexpr unsigned kMaxBlockThreads = 1024;
inline constexpr size_t kStaticSharedBytes = 48 * 1024;    // CUDA's limit for static __shared__
inline constexpr size_t kDynamicSharedBytes = 227 * 1024;  // sm_90's opt-in maximum per block

struct Warp;
// A collective's arithmetic, run once by the lane that completes it over every lane of `mask`.
// Its address is also the collective's identity: lanes of one mask must call the same one.
using CollectiveFn = void (*)(Warp& warp, unsigned mask);

struct LaneSlot {
  alignas(16) unsigned char in[48];  // what the lane brings (an mma brings 40 bytes)
  alignas(16) unsigned char out[16];
  CollectiveFn fn;
  unsigned mask;
};

struct Warp {
  unsigned waiting = 0;  // lanes blocked in a collective
  unsigned live = 0;     // lanes that exist and have not exited
  LaneSlot lane[kWarpSize];
};

enum class State : unsigned char { ready, barrier, collective, exited };

struct Thread {
  Fiber fiber;
  dim3 idx;
  unsigned linear = 0;
  State state = State::ready;
};

struct Site {
  const char* file = "";
  unsigned line = 0, column = 0;
  bool operator==(const Site& o) const {
    return line == o.line && column == o.column && (file == o.file || std::strcmp(file, o.file) == 0);
  }
};

// One per OS thread that launches kernels; its fibers and shared memory outlive launches.
struct Scheduler {
  dim3 grid_dim, block_dim, block_idx;
  void (*body)(void*) = nullptr;
  void* arg = nullptr;
  unsigned nthreads = 0;
  unsigned live = 0, at_barrier = 0;
  Site barrier_site;
  std::vector<std::unique_ptr<Thread>> threads;  // grows to the largest block seen, never shrinks
  std::vector<Warp> warps;
  std::vector<unsigned> ready;  // ring of thread indices; a thread is in it at most once
  unsigned ready_head = 0, ready_count = 0;
  Context main;  // the launching thread, resumed when the block's last thread exits
  std::vector<unsigned char> static_arena = std::vector<unsigned char>(kStaticSharedBytes + 64);
  size_t static_used = 0;
  std::vector<std::pair<const void*, size_t>> static_decls;  // declaration → offset, this block
  std::vector<unsigned char> dynamic_smem;
  size_t dynamic_bytes = 0;
  uint64_t switches = 0;
};

// The static arena's base, aligned like CUDA's shared memory window.
inline unsigned char* static_base(Scheduler& s) {
  return reinterpret_cast<unsigned char*>((reinterpret_cast<uintptr_t>(s.static_arena.data()) + 63) & ~uintptr_t{63});
}

inline thread_local Scheduler* g_sched = nullptr;
inline thread_local Thread* g_self = nullptr;

inline Scheduler& scheduler() {
  static thread_local Scheduler s;
  return s;
}

inline std::string hex_mask(unsigned m) {
  char b[16];
  std::snprintf(b, sizeof b, "0x%08x", m);
  return b;
}

// A kernel or launch the emulator cannot run: the message on stderr, then abort (as a GPU would trap).
[[noreturn]] inline void fatal(const std::string& message) {
  std::fputs(("emu: " + message + "\n").c_str(), stderr);
  std::fflush(stderr);
  std::abort();
}

// Prints what every live thread of the block waits for, then aborts: a hang turned into a message.
[[noreturn]] inline void divergence(const std::string& why) {
  Scheduler& s = *g_sched;
  std::string msg = "barrier divergence in block (" + std::to_string(s.block_idx.x) + "," +
                    std::to_string(s.block_idx.y) + "," + std::to_string(s.block_idx.z) + "): " + why + "\n";
  msg += "  " + std::to_string(s.live) + " of " + std::to_string(s.nthreads) + " threads live, " +
         std::to_string(s.at_barrier) + " waiting at __syncthreads";
  if (s.at_barrier) msg += " (" + std::string(s.barrier_site.file) + ":" + std::to_string(s.barrier_site.line) + ")";
  msg += "\n";
  for (size_t w = 0; w < s.warps.size(); ++w)
    if (s.warps[w].waiting) {
      const Warp& warp = s.warps[w];
      const int lane = __builtin_ctz(warp.waiting);
      msg += "  warp " + std::to_string(w) + ": lanes " + hex_mask(warp.waiting) + " wait at warp collectives (lane " +
             std::to_string(lane) + " with mask " + hex_mask(warp.lane[lane].mask) + "), live lanes " + hex_mask(warp.live) + "\n";
    }
  msg.pop_back();
  fatal(msg);
}

inline void make_ready(Scheduler& s, Thread& t) {
  t.state = State::ready;
  s.ready[(s.ready_head + s.ready_count++) % s.nthreads] = t.linear;
}

inline void switch_to(Scheduler& s, Thread* next) {
  Thread* self = g_self;
  g_self = next;
  ++s.switches;
  switch_context(self ? self->fiber.context() : s.main, next ? next->fiber.context() : s.main);
}

// The calling thread cannot go on: run the next ready one. With none ready and threads still live,
// nothing will ever release them.
inline void block_and_switch(Scheduler& s) {
  if (s.ready_count > 0) {
    Thread* next = s.threads[s.ready[s.ready_head]].get();
    s.ready_head = (s.ready_head + 1) % s.nthreads;
    --s.ready_count;
    switch_to(s, next);
  } else if (s.live > 0) {
    divergence("no thread can proceed (threads wait at different barriers or collectives)");
  } else {
    switch_to(s, nullptr);
  }
}

inline void release_barrier(Scheduler& s) {
  s.at_barrier = 0;
  for (unsigned i = 0; i < s.nthreads; ++i)
    if (s.threads[i]->state == State::barrier) make_ready(s, *s.threads[i]);
}

// __syncthreads: waits for every live thread of the block at this same call site.
inline void sync_block(const std::source_location& loc) {
  Scheduler& s = *g_sched;
  const Site site{loc.file_name(), loc.line(), loc.column()};
  if (s.at_barrier > 0 && !(site == s.barrier_site))
    divergence("a thread reached __syncthreads at " + std::string(site.file) + ":" + std::to_string(site.line) + " while " +
               std::to_string(s.at_barrier) + " wait at the one at " + s.barrier_site.file + ":" + std::to_string(s.barrier_site.line));
  if (s.at_barrier + 1 == s.live) return release_barrier(s);  // the last to arrive goes on
  if (s.at_barrier++ == 0) s.barrier_site = site;
  g_self->state = State::barrier;
  block_and_switch(s);
}

// Lanes of `mask` other than `self_lane` that are waiting in a collective that needs `self_lane`
// with another identity: each waits for the other, so neither collective can complete.
inline void check_collective(const Warp& w, unsigned self_lane, unsigned mask, CollectiveFn fn) {
  if (!(mask >> self_lane & 1u))
    divergence("lane " + std::to_string(self_lane) + " called a warp collective with mask " + hex_mask(mask) + " that leaves it out");
  if (mask & ~w.live)
    divergence("a warp collective's mask " + hex_mask(mask) + " names lanes that exited or do not exist (live " + hex_mask(w.live) + ")");
  for (unsigned other = w.waiting & mask; other; other &= other - 1) {
    const int lane = __builtin_ctz(other);
    const LaneSlot& o = w.lane[lane];
    if ((o.fn != fn || o.mask != mask) && (o.mask >> self_lane & 1u))
      divergence("lane " + std::to_string(self_lane) + " reached a warp collective (mask " + hex_mask(mask) + ") while lane " +
                 std::to_string(lane) + ", which it waits for, waits for it at " + (o.fn != fn ? "another collective" : "the same collective") +
                 " (mask " + hex_mask(o.mask) + ")");
  }
}

// A warp collective: the lane deposits `in`, waits for every lane of `mask`, and gets its result
// in `out`. The lane that completes it runs `fn` for all of them.
inline const unsigned char* collective(unsigned mask, CollectiveFn fn, const void* in, size_t bytes) {
  Scheduler& s = *g_sched;
  Thread& self = *g_self;
  Warp& w = s.warps[self.linear / kWarpSize];
  const unsigned lane = self.linear % kWarpSize, bit = 1u << lane;
  check_collective(w, lane, mask, fn);
  LaneSlot& slot = w.lane[lane];
  if (bytes) std::memcpy(slot.in, in, bytes);
  slot.fn = fn;
  slot.mask = mask;
  if (((w.waiting | bit) & mask) == mask) {
    fn(w, mask);
    for (unsigned other = w.waiting & mask; other; other &= other - 1)
      make_ready(s, *s.threads[self.linear - lane + __builtin_ctz(other)]);
    w.waiting &= ~mask;
    return slot.out;
  }
  w.waiting |= bit;
  self.state = State::collective;
  block_and_switch(s);
  return slot.out;
}

// The end of a thread's kernel body: it no longer counts for barriers, and a collective that
// still needs it can never complete.
[[noreturn]] inline void exit_thread() {
  Scheduler& s = *g_sched;
  Thread& self = *g_self;
  Warp& w = s.warps[self.linear / kWarpSize];
  const unsigned bit = 1u << (self.linear % kWarpSize);
  self.state = State::exited;
  --s.live;
  w.live &= ~bit;
  for (unsigned other = w.waiting; other; other &= other - 1)
    if (w.lane[__builtin_ctz(other)].mask & bit)
      divergence("lane " + std::to_string(self.linear % kWarpSize) + " of warp " + std::to_string(self.linear / kWarpSize) +
                 " exited while lanes wait for it at a warp collective");
  if (s.live > 0 && s.at_barrier == s.live) release_barrier(s);
  block_and_switch(s);
  std::abort();  // unreachable: nothing switches back into an exited fiber
}

inline void fiber_entry() {
  g_sched->body(g_sched->arg);
  exit_thread();
}

// __shared__ variables: one slice of the block's arena per declaration, found by the address of the
// declaration's static tag, so every thread of a block (and every call of a __device__ function)
// sees the same memory, and the next block starts from an empty arena.
inline void* static_shared(const void* decl, size_t bytes) {
  Scheduler& s = *g_sched;
  for (const auto& [d, offset] : s.static_decls)
    if (d == decl) return static_base(s) + offset;
  const size_t offset = (s.static_used + 15) & ~size_t{15};
  if (offset + bytes > kStaticSharedBytes) fatal("static shared memory of the block exceeds " + std::to_string(kStaticSharedBytes) + " bytes");
  s.static_used = offset + bytes;
  s.static_decls.emplace_back(decl, offset);
  std::memset(static_base(s) + offset, 0xff, bytes);  // uninitialised reads show up as NaN / -1
  return static_base(s) + offset;
}

inline void* dynamic_shared() { return g_sched->dynamic_smem.data(); }

}  // namespace emu::detail
