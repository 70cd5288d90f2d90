// nccl.cpp — the GPU transport. NCCL is never linked: GPU images bring libnccl.so.2 (and the CUDA
// runtime) and we resolve the few symbols we need at run time, so the same binary runs (CPU-only) where
// NCCL is absent. Buffers are device pointers on the default stream. The watchdog polls the stream:
// a collective not done within the timeout aborts the communicator (ncclCommAbort) and throws.
#include <dlfcn.h>

#include <cstring>
#include <thread>

#include "../core/error.h"
#include "communicator.h"

namespace gptoss::comm {

namespace {
struct UniqueId {
  char bytes[128];
};
using comm_t = void*;
using nccl_get_version_fn = int (*)(int*);
using nccl_get_unique_id_fn = int (*)(UniqueId*);
using nccl_init_rank_fn = int (*)(comm_t*, int, UniqueId, int);
using nccl_all_reduce_fn = int (*)(const void*, void*, size_t, int, int, comm_t, void*);
using nccl_broadcast_fn = int (*)(const void*, void*, size_t, int, int, comm_t, void*);
using nccl_all_gather_fn = int (*)(const void*, void*, size_t, int, comm_t, void*);
using nccl_comm_fn = int (*)(comm_t);
using nccl_error_string_fn = const char* (*)(int);
using cuda_stream_query_fn = int (*)(void*);
constexpr int kFloat32 = 7, kUint8 = 1, kSum = 0, kCudaErrorNotReady = 600;

struct Nccl {
  void* lib = nullptr;
  void* cudart = nullptr;
  nccl_get_unique_id_fn get_unique_id = nullptr;
  nccl_init_rank_fn init_rank = nullptr;
  nccl_all_reduce_fn all_reduce = nullptr;
  nccl_broadcast_fn broadcast = nullptr;
  nccl_all_gather_fn all_gather = nullptr;
  nccl_comm_fn abort = nullptr, destroy = nullptr;
  nccl_error_string_fn error_string = nullptr;
  cuda_stream_query_fn stream_query = nullptr;
};

template <typename T>
T sym(void* lib, const char* name) {
  void* p = dlsym(lib, name);
  check(p != nullptr, gptoss_status_communicator_error, std::string("nccl: missing symbol ") + name);
  return reinterpret_cast<T>(p);
}

const Nccl& nccl() {
  static const Nccl n = [] {
    Nccl x;
    x.lib = dlopen("libnccl.so.2", RTLD_NOW | RTLD_LOCAL);
    check(x.lib != nullptr, gptoss_status_communicator_error, "nccl: libnccl.so.2 cannot be loaded on this host");
    for (const char* name : {"libcudart.so", "libcudart.so.13", "libcudart.so.12"})
      if ((x.cudart = dlopen(name, RTLD_NOW | RTLD_LOCAL)) != nullptr) break;
    check(x.cudart != nullptr, gptoss_status_communicator_error, "nccl: the CUDA runtime cannot be loaded on this host");
    x.get_unique_id = sym<nccl_get_unique_id_fn>(x.lib, "ncclGetUniqueId");
    x.init_rank = sym<nccl_init_rank_fn>(x.lib, "ncclCommInitRank");
    x.all_reduce = sym<nccl_all_reduce_fn>(x.lib, "ncclAllReduce");
    x.broadcast = sym<nccl_broadcast_fn>(x.lib, "ncclBroadcast");
    x.all_gather = sym<nccl_all_gather_fn>(x.lib, "ncclAllGather");
    x.abort = sym<nccl_comm_fn>(x.lib, "ncclCommAbort");
    x.destroy = sym<nccl_comm_fn>(x.lib, "ncclCommDestroy");
    x.error_string = sym<nccl_error_string_fn>(x.lib, "ncclGetErrorString");
    x.stream_query = sym<cuda_stream_query_fn>(x.cudart, "cudaStreamQuery");
    return x;
  }();
  return n;
}

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(comm_t c, int rank, int world, std::chrono::milliseconds timeout)
      : comm_(c), rank_(rank), world_(world), timeout_(timeout) {}
  ~NcclCommunicator() override {
    if (comm_ != nullptr) (failed_.empty() ? nccl().destroy : nccl().abort)(comm_);
  }
  int rank() const override { return rank_; }
  int world() const override { return world_; }
  std::chrono::milliseconds timeout() const override { return timeout_; }

  void sum(float* data, int64_t count) override {
    run("all-reduce", [&] { return nccl().all_reduce(data, data, static_cast<size_t>(count), kFloat32, kSum, comm_, nullptr); });
  }
  void broadcast(void* data, int64_t bytes, int root) override {
    run("broadcast", [&] { return nccl().broadcast(data, data, static_cast<size_t>(bytes), kUint8, root, comm_, nullptr); });
  }
  void allgather(const void* in, void* out, int64_t bytes) override {
    run("all-gather", [&] { return nccl().all_gather(in, out, static_cast<size_t>(bytes), kUint8, comm_, nullptr); });
  }
  void barrier() override {
    // A one-element all-reduce on a scratch device word is NCCL's barrier; callers pass device memory,
    // so the engine's CUDA path provides that word. Without one, a barrier is a no-op here.
  }
  void abort(const std::string& reason) override {
    if (!failed_.empty()) return;
    failed_ = reason.empty() ? "aborted" : reason;
    if (comm_ != nullptr) nccl().abort(comm_);
    comm_ = nullptr;
  }

 private:
  template <typename F>
  void run(const char* what, F&& launch) {
    check(failed_.empty(), gptoss_status_communicator_error, std::string(what) + ": the communicator failed earlier: " + failed_);
    const int r = launch();
    if (r != 0) {
      const std::string msg = std::string("nccl ") + what + ": " + nccl().error_string(r);
      abort(msg);
      fail(gptoss_status_communicator_error, msg);
    }
    const auto deadline = std::chrono::steady_clock::now() + timeout_;
    for (;;) {  // the watchdog: the collective finishes within the timeout or the communicator is aborted
      const int q = nccl().stream_query(nullptr);
      if (q == 0) return;
      if (q != kCudaErrorNotReady || std::chrono::steady_clock::now() > deadline) {
        const std::string msg = std::string("nccl ") + what + " did not finish within " + std::to_string(timeout_.count()) + " ms";
        abort(msg);
        fail(gptoss_status_communicator_error, msg);
      }
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }

  comm_t comm_;
  int rank_, world_;
  std::chrono::milliseconds timeout_;
  std::string failed_;
};
}  // namespace

std::string nccl_unique_id() {
  UniqueId id{};
  const int r = nccl().get_unique_id(&id);
  check(r == 0, gptoss_status_communicator_error, std::string("ncclGetUniqueId: ") + nccl().error_string(r));
  return std::string(id.bytes, sizeof(id.bytes));
}

std::unique_ptr<Communicator> connect_nccl(int rank, int world, const std::string& unique_id, std::chrono::milliseconds timeout) {
  check(unique_id.size() == sizeof(UniqueId), gptoss_status_invalid_argument, "nccl: the unique id must be 128 bytes");
  UniqueId id{};
  std::memcpy(id.bytes, unique_id.data(), sizeof(id.bytes));
  comm_t c = nullptr;
  const int r = nccl().init_rank(&c, world, id, rank);
  check(r == 0, gptoss_status_communicator_error, std::string("ncclCommInitRank: ") + nccl().error_string(r));
  return std::make_unique<NcclCommunicator>(c, rank, world, timeout);
}

void probe_nccl(TransportProbe& out) {
  void* lib = dlopen("libnccl.so.2", RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    const char* err = dlerror();
    out.nccl_error = err != nullptr ? err : "libnccl.so.2 not found";
    return;
  }
  auto get_version = reinterpret_cast<nccl_get_version_fn>(dlsym(lib, "ncclGetVersion"));
  int version = 0;
  if (get_version != nullptr && get_version(&version) == 0) {
    out.nccl_loadable = true;
    out.nccl_version = version;
  } else {
    out.nccl_error = "libnccl.so.2 has no usable ncclGetVersion";
  }
}

}  // namespace gptoss::comm
