// intrinsics.h — CUDA's device intrinsics under the emulator: the _sync warp collectives (shuffles,
// ballot, any/all, __syncwarp), __syncthreads, atomics and the bit casts kernels use. Collectives
// wait only for the lanes their mask names. Fibers never run at the same time, so an atomic is a
// plain read-modify-write. Not here: memory-model effects (fences are no-ops; there are no races).
#pragma once

#include <cstdint>
#include <cstring>
#include <source_location>
#include <type_traits>

#include "block.h"

namespace emu::detail {

enum class Shfl { idx, up, down, bfly };

struct ShflIn {
  uint64_t bits;
  int arg;  // source lane, delta or xor mask
  int width;
};

// CUDA's source lane for `lane`; -1 when the lane keeps its own value (out of its width segment).
template <Shfl kind>
inline int shfl_source(int lane, int arg, int width) {
  const int base = lane & ~(width - 1);
  switch (kind) {
    case Shfl::idx: return base | (arg & (width - 1));
    case Shfl::up: return (lane - base) >= arg ? lane - arg : -1;
    case Shfl::down: return (lane - base) + arg < width ? lane + arg : -1;
    case Shfl::bfly: {
      const int src = lane ^ arg;
      return src < base + width ? src : -1;  // later segments are out of reach, earlier ones are not
    }
  }
  return -1;
}

template <Shfl kind>
void shfl_collective(Warp& w, unsigned mask) {
  for (unsigned m = mask; m; m &= m - 1) {
    const int lane = __builtin_ctz(m);
    ShflIn in;
    std::memcpy(&in, w.lane[lane].in, sizeof in);
    const int src = shfl_source<kind>(lane, in.arg, in.width);
    // Reading a lane outside the mask is undefined in CUDA; the emulator returns the lane's own value.
    const bool own = src < 0 || !(mask >> src & 1u);
    std::memcpy(w.lane[lane].out, own ? w.lane[lane].in : w.lane[src].in, sizeof(uint64_t));
  }
}

inline void ballot_collective(Warp& w, unsigned mask) {
  unsigned bits = 0;
  for (unsigned m = mask; m; m &= m - 1) {
    int pred;
    std::memcpy(&pred, w.lane[__builtin_ctz(m)].in, sizeof pred);
    if (pred) bits |= m & -m;
  }
  for (unsigned m = mask; m; m &= m - 1) std::memcpy(w.lane[__builtin_ctz(m)].out, &bits, sizeof bits);
}

inline void syncwarp_collective(Warp&, unsigned) {}

template <Shfl kind, typename T>
T shfl(unsigned mask, T value, int arg, int width) {
  static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= 8, "shuffles move values of up to 8 bytes");
  if (width <= 0 || width > kWarpSize || (width & (width - 1)))
    fatal("shuffle width " + std::to_string(width) + " is not a power of two in [1, 32]");
  ShflIn in{0, arg, width};
  std::memcpy(&in.bits, &value, sizeof value);
  const unsigned char* out = collective(mask, shfl_collective<kind>, &in, sizeof in);
  T result;
  std::memcpy(&result, out, sizeof result);
  return result;
}

}  // namespace emu::detail

// --- warp collectives ---------------------------------------------------------------------------

template <typename T>
inline T __shfl_sync(unsigned mask, T value, int src_lane, int width = 32) {
  return emu::detail::shfl<emu::detail::Shfl::idx>(mask, value, src_lane, width);
}
template <typename T>
inline T __shfl_up_sync(unsigned mask, T value, unsigned delta, int width = 32) {
  return emu::detail::shfl<emu::detail::Shfl::up>(mask, value, static_cast<int>(delta), width);
}
template <typename T>
inline T __shfl_down_sync(unsigned mask, T value, unsigned delta, int width = 32) {
  return emu::detail::shfl<emu::detail::Shfl::down>(mask, value, static_cast<int>(delta), width);
}
template <typename T>
inline T __shfl_xor_sync(unsigned mask, T value, int lane_mask, int width = 32) {
  return emu::detail::shfl<emu::detail::Shfl::bfly>(mask, value, lane_mask, width);
}
inline unsigned __ballot_sync(unsigned mask, int predicate) {
  const int pred = predicate != 0;
  unsigned bits;
  std::memcpy(&bits, emu::detail::collective(mask, emu::detail::ballot_collective, &pred, sizeof pred), sizeof bits);
  return bits;
}
inline int __any_sync(unsigned mask, int predicate) { return __ballot_sync(mask, predicate) != 0; }
inline int __all_sync(unsigned mask, int predicate) { return __ballot_sync(mask, predicate) == mask; }
inline void __syncwarp(unsigned mask = 0xffffffffu) { emu::detail::collective(mask, emu::detail::syncwarp_collective, nullptr, 0); }

// The call site identifies the barrier, so threads waiting at two different __syncthreads are
// reported instead of passing each other.
inline void __syncthreads(std::source_location loc = std::source_location::current()) { emu::detail::sync_block(loc); }
inline void __threadfence() {}
inline void __threadfence_block() {}

// --- atomics: one fiber runs at a time, so each is an ordinary read-modify-write -------------------

template <typename T>
concept EmuAtomicAdd = std::is_same_v<T, int> || std::is_same_v<T, unsigned> || std::is_same_v<T, unsigned long long> ||
                       std::is_same_v<T, float> || std::is_same_v<T, double>;
template <typename T>
concept EmuAtomicInt = std::is_same_v<T, int> || std::is_same_v<T, unsigned> || std::is_same_v<T, unsigned long long>;

template <EmuAtomicAdd T> inline T atomicAdd(T* p, T v) { const T old = *p; *p = old + v; return old; }
template <EmuAtomicInt T> inline T atomicSub(T* p, T v) { const T old = *p; *p = old - v; return old; }
template <EmuAtomicInt T> inline T atomicMax(T* p, T v) { const T old = *p; *p = old < v ? v : old; return old; }
template <EmuAtomicInt T> inline T atomicMin(T* p, T v) { const T old = *p; *p = v < old ? v : old; return old; }
template <EmuAtomicInt T> inline T atomicExch(T* p, T v) { const T old = *p; *p = v; return old; }
template <EmuAtomicInt T> inline T atomicCAS(T* p, T compare, T v) { const T old = *p; if (old == compare) *p = v; return old; }
inline float atomicExch(float* p, float v) { const float old = *p; *p = v; return old; }

// --- bit casts and bit counts ---------------------------------------------------------------------

inline float __int_as_float(int v) { float f; std::memcpy(&f, &v, 4); return f; }
inline float __uint_as_float(unsigned v) { float f; std::memcpy(&f, &v, 4); return f; }
inline int __float_as_int(float f) { int v; std::memcpy(&v, &f, 4); return v; }
inline unsigned __float_as_uint(float f) { unsigned v; std::memcpy(&v, &f, 4); return v; }
inline int __popc(unsigned v) { return __builtin_popcount(v); }
inline int __clz(int v) { return v ? __builtin_clz(static_cast<unsigned>(v)) : 32; }
inline int __ffs(int v) { return __builtin_ffs(v); }
