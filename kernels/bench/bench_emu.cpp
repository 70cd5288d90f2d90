// bench_emu.cpp — the CUDA emulator's switch rate: how fast blocks of emulated threads get through
// barriers, warp shuffles and barrier-free kernels (the cost whole-model golden runs pay per barrier).
// Not part of the test suite. Build with -DEMU_FIBER_UCONTEXT to time the ucontext fibers instead.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <vector>

#include "../test/emu_kernels.cuh"

using namespace gptoss;

namespace {

// Runs `run` and prints seconds, fiber switches per second and ns per `unit`.
void measure(const char* what, const std::function<void()>& run, double units, const char* unit) {
  const uint64_t s0 = emu::switch_count();
  const auto t0 = std::chrono::steady_clock::now();
  run();
  const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double switches = static_cast<double>(emu::switch_count() - s0);
  std::printf("%-48s %7.3f s  %6.1f M switches/s  %6.0f ns per %s\n", what, sec, switches / sec / 1e6, sec * 1e9 / units, unit);
}

}  // namespace

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 256;
  const int rounds = argc > 2 ? std::atoi(argv[2]) : 2000;
  if (threads < 32 || threads > 1024 || threads % 32 || rounds < 1) {
    std::fprintf(stderr, "usage: bench_emu [threads: a multiple of 32 ≤ 1024, default 256] [rounds, default 2000]\n");
    return 2;
  }
  const int blocks = 64;
  std::vector<int> iout(static_cast<size_t>(threads) * blocks);
  std::vector<float> x(static_cast<size_t>(threads) * blocks, 1.0f), y(x), fout(x.size());
  char label[96];
  std::snprintf(label, sizeof label, "barriers: %d threads x %d __syncthreads", threads, 2 * rounds);
  measure(label, [&] { EMU_LAUNCH(emu_test::barrier_rounds, dim3(1), dim3(threads), 0, nullptr, rounds, iout.data()); },
          2.0 * threads * rounds, "thread-barrier");
  std::snprintf(label, sizeof label, "shuffles: %d threads x %d warp_sum (5 each)", threads, rounds / 2);
  measure(label, [&] { EMU_LAUNCH(emu_test::shuffle_rounds, dim3(1), dim3(threads), 0, nullptr, rounds / 2, fout.data()); },
          5.0 * threads * (rounds / 2), "thread-shuffle");
  std::snprintf(label, sizeof label, "no barrier: %d blocks x %d threads saxpy", blocks, threads);
  measure(label, [&] { emu_test::launch_saxpy(threads * blocks, 2.0f, x.data(), y.data(), blocks, threads); },
          1.0 * threads * blocks, "thread");
  return 0;
}
