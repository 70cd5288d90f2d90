// test_comm.cpp — the communicator in real processes: each case forks its W ranks, which meet through a
// file rendezvous in a fresh directory and talk Gloo over loopback. A rank checks its own results and
// exits 0 (pass) or 1 (printing why). NCCL runs the same collectives where libnccl.so.2 and a GPU are
// present, and prints "SKIP nccl: <why>" otherwise. Output: "PASS case" / "FAIL case: ..." lines and
// "comm: N passed, M failed". Exit status 0 only when every case passed.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <gloo/rendezvous/file_store.h>

#include "../comm/communicator.h"
#include "../comm/rendezvous.h"
#include "../cuda/cuda_device.h"

using namespace gptoss;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

int g_passed = 0, g_failed = 0;

std::string fresh_dir() {
  char tmpl[] = "/tmp/expertmesh-test-comm-XXXXXX";
  const char* dir = mkdtemp(tmpl);
  if (dir == nullptr) std::abort();
  return dir;
}

// Inside a rank: a failed expectation ends the process with status 1.
void expect(bool ok, const std::string& what) {
  if (ok) return;
  std::fprintf(stderr, "  [pid %d] expected: %s\n", getpid(), what.c_str());
  std::fflush(stderr);
  _exit(1);
}

// What a rank's call threw: the failure kind, or -1 when it returned normally.
int failure_of(const std::function<void()>& f) {
  try {
    f();
    return -1;
  } catch (const comm::CommError& e) {
    std::fprintf(stderr, "  [pid %d] (expected failure) %s\n", getpid(), e.what());
    return static_cast<int>(e.failure());
  }
}

// Forks `world` ranks running body(rank, world, rendezvous); passes when every rank exits 0 (ranks in
// `killed` are expected to be killed by the parent after `kill_after`).
void run_case(const std::string& name, int world, const std::function<void(int, int, const std::string&)>& body,
              std::vector<int> killed = {}, std::chrono::milliseconds kill_after = 0ms) {
  const std::string rendezvous = "file://" + fresh_dir();
  std::fflush(stdout);
  std::vector<pid_t> pids;
  for (int r = 0; r < world; ++r) {
    const pid_t pid = fork();
    if (pid == 0) {
      try {
        body(r, world, rendezvous);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "  [rank %d] unexpected exception: %s\n", r, e.what());
        _exit(1);
      }
      _exit(0);
    }
    pids.push_back(pid);
  }
  if (!killed.empty()) {
    std::this_thread::sleep_for(kill_after);
    for (int r : killed) kill(pids[r], SIGKILL);
  }
  std::string why;
  for (int r = 0; r < world; ++r) {
    int status = 0;
    waitpid(pids[r], &status, 0);
    const bool expected_kill = std::find(killed.begin(), killed.end(), r) != killed.end();
    if (expected_kill) continue;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) why += " rank " + std::to_string(r) + " failed;";
  }
  std::filesystem::remove_all(rendezvous.substr(7));
  if (why.empty()) {
    ++g_passed;
    std::printf("PASS %s\n", name.c_str());
  } else {
    ++g_failed;
    std::printf("FAIL %s:%s\n", name.c_str(), why.c_str());
  }
}

// The four collectives with values every rank can predict.
void collectives(comm::Communicator& c) {
  const int r = c.rank(), w = c.world();
  std::vector<float> v(1000);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>((r + 1) * (i + 1));
  c.sum(v.data(), static_cast<int64_t>(v.size()));
  for (size_t i = 0; i < v.size(); ++i) expect(v[i] == static_cast<float>(w * (w + 1) / 2 * (i + 1)), "all-reduce sums every rank");
  for (int root = 0; root < w; ++root) {
    std::vector<int32_t> b(37, r == root ? 100 + root : -1);
    c.broadcast(b.data(), static_cast<int64_t>(b.size() * sizeof(int32_t)), root);
    for (int32_t x : b) expect(x == 100 + root, "broadcast copies the root's buffer");
  }
  const int64_t mine[2] = {r, 10 * r};
  std::vector<int64_t> all(2 * w, -1);
  c.allgather(mine, all.data(), sizeof mine);
  for (int k = 0; k < w; ++k) expect(all[2 * k] == k && all[2 * k + 1] == 10 * k, "all-gather orders by rank");
  c.barrier();
}

// Rank r sends block p = {r, p, 1000 r + p} (3 int32) to rank p; so block q of what r receives is {q, r, 1000 q + r}.
void all_to_all(comm::Communicator& c) {
  const int r = c.rank(), w = c.world();
  std::vector<int32_t> in(3 * w), out(3 * w, -1);
  for (int p = 0; p < w; ++p) in[3 * p] = r, in[3 * p + 1] = p, in[3 * p + 2] = 1000 * r + p;
  c.all_to_all(in.data(), out.data(), 3 * sizeof(int32_t));
  for (int q = 0; q < w; ++q)
    expect(out[3 * q] == q && out[3 * q + 1] == r && out[3 * q + 2] == 1000 * q + r, "all-to-all: block q came from rank q, addressed to me");
}

void gloo_cases() {
  for (int world : {2, 4}) {
    run_case("gloo_collectives_w" + std::to_string(world), world, [](int r, int w, const std::string& rdzv) {
      auto c = comm::connect_gloo(r, w, rdzv, 10s);
      expect(c->rank() == r && c->world() == w && c->timeout() == 10s, "rank, world and timeout as connected");
      collectives(*c);
    });
  }

  // A rank that joins but never takes part in the collective (hung): the others fail with `timeout`
  // within timeout + 1 s; the hung rank is killed by the parent afterwards.
  run_case("watchdog_timeout_w3", 3,
           [](int r, int w, const std::string& rdzv) {
             auto c = comm::connect_gloo(r, w, rdzv, 1500ms);
             if (r == 2) std::this_thread::sleep_for(60s);
             float x = 1.0f;
             const auto t0 = Clock::now();
             const int f = failure_of([&] { c->sum(&x, 1); });
             const auto waited = Clock::now() - t0;
             expect(f == static_cast<int>(comm::Failure::timeout), "failure kind timeout, got " + std::to_string(f));
             expect(waited >= 1400ms && waited < 2500ms, "failed within timeout + 1 s");
             expect(failure_of([&] { c->barrier(); }) == static_cast<int>(comm::Failure::aborted), "later calls fail at once: aborted");
           },
           {2}, 3000ms);

  // A rank that dies: its peers see `peer_lost` long before the timeout.
  run_case("peer_lost_w2", 2, [](int r, int w, const std::string& rdzv) {
    auto c = comm::connect_gloo(r, w, rdzv, 20s);
    c->barrier();          // both connected before one goes
    if (r == 1) _exit(0);  // gone without a word: the OS closes its sockets
    float x = 1.0f;
    const auto t0 = Clock::now();
    expect(failure_of([&] { c->sum(&x, 1); }) == static_cast<int>(comm::Failure::peer_lost), "failure kind peer_lost");
    expect(Clock::now() - t0 < 5s, "failed well before the 20 s timeout");
  });

  run_case("abort_w2", 2, [](int r, int w, const std::string& rdzv) {
    auto c = comm::connect_gloo(r, w, rdzv, 10s);
    c->barrier();
    c->abort("the group is re-formed");
    expect(failure_of([&] { c->barrier(); }) == static_cast<int>(comm::Failure::aborted), "calls after abort fail: aborted");
  });

  for (const int world : {2, 3}) {
    run_case("all_to_all_w" + std::to_string(world), world, [](int r, int w, const std::string& rdzv) {
      auto c = comm::connect_gloo(r, w, rdzv, 10s);
      all_to_all(*c);
    });
  }

  // Only rank 0 of 2 shows up: the join fails with `rendezvous` within the timeout + 1 s.
  run_case("rendezvous_timeout", 1, [](int, int, const std::string& rdzv) {
    const auto t0 = Clock::now();
    expect(failure_of([&] { comm::connect_gloo(0, 2, rdzv, 1000ms); }) == static_cast<int>(comm::Failure::rendezvous),
           "failure kind rendezvous");
    expect(Clock::now() - t0 < 2500ms, "gave up within timeout + 1 s");
  });

  // A host-registered scheme: the rendezvous is pluggable without touching connect_gloo.
  run_case("registered_scheme_w2", 2, [](int r, int w, const std::string& rdzv) {
    comm::register_rendezvous("testdir", [](const std::string& path) { return std::make_unique<gloo::rendezvous::FileStore>(path); });
    auto c = comm::connect_gloo(r, w, "testdir://" + rdzv.substr(7), 10s);
    collectives(*c);
  });

  // What rank 0 makes reaches every rank through the store (how NCCL's unique id travels).
  run_case("share_from_rank0_w3", 3, [](int r, int, const std::string& rdzv) {
    const std::string made = std::string("id-of-rank-0\0with a zero byte", 29);
    const std::string got = comm::share_from_rank0(rdzv, "nccl_unique_id", r, 10s, [&] {
      expect(r == 0, "only rank 0 makes the bytes");
      return made;
    });
    expect(got == made, "rank " + std::to_string(r) + " got rank 0's bytes, zero byte included");
  });

  // Rank 0 never publishes: a follower gives up with `rendezvous` within the timeout + 1 s.
  run_case("share_from_rank0_timeout", 1, [](int, int, const std::string& rdzv) {
    const auto t0 = Clock::now();
    expect(failure_of([&] { comm::share_from_rank0(rdzv, "nccl_unique_id", 1, 1000ms, [] { return std::string("x"); }); }) ==
               static_cast<int>(comm::Failure::rendezvous),
           "failure kind rendezvous");
    expect(Clock::now() - t0 < 2500ms, "gave up within timeout + 1 s");
  });

  run_case("bad_rendezvous", 1, [](int, int, const std::string&) {
    for (const char* spec : {"nowhere", "ftp://x", "redis://user:pw@host:1/"}) {
      try {
        comm::connect_gloo(0, 1, spec, 1s);
        expect(false, std::string("rejects ") + spec);
      } catch (const comm::CommError&) {
        expect(false, std::string("a bad spec is invalid_argument, not a communicator failure: ") + spec);
      } catch (const Error& e) {
        expect(e.status() == gptoss_status_invalid_argument, std::string("invalid_argument for ") + spec);
      }
    }
  });
}

// NCCL, where it can run: W = min(GPUs, 4) ranks, one device each, the unique id shared through the
// file store (connect_nccl_at), host buffers (staged) through the same collectives.
void nccl_cases() {
  comm::TransportProbe p;
  comm::probe_nccl(p);
  if (!p.nccl_loadable) {
    std::printf("SKIP nccl: libnccl.so.2 cannot be loaded (%s)\n", p.nccl_error.c_str());
    return;
  }
  // Counted in a child: CUDA must not be initialised in the parent before it forks the ranks.
  const pid_t probe = fork();
  if (probe == 0) _exit(std::min(cuda::probe_devices().device_count, 4));
  int status = 0;
  waitpid(probe, &status, 0);
  const int gpus = WIFEXITED(status) ? WEXITSTATUS(status) : 0;
  if (gpus < 1) {
    std::printf("SKIP nccl: libnccl.so.2 %d is loadable but no CUDA device is visible\n", p.nccl_version);
    return;
  }
  run_case("nccl_collectives_w" + std::to_string(gpus), gpus, [](int r, int w, const std::string& rdzv) {
    auto c = comm::connect_nccl_at(r, w, rdzv, 30s, r);
    collectives(*c);
    all_to_all(*c);
  });
}

}  // namespace

int main() {
  gloo_cases();
  nccl_cases();
  std::printf("comm: %d passed, %d failed\n", g_passed, g_failed);
  return g_failed == 0 ? 0 : 1;
}
