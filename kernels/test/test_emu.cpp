// test_emu.cpp — the CUDA emulator (cuda/emu) and the kernel wrappers (cuda/common) against plain
// loops: grid-stride indexing, built-in variables, __syncthreads ordering through shared memory,
// partial-mask shuffles and ballots, atomics from many threads, dynamic shared memory, warp and block
// reductions, the exclusive scan, the bf16 tensor-core tile, and the "barrier divergence" aborts
// (each in a forked child). Exit status 0 only when all passed. The kernels themselves are in
// emu_kernels.cuh, which nvcc also compiles (cuda/emu_selftest.cu); bench/bench_emu.cpp times them.
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "../cuda/common/graph.cuh"
#include "../runtime/decode_graphs.h"
#include "emu_kernels.cuh"

using namespace gptoss;

namespace {

int g_failed = 0, g_passed = 0;
std::mt19937 rng(1234);

void expect_true(const std::string& name, bool ok, const std::string& detail = "") {
  (ok ? g_passed : g_failed)++;
  std::printf("%s %-48s %s\n", ok ? "PASS" : "FAIL", name.c_str(), detail.c_str());
}

// Device buffers through the project's wrappers (host memory under the emulator).
template <typename T>
struct DevBuffer {
  T* ptr;
  size_t count;
  explicit DevBuffer(const std::vector<T>& host) : ptr(cuda::dev_alloc<T>(host.size())), count(host.size()) {
    cuda::dev_memcpy(ptr, host.data(), count * sizeof(T));
  }
  ~DevBuffer() { cuda::dev_free(ptr); }
  std::vector<T> read() const {
    std::vector<T> out(count);
    cuda::dev_memcpy(out.data(), ptr, count * sizeof(T));
    return out;
  }
};

std::vector<float> randn(size_t n) {
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

void test_grid_stride() {
  const int n = 10007;
  const auto x = randn(n), y0 = randn(n);
  DevBuffer<float> dx(x), dy(y0);
  emu_test::launch_saxpy(n, 1.5f, dx.ptr, dy.ptr, 7, 128);  // 896 threads, each 11–12 elements
  const auto y = dy.read();
  bool ok = true;
  for (int i = 0; i < n; ++i) ok &= y[i] == 1.5f * x[i] + y0[i];
  expect_true("grid_stride/saxpy_7_blocks_10007", ok);
  // Blocks of 100 threads: the last warp of each has 4 lanes.
  DevBuffer<float> dz(y0);
  emu_test::launch_saxpy(n, -2.0f, dx.ptr, dz.ptr, 3, 100);
  const auto z = dz.read();
  ok = true;
  for (int i = 0; i < n; ++i) ok &= z[i] == -2.0f * x[i] + y0[i];
  expect_true("grid_stride/saxpy_partial_warp_blocks_of_100", ok);
}

void test_coordinates() {
  const dim3 grid(3, 2, 2), block(8, 4, 2);
  DevBuffer<unsigned> out(std::vector<unsigned>(4 * 12 * 64, 0));
  EMU_LAUNCH(emu_test::thread_coordinates, grid, block, 0, nullptr, out.ptr);
  const auto o = out.read();
  bool ok = true;
  for (unsigned b = 0; b < 12; ++b)
    for (unsigned t = 0; t < 64; ++t) {
      const unsigned* e = &o[4 * (b * 64 + t)];
      ok &= e[0] == ((t % 8) | (t / 8 % 4) << 10 | (t / 32) << 20);
      ok &= e[1] == ((b % 3) | (b / 3 % 2) << 10 | (b / 6) << 20);
      ok &= e[2] == (8u | 4u << 10 | 2u << 20) && e[3] == (3u | 2u << 10 | 2u << 20);
    }
  expect_true("builtins/threadIdx_blockIdx_3d", ok);
}

void test_syncthreads_tree() {
  for (int n : {32, 256, 1024}) {
    const int blocks = 5;
    std::vector<int> in(static_cast<size_t>(blocks) * n);
    for (auto& v : in) v = static_cast<int>(rng() % 1000);
    DevBuffer<int> din(in), dout(std::vector<int>(static_cast<size_t>(blocks) * (n + 1), 0));
    EMU_LAUNCH(emu_test::shared_tree_sum, dim3(blocks), dim3(n), 0, nullptr, din.ptr, dout.ptr);
    const auto out = dout.read();
    bool ok = true;
    for (int b = 0; b < blocks; ++b) {
      long sum = 0;
      for (int t = 0; t < n; ++t) {
        sum += in[b * n + t];
        ok &= out[b * (n + 1) + t] == in[b * n + n - 1 - t];
      }
      ok &= out[b * (n + 1) + n] == sum;
    }
    expect_true("syncthreads/shared_tree_sum_" + std::to_string(n) + "_threads", ok);
  }
}

void test_shuffles() {
  DevBuffer<int> out(std::vector<int>(4 * 64, -7));
  EMU_LAUNCH(emu_test::partial_mask_shuffles, dim3(1), dim3(64), 0, nullptr, out.ptr);
  const auto o = out.read();
  bool ok[4] = {true, true, true, true};
  for (int t = 0; t < 64; ++t) {
    const int lane = t % 32;
    const int* e = &o[4 * t];
    ok[0] &= e[0] == (lane < 16 ? (lane < 15 ? lane + 1 : lane) : lane ^ 1) * 10;
    ok[1] &= e[1] == (lane % 2 == 0 ? (lane + 2) % 32 : (lane >= 3 ? lane - 2 : lane)) * 10;
    ok[2] &= e[2] == ((lane & ~7) | ((31 - lane) & 7)) * 10;
    ok[3] &= e[3] == (lane < 8 ? lane ^ 4 : (lane > 8 ? lane - 1 : lane)) * 10;
  }
  expect_true("shuffle/halves_down_width16_and_xor", ok[0]);
  expect_true("shuffle/even_idx_odd_up_interleaved_masks", ok[1]);
  expect_true("shuffle/idx_width8_full_mask", ok[2]);
  expect_true("shuffle/xor_width8_then_up_lane_outside_mask", ok[3]);
}

void test_ballot() {
  DevBuffer<unsigned> out(std::vector<unsigned>(2 * 3, 0));
  EMU_LAUNCH(emu_test::ballots, dim3(1), dim3(96), 0, nullptr, out.ptr);
  const auto o = out.read();
  bool ok = true;
  for (unsigned w = 0; w < 3; ++w) {
    unsigned all = 0, odd = 0;
    for (unsigned l = 0; l < 32; ++l) {
      if ((w * 32 + l) % 3 == 0) all |= 1u << l;
      if (l % 2 == 1 && l > 20) odd |= 1u << l;
    }
    ok &= o[2 * w] == all && o[2 * w + 1] == odd;
  }
  expect_true("ballot/full_and_odd_lane_masks", ok);
}

void test_atomics() {
  const int blocks = 6, threads = 256, n = blocks * threads;
  DevBuffer<int> counters(std::vector<int>{0, 0, -1, 0, -1});
  DevBuffer<float> fsum(std::vector<float>{0.0f});
  EMU_LAUNCH(emu_test::atomics, dim3(blocks), dim3(threads), 0, nullptr, counters.ptr, fsum.ptr);
  const auto c = counters.read();
  int max = -1;
  for (int g = 0; g < n; ++g) max = std::max(max, (g * 7919) % 10007);
  expect_true("atomics/add_int_unsigned_float_1536_threads", c[0] == n && c[1] == 2 * n && fsum.read()[0] == 0.5f * n);
  expect_true("atomics/max_and_cas_single_winner", c[2] == max && c[3] == 1 && c[4] >= 0 && c[4] < n);
}

void test_dynamic_shared() {
  const int blocks = 3, threads = 128;
  const auto in = randn(blocks * threads);
  DevBuffer<float> din(in), dout(std::vector<float>(in.size(), 0.0f));
  emu_test::launch_dynamic_shared(din.ptr, dout.ptr, blocks, threads);
  const auto out = dout.read();
  bool ok = true;
  for (int b = 0; b < blocks; ++b)
    for (int t = 0; t < threads; ++t) {
      const float v = in[b * threads + threads - 1 - t];
      ok &= out[b * threads + t] == v + 2.0f * v + -1.0f + 1.0f;
    }
  expect_true("shared/dynamic_1KiB_beside_static", ok);
}

bool near(double got, double want, double tol) { return std::abs(got - want) <= tol * std::max(1.0, std::abs(want)); }

void test_reductions() {
  const int blocks = 3, threads = 256, warps = threads / 32, n = blocks * threads;
  const auto x = randn(n);
  std::vector<int> v(n);
  for (auto& e : v) e = static_cast<int>(rng() % 200) - 100;
  DevBuffer<float> dx(x), wsum(std::vector<float>(blocks * warps)), wmax(std::vector<float>(blocks * warps)),
      bsum(std::vector<float>(2 * blocks));
  DevBuffer<int> dv(v), scan{std::vector<int>(n)}, total{std::vector<int>(blocks)};
  EMU_LAUNCH(emu_test::reductions, dim3(blocks), dim3(threads), 0, nullptr, dx.ptr, dv.ptr, wsum.ptr, wmax.ptr, bsum.ptr,
             scan.ptr, total.ptr);
  const auto ws = wsum.read(), wm = wmax.read(), bs = bsum.read();
  const auto sc = scan.read(), tot = total.read();
  bool ok_warp = true, ok_block = true, ok_scan = true;
  for (int b = 0; b < blocks; ++b) {
    double block = 0;
    for (int w = 0; w < warps; ++w) {
      double s = 0;
      float m = -INFINITY;
      for (int l = 0; l < 32; ++l) s += x[b * threads + w * 32 + l], m = std::max(m, x[b * threads + w * 32 + l]);
      ok_warp &= near(ws[b * warps + w], s, 1e-5) && wm[b * warps + w] == m;
      block += s;
    }
    ok_block &= near(bs[2 * b], block, 1e-5) && near(bs[2 * b + 1], 2 * block, 1e-5);
    int prefix = 0;
    for (int t = 0; t < threads; ++t) {
      ok_scan &= sc[b * threads + t] == prefix;
      prefix += v[b * threads + t];
    }
    ok_scan &= tot[b] == prefix;
  }
  expect_true("wrappers/warp_sum_warp_max", ok_warp);
  expect_true("wrappers/block_sum_twice_in_a_row", ok_block);
  expect_true("wrappers/block_exclusive_scan_int_and_total", ok_scan);
}

// D = A·B + C against fp64 over the bf16-rounded inputs (the bound is fp32 summation of 17 terms,
// which the hardware meets too) and bit for bit against the plain fp32 loop the emulator documents.
void test_mma() {
  std::vector<uint16_t> A(16 * 16), B(16 * 8);
  for (auto& e : A) e = f32_to_bf16(randn(1)[0]);
  for (auto& e : B) e = f32_to_bf16(randn(1)[0]);
  const auto C = randn(16 * 8);
  DevBuffer<uint16_t> dA(A), dB(B);
  DevBuffer<float> dC(C), dD(std::vector<float>(16 * 8, NAN));
  emu_test::launch_mma_tile(dA.ptr, dB.ptr, dC.ptr, dD.ptr);
  const auto D = dD.read();
  double worst = 0;
  bool ok = true, exact = true;
  for (int m = 0; m < 16; ++m)
    for (int n = 0; n < 8; ++n) {
      double want = C[m * 8 + n], mag = std::abs(want);
      float plain = C[m * 8 + n];
      for (int k = 0; k < 16; ++k) {
        const float a = bf16_to_f32(A[m * 16 + k]), b = bf16_to_f32(B[k * 8 + n]);
        want += static_cast<double>(a) * b;
        mag += std::abs(static_cast<double>(a) * b);
        plain += a * b;
      }
      const double err = std::abs(D[m * 8 + n] - want);
      worst = std::max(worst, err / mag);
      ok &= err <= 17 * std::ldexp(1.0, -24) * mag;
      exact &= D[m * 8 + n] == plain;
    }
  char detail[64];
  std::snprintf(detail, sizeof detail, "max |Δ|/Σ|terms| = %.2e", worst);
  expect_true("mma/m16n8k16_bf16_vs_fp64_of_rounded_inputs", ok, detail);
  expect_true("mma/m16n8k16_bf16_bitwise_vs_fp32_loop", exact);
}

// Runs `body` in a forked child with stderr captured: passes when the child aborts and said `needle`.
void expect_abort(const std::string& name, const std::function<void()>& body, const std::string& needle) {
  int fds[2];
  if (pipe(fds) != 0) return expect_true(name, false, "pipe failed");
  std::fflush(stdout);
  const pid_t pid = fork();
  if (pid == 0) {
    const rlimit no_core{0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    dup2(fds[1], 2);
    close(fds[0]);
    alarm(20);  // a hang ends in SIGALRM, which fails the case
    body();
    _exit(0);
  }
  close(fds[1]);
  std::string err;
  char buf[4096];
  for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) err.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  const bool ok = WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT && err.find(needle) != std::string::npos;
  expect_true(name, ok, err.substr(0, err.find('\n')));
}

void test_divergence() {
  expect_abort("divergence/half_block_skips_syncthreads", [] {
    DevBuffer<int> out(std::vector<int>(64));
    EMU_LAUNCH(emu_test::divergent_barrier, dim3(1), dim3(64), 0, nullptr, out.ptr);
  }, "barrier divergence");
  expect_abort("divergence/lanes_at_different_collectives", [] {
    DevBuffer<int> out(std::vector<int>(32));
    EMU_LAUNCH(emu_test::divergent_collective, dim3(1), dim3(32), 0, nullptr, out.ptr);
  }, "barrier divergence");
  expect_abort("divergence/syncthreads_against_shuffle_deadlock", [] {
    DevBuffer<int> out(std::vector<int>(32));
    EMU_LAUNCH(emu_test::barrier_against_collective, dim3(1), dim3(32), 0, nullptr, out.ptr);
  }, "no thread can proceed");
  expect_abort("divergence/shuffle_mask_names_exited_lane", [] {
    DevBuffer<int> out(std::vector<int>(32));
    EMU_LAUNCH(emu_test::collective_after_exit, dim3(1), dim3(32), 0, nullptr, out.ptr);
  }, "barrier divergence");
  expect_abort("launch/block_of_2048_threads_refused", [] {
    EMU_LAUNCH(emu_test::saxpy_grid_stride, dim3(1), dim3(2048), 0, nullptr, 0, 1.0f, nullptr, nullptr);
  }, "invalid launch");
}

// A captured launch sequence: nothing runs while capturing; each replay runs the launches in order
// with the arguments they were captured with, reading the inputs as they are at replay.
void test_graph() {
  const int n = 100;
  std::vector<float> x0(n), y0(n);
  for (int i = 0; i < n; ++i) x0[i] = static_cast<float>(i % 7) - 3.0f, y0[i] = 0.25f * static_cast<float>(i);
  DevBuffer<float> x(x0), y(y0);
  cuda::LaunchGraph g;
  float a = 2.0f;
  g.begin_capture();
  emu_test::launch_scale_add(y.ptr, x.ptr, a, n);
  emu_test::launch_scale_add(y.ptr, x.ptr, -0.5f, n);
  g.end_capture();
  a = 100.0f;  // the capture holds its own copy
  expect_true("graph/nothing_runs_while_capturing", y.read() == y0 && g.ready() && g.launches() == 2, std::to_string(g.launches()) + " launches");
  auto eager = [&](std::vector<float> yv, const std::vector<float>& xv) {
    for (int i = 0; i < n; ++i) yv[i] = -0.5f * (2.0f * yv[i] + xv[i]) + xv[i];
    return yv;
  };
  g.replay();
  const auto once = eager(y0, x0);
  expect_true("graph/replay_equals_eager", y.read() == once);
  std::vector<float> x1(n, 1.5f);
  cuda::dev_memcpy(x.ptr, x1.data(), n * sizeof(float));  // a new step's inputs, same addresses
  g.replay();
  expect_true("graph/replay_reads_updated_inputs", y.read() == eager(once, x1));
  g.reset();
  expect_true("graph/reset", !g.ready() && g.launches() == 0);
  // The decode buckets: the smallest of 1, 2, 4, …, 128 at or above n; none past 128 or below 1.
  static_assert(DecodeGraphs::bucket(1) == 1 && DecodeGraphs::bucket(2) == 2 && DecodeGraphs::bucket(3) == 4);
  bool buckets = DecodeGraphs::bucket(0) == 0 && DecodeGraphs::bucket(129) == 0 && DecodeGraphs::bucket(-1) == 0;
  for (int n = 1; n <= 128; ++n) {
    const int b = DecodeGraphs::bucket(n);
    buckets = buckets && b >= n && b < 2 * n && (b & (b - 1)) == 0;
  }
  expect_true("graph/decode_buckets", buckets);
}

}  // namespace

int main() {
  test_grid_stride();
  test_coordinates();
  test_syncthreads_tree();
  test_shuffles();
  test_ballot();
  test_atomics();
  test_dynamic_shared();
  test_reductions();
  test_mma();
  test_graph();
  test_divergence();
  std::printf("emu: %d passed, %d failed\n", g_passed, g_failed);
  return g_failed == 0 ? 0 : 1;
}
