// communicator.h — collectives for expert parallelism, one interface over two transports:
// Gloo (TCP, CPU ranks) and NCCL (GPU ranks, loaded with dlopen so the build never links it).
// The model calls these (AllReduce at its two reduction points); it never knows which transport runs
// underneath. Every collective is bounded by the communicator's timeout — the watchdog: a peer that
// stops answering (hung) makes the collective throw CommError{timeout} instead of hanging, a peer
// that died (connection reset) makes it throw CommError{peer_lost} at once; either way the
// communicator is unusable afterwards (the group is the unit that fails and is re-formed).
// Not here: who forms groups or publishes the rendezvous (the orchestrator), step plans (runtime/).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "../core/error.h"
#include "../model/gpt_oss.h"

namespace gptoss::comm {

// Why a collective failed, for callers that react differently (retry elsewhere, re-form the group).
enum class Failure : int {
  timeout = gptoss_comm_failure_timeout,        // waited past the watchdog timeout (a peer hangs)
  peer_lost = gptoss_comm_failure_peer_lost,    // a peer's connection broke (it died or aborted)
  aborted = gptoss_comm_failure_aborted,        // abort() was called, or an earlier collective failed
  rendezvous = gptoss_comm_failure_rendezvous,  // the ranks did not all join in time
  transport = gptoss_comm_failure_transport,    // the transport itself failed (no NCCL, CUDA error)
};

// The error every collective throws: status communicator_error plus the failure kind.
class CommError : public Error {
 public:
  CommError(Failure failure, const std::string& message) : Error(gptoss_status_communicator_error, message), failure_(failure) {}
  Failure failure() const noexcept { return failure_; }

 private:
  Failure failure_;
};

[[noreturn]] inline void fail_comm(Failure failure, const std::string& message) { throw CommError(failure, message); }

// Contract: every rank of the group calls the same collectives in the same order with the same sizes
// (the leader's step plan guarantees it for the model). Calls on one communicator never overlap.
// Buffers are host memory for Gloo; device or host memory for NCCL (host buffers are staged).
class Communicator : public AllReduce {
 public:
  ~Communicator() override = default;
  virtual int rank() const = 0;
  virtual int world() const = 0;
  // In place, element-wise sum over the ranks (the model's AllReduce).
  void sum(float* data, int64_t count) override = 0;
  // Copies `bytes` bytes from `root`'s buffer into every other rank's.
  virtual void broadcast(void* data, int64_t bytes, int root) = 0;
  // Every rank's `bytes` bytes, concatenated by rank into `out` (world × bytes).
  virtual void allgather(const void* in, void* out, int64_t bytes) = 0;
  // Block r of `in` (world blocks of `bytes`) goes to rank r; block r of `out` came from rank r (the
  // exchange an expert-parallel token dispatch makes). `in` and `out` must not overlap.
  virtual void all_to_all(const void* in, void* out, int64_t bytes) = 0;
  virtual void barrier() = 0;
  // Marks the communicator failed: later collectives throw CommError{aborted} at once.
  virtual void abort(const std::string& reason) = 0;
  virtual std::chrono::milliseconds timeout() const = 0;
  // Whether the collectives take device (GPU) buffers as they are: NCCL yes, Gloo no.
  virtual bool device_buffers() const { return false; }
};

// Gloo over TCP. `rendezvous` names the store the ranks meet in (comm/rendezvous.h: file:///dir,
// redis://host:port/?prefix=<group key prefix>, or a registered scheme). `interface_host` is the
// address this rank listens on (loopback for local ranks; the pod IP in a cluster).
// Blocks until every rank joined or `timeout` passed (CommError{rendezvous}).
std::unique_ptr<Communicator> connect_gloo(int rank, int world, const std::string& rendezvous, std::chrono::milliseconds timeout,
                                           const std::string& interface_host = "127.0.0.1");

// NCCL: `unique_id` is the 128-byte ncclUniqueId rank 0 generated (nccl_unique_id) and published (the
// orchestrator passes it through Redis). `device` is the CUDA device of this rank (-1: the current
// one). Throws CommError{transport} when libnccl.so.2 or the CUDA runtime cannot be loaded.
std::unique_ptr<Communicator> connect_nccl(int rank, int world, const std::string& unique_id, std::chrono::milliseconds timeout,
                                           int device = -1);
std::string nccl_unique_id();
// NCCL with the unique id shared through a rendezvous store (comm/rendezvous.h, the spec Gloo ranks
// take): rank 0 makes and publishes it, the others wait for it within `timeout`. A host without NCCL
// fails every rank at once with CommError{transport}, before anyone waits.
std::unique_ptr<Communicator> connect_nccl_at(int rank, int world, const std::string& rendezvous, std::chrono::milliseconds timeout,
                                              int device = -1);

// Whether each transport can be used on this host, and why not.
struct TransportProbe {
  bool gloo_compiled = false;
  bool gloo_usable = false;
  std::string gloo_error;
  bool nccl_loadable = false;
  int nccl_version = 0;
  std::string nccl_error;
};

// Gloo: linked at build time; usable when a TCP device can be opened on loopback.
void probe_gloo(TransportProbe& out);

// NCCL: dlopen("libnccl.so.2") and resolve ncclGetVersion; nothing else is touched.
void probe_nccl(TransportProbe& out);

}  // namespace gptoss::comm
