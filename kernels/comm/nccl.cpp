// nccl.cpp — the GPU transport. NCCL is never linked: GPU images bring libnccl.so.2 (and the CUDA
// runtime) and we resolve the few symbols we need at run time, so the same binary runs (CPU-only) where
// NCCL is absent. Collectives run on the default stream of this rank's device. Device buffers go to
// NCCL directly; host buffers (the CPU engine, tests) are staged through a device scratch buffer.
// The watchdog polls the stream: a collective not done within the timeout aborts the communicator
// (ncclCommAbort, which also ends the kernel) and throws CommError{timeout}.
// The join is bounded too where NCCL has ncclCommInitRankConfig (2.14 and later): the communicator is
// made non-blocking and polled, and aborted when the timeout passes. On older NCCL the blocking
// ncclCommInitRank has no bound (the orchestrator re-forms a group whose ranks never become ready).
// Point-to-point send/recv in a group make the all-to-all a token dispatch needs.
#include <dlfcn.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <mutex>
#include <thread>

#include "communicator.h"
#include "rendezvous.h"

namespace gptoss::comm {

namespace {
struct UniqueId {
  char bytes[128];
};
struct PointerAttributes {  // cudaPointerAttributes (CUDA >= 11), with room to spare
  int type;
  int device;
  void* device_pointer;
  void* host_pointer;
  long reserved[16];
};
using comm_t = void*;
using nccl_get_version_fn = int (*)(int*);
using nccl_get_unique_id_fn = int (*)(UniqueId*);
using nccl_init_rank_fn = int (*)(comm_t*, int, UniqueId, int);
using nccl_all_reduce_fn = int (*)(const void*, void*, size_t, int, int, comm_t, void*);
using nccl_broadcast_fn = int (*)(const void*, void*, size_t, int, int, comm_t, void*);
using nccl_all_gather_fn = int (*)(const void*, void*, size_t, int, comm_t, void*);
using nccl_comm_fn = int (*)(comm_t);
using nccl_group_fn = int (*)();
using nccl_send_recv_fn = int (*)(void*, size_t, int, int, comm_t, void*);  // send takes const void*; same ABI
using nccl_async_error_fn = int (*)(comm_t, int*);
// ncclConfig_t as NCCL 2.14 laid it out: later releases append fields and read a config by its
// `version`, so this prefix stays valid without NCCL's header.
struct CommConfig {
  size_t size = sizeof(CommConfig);
  unsigned int magic = 0xcafebeef;
  unsigned int version = 21400;
  int blocking = INT_MIN, cga_cluster_size = INT_MIN, min_ctas = INT_MIN, max_ctas = INT_MIN;
  const char* net_name = nullptr;
};
using nccl_init_rank_config_fn = int (*)(comm_t*, int, UniqueId, int, CommConfig*);
using nccl_error_string_fn = const char* (*)(int);
using cuda_stream_query_fn = int (*)(void*);
using cuda_int_fn = int (*)(int);
using cuda_int_ptr_fn = int (*)(int*);
using cuda_malloc_fn = int (*)(void**, size_t);
using cuda_free_fn = int (*)(void*);
using cuda_memcpy_fn = int (*)(void*, const void*, size_t, int);
using cuda_pointer_attributes_fn = int (*)(PointerAttributes*, const void*);
using cuda_error_string_fn = const char* (*)(int);
constexpr int kFloat32 = 7, kUint8 = 1, kSum = 0, kCudaErrorNotReady = 600, kInProgress = 7;
constexpr int kMemcpyHostToDevice = 1, kMemcpyDeviceToHost = 2, kMemoryTypeDevice = 2, kMemoryTypeManaged = 3;

struct Nccl {
  void* lib = nullptr;
  void* cudart = nullptr;
  nccl_get_unique_id_fn get_unique_id = nullptr;
  nccl_init_rank_fn init_rank = nullptr;
  nccl_all_reduce_fn all_reduce = nullptr;
  nccl_broadcast_fn broadcast = nullptr;
  nccl_all_gather_fn all_gather = nullptr;
  nccl_comm_fn abort = nullptr, destroy = nullptr;
  nccl_group_fn group_start = nullptr, group_end = nullptr;
  nccl_send_recv_fn send = nullptr, recv = nullptr;
  nccl_async_error_fn async_error = nullptr;
  nccl_init_rank_config_fn init_rank_config = nullptr;  // NCCL >= 2.14: a join the watchdog can bound
  nccl_error_string_fn error_string = nullptr;
  cuda_stream_query_fn stream_query = nullptr;
  cuda_int_fn set_device = nullptr;
  cuda_int_ptr_fn get_device = nullptr;
  cuda_malloc_fn malloc = nullptr;
  cuda_free_fn free = nullptr;
  cuda_memcpy_fn memcpy = nullptr;
  cuda_pointer_attributes_fn pointer_attributes = nullptr;
  cuda_error_string_fn cuda_error_string = nullptr;
};

template <typename T>
T sym(void* lib, const char* name) {
  void* p = dlsym(lib, name);
  if (p == nullptr) fail_comm(Failure::transport, std::string("nccl: missing symbol ") + name);
  return reinterpret_cast<T>(p);
}

const Nccl& nccl() {
  static const Nccl n = [] {
    Nccl x;
    x.lib = dlopen("libnccl.so.2", RTLD_NOW | RTLD_LOCAL);
    if (x.lib == nullptr) fail_comm(Failure::transport, "nccl: libnccl.so.2 cannot be loaded on this host");
    for (const char* name : {"libcudart.so", "libcudart.so.13", "libcudart.so.12"})
      if ((x.cudart = dlopen(name, RTLD_NOW | RTLD_LOCAL)) != nullptr) break;
    if (x.cudart == nullptr) fail_comm(Failure::transport, "nccl: the CUDA runtime cannot be loaded on this host");
    x.get_unique_id = sym<nccl_get_unique_id_fn>(x.lib, "ncclGetUniqueId");
    x.init_rank = sym<nccl_init_rank_fn>(x.lib, "ncclCommInitRank");
    x.all_reduce = sym<nccl_all_reduce_fn>(x.lib, "ncclAllReduce");
    x.broadcast = sym<nccl_broadcast_fn>(x.lib, "ncclBroadcast");
    x.all_gather = sym<nccl_all_gather_fn>(x.lib, "ncclAllGather");
    x.abort = sym<nccl_comm_fn>(x.lib, "ncclCommAbort");
    x.destroy = sym<nccl_comm_fn>(x.lib, "ncclCommDestroy");
    x.group_start = sym<nccl_group_fn>(x.lib, "ncclGroupStart");
    x.group_end = sym<nccl_group_fn>(x.lib, "ncclGroupEnd");
    x.send = sym<nccl_send_recv_fn>(x.lib, "ncclSend");
    x.recv = sym<nccl_send_recv_fn>(x.lib, "ncclRecv");
    x.async_error = sym<nccl_async_error_fn>(x.lib, "ncclCommGetAsyncError");
    x.init_rank_config = reinterpret_cast<nccl_init_rank_config_fn>(dlsym(x.lib, "ncclCommInitRankConfig"));
    x.error_string = sym<nccl_error_string_fn>(x.lib, "ncclGetErrorString");
    x.stream_query = sym<cuda_stream_query_fn>(x.cudart, "cudaStreamQuery");
    x.set_device = sym<cuda_int_fn>(x.cudart, "cudaSetDevice");
    x.get_device = sym<cuda_int_ptr_fn>(x.cudart, "cudaGetDevice");
    x.malloc = sym<cuda_malloc_fn>(x.cudart, "cudaMalloc");
    x.free = sym<cuda_free_fn>(x.cudart, "cudaFree");
    x.memcpy = sym<cuda_memcpy_fn>(x.cudart, "cudaMemcpy");
    x.pointer_attributes = sym<cuda_pointer_attributes_fn>(x.cudart, "cudaPointerGetAttributes");
    x.cuda_error_string = sym<cuda_error_string_fn>(x.cudart, "cudaGetErrorString");
    return x;
  }();
  return n;
}

void cuda_check(int r, const char* what) {
  if (r != 0) fail_comm(Failure::transport, std::string("nccl: ") + what + ": " + nccl().cuda_error_string(r));
}

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(comm_t c, int rank, int world, std::chrono::milliseconds timeout, int device)
      : comm_(c), rank_(rank), world_(world), timeout_(timeout), device_(device) {}
  ~NcclCommunicator() override {
    if (comm_ != nullptr) (failed_.empty() ? nccl().destroy : nccl().abort)(comm_);
    if (scratch_ != nullptr) nccl().free(scratch_);
  }
  int rank() const override { return rank_; }
  int world() const override { return world_; }
  std::chrono::milliseconds timeout() const override { return timeout_; }
  bool device_buffers() const override { return true; }

  void sum(float* data, int64_t count) override {
    const size_t bytes = static_cast<size_t>(count) * sizeof(float);
    staged("all-reduce", data, bytes, data, bytes, 0, [&](void* in, void* out) {
      return nccl().all_reduce(in, out, static_cast<size_t>(count), kFloat32, kSum, comm_, nullptr);
    });
  }
  void broadcast(void* data, int64_t bytes, int root) override {
    check(root >= 0 && root < world_, gptoss_status_invalid_argument, "broadcast: root " + std::to_string(root) + " is not a rank");
    const size_t n = static_cast<size_t>(bytes);
    staged("broadcast", data, n, data, n, 0, [&](void* in, void* out) {
      return nccl().broadcast(in, out, n, kUint8, root, comm_, nullptr);
    });
  }
  void allgather(const void* in, void* out, int64_t bytes) override {
    const size_t n = static_cast<size_t>(bytes);
    // Staged in place: this rank's input sits at its slot of the output, as NCCL allows.
    staged("all-gather", in, n, out, n * world_, n * rank_, [&](void* i, void* o) {
      return nccl().all_gather(i, o, n, kUint8, comm_, nullptr);
    });
  }
  void all_to_all(const void* in, void* out, int64_t bytes) override {
    const size_t n = static_cast<size_t>(bytes), total = n * world_;
    // Staged input after the output: the exchange must not read what it is writing.
    staged("all-to-all", in, total, out, total, total, [&](void* i, void* o) {
      int r = nccl().group_start();
      for (int peer = 0; r == 0 && peer < world_; ++peer) {
        r = nccl().send(static_cast<uint8_t*>(i) + peer * n, n, kUint8, peer, comm_, nullptr);
        if (r == 0) r = nccl().recv(static_cast<uint8_t*>(o) + peer * n, n, kUint8, peer, comm_, nullptr);
      }
      const int end = nccl().group_end();
      return r != 0 ? r : end;
    });
  }
  void barrier() override {
    float one = 0.0f;  // a one-element all-reduce is NCCL's barrier
    sum(&one, 1);
  }
  void abort(const std::string& reason) override {
    std::lock_guard lock(mu_);
    if (!failed_.empty()) return;
    failed_ = reason.empty() ? "aborted" : reason;
    if (comm_ != nullptr) nccl().abort(comm_);
    comm_ = nullptr;
  }

 private:
  // Runs `launch(in, out)` on device pointers: the callers' own when they are device memory, else the
  // scratch buffer (input copied to `in_offset`, the output read back from offset 0).
  template <typename F>
  void staged(const char* what, const void* in, size_t in_bytes, void* out, size_t out_bytes, size_t in_offset, F&& launch) {
    {
      std::lock_guard lock(mu_);
      if (!failed_.empty()) fail_comm(Failure::aborted, std::string(what) + ": the communicator failed earlier: " + failed_);
    }
    cuda_check(nccl().set_device(device_), "cudaSetDevice");  // the current device is per thread
    if (on_device(in) && on_device(out)) return run(what, [&] { return launch(const_cast<void*>(in), out); });
    uint8_t* dev = scratch(std::max(out_bytes, in_offset + in_bytes));
    cuda_check(nccl().memcpy(dev + in_offset, in, in_bytes, kMemcpyHostToDevice), "staging a host buffer");
    run(what, [&] { return launch(dev + in_offset, dev); });
    cuda_check(nccl().memcpy(out, dev, out_bytes, kMemcpyDeviceToHost), "reading back a staged buffer");
  }

  static bool on_device(const void* p) {
    PointerAttributes a{};
    if (nccl().pointer_attributes(&a, p) != 0) return false;
    return a.type == kMemoryTypeDevice || a.type == kMemoryTypeManaged;
  }

  uint8_t* scratch(size_t bytes) {
    if (bytes > scratch_bytes_) {
      if (scratch_ != nullptr) nccl().free(scratch_);
      scratch_ = nullptr;
      cuda_check(nccl().malloc(&scratch_, bytes), "cudaMalloc of the staging buffer");
      scratch_bytes_ = bytes;
    }
    return static_cast<uint8_t*>(scratch_);
  }

  template <typename F>
  void run(const char* what, F&& launch) {
    const auto deadline = std::chrono::steady_clock::now() + timeout_;
    int r = launch();
    // A non-blocking communicator may still be enqueueing: NCCL says when through its async error.
    while (r == kInProgress && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::microseconds(50));
      if (nccl().async_error(comm_, &r) != 0) break;
    }
    if (r != 0) {
      const std::string msg = std::string("nccl ") + what + " on rank " + std::to_string(rank_) + ": " + nccl().error_string(r);
      abort(msg);
      fail_comm(r == kInProgress ? Failure::timeout : Failure::peer_lost, msg);
    }
    for (;;) {  // the watchdog: the collective finishes within the timeout or the communicator is aborted
      const int q = nccl().stream_query(nullptr);
      if (q == 0) return;
      const bool late = std::chrono::steady_clock::now() > deadline;
      if (q != kCudaErrorNotReady || late) {
        const std::string msg = std::string("nccl ") + what + " on rank " + std::to_string(rank_) + " of " + std::to_string(world_) +
                                (late ? " did not finish within the " + std::to_string(timeout_.count()) + " ms timeout"
                                      : std::string(" failed: ") + nccl().cuda_error_string(q));
        abort(msg);
        fail_comm(late ? Failure::timeout : Failure::transport, msg);
      }
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }

  comm_t comm_;
  int rank_, world_;
  std::chrono::milliseconds timeout_;
  int device_;
  void* scratch_ = nullptr;
  size_t scratch_bytes_ = 0;
  std::mutex mu_;
  std::string failed_;
};
}  // namespace

namespace {
// Joins as `rank`. With NCCL >= 2.14 the communicator is non-blocking, so the join is polled and a
// group whose ranks never all arrive is aborted after `timeout` (CommError{rendezvous}); older NCCL
// blocks in ncclCommInitRank without a bound.
comm_t init_rank(const UniqueId& id, int rank, int world, std::chrono::milliseconds timeout) {
  comm_t c = nullptr;
  const Nccl& n = nccl();
  if (n.init_rank_config == nullptr) {
    const int r = n.init_rank(&c, world, id, rank);
    if (r != 0) fail_comm(Failure::rendezvous, std::string("ncclCommInitRank: ") + n.error_string(r));
    return c;
  }
  CommConfig config;
  config.blocking = 0;
  int r = n.init_rank_config(&c, world, id, rank, &config);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (r == kInProgress && c != nullptr && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    if (n.async_error(c, &r) != 0) break;
  }
  if (r == 0) return c;
  if (c != nullptr) n.abort(c);
  if (r == kInProgress)
    fail_comm(Failure::rendezvous, "nccl: rank " + std::to_string(rank) + " of " + std::to_string(world) + " could not join within " +
                                       std::to_string(timeout.count()) + " ms (a peer never arrived)");
  fail_comm(Failure::rendezvous, std::string("ncclCommInitRankConfig: ") + n.error_string(r));
}
}  // namespace

std::string nccl_unique_id() {
  UniqueId id{};
  const int r = nccl().get_unique_id(&id);
  if (r != 0) fail_comm(Failure::transport, std::string("ncclGetUniqueId: ") + nccl().error_string(r));
  return std::string(id.bytes, sizeof(id.bytes));
}

std::unique_ptr<Communicator> connect_nccl(int rank, int world, const std::string& unique_id, std::chrono::milliseconds timeout,
                                           int device) {
  check(world >= 1 && rank >= 0 && rank < world, gptoss_status_invalid_argument,
        "communicator: rank " + std::to_string(rank) + " must be in [0, " + std::to_string(world) + ")");
  check(timeout.count() > 0, gptoss_status_invalid_argument, "communicator: the timeout must be positive");
  check(unique_id.size() == sizeof(UniqueId), gptoss_status_invalid_argument, "nccl: the unique id must be 128 bytes");
  if (device >= 0) cuda_check(nccl().set_device(device), "cudaSetDevice");
  else cuda_check(nccl().get_device(&device), "cudaGetDevice");
  UniqueId id{};
  std::memcpy(id.bytes, unique_id.data(), sizeof(id.bytes));
  return std::make_unique<NcclCommunicator>(init_rank(id, rank, world, timeout), rank, world, timeout, device);
}

std::unique_ptr<Communicator> connect_nccl_at(int rank, int world, const std::string& rendezvous, std::chrono::milliseconds timeout,
                                              int device) {
  check(world >= 1 && rank >= 0 && rank < world, gptoss_status_invalid_argument,
        "communicator: rank " + std::to_string(rank) + " must be in [0, " + std::to_string(world) + ")");
  check(timeout.count() > 0, gptoss_status_invalid_argument, "communicator: the timeout must be positive");
  nccl();  // loads NCCL or throws transport: a follower must not wait for an id its leader cannot make
  const std::string id = share_from_rank0(rendezvous, "nccl_unique_id", rank, timeout, nccl_unique_id);
  return connect_nccl(rank, world, id, timeout, device);
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
