// communicator.h — collectives for expert parallelism, one interface over two transports:
// Gloo (TCP, CPU ranks) and NCCL (GPU ranks, loaded with dlopen so the build never links it).
// The model calls these (AllReduce at its two reduction points); it never knows which transport runs
// underneath. Every collective is bounded by the communicator's timeout — the watchdog: a peer that
// stops answering (killed, hung) makes the collective throw a communicator_error instead of hanging,
// and the communicator is unusable afterwards (the group is re-formed).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "../model/gpt_oss.h"

namespace gptoss::comm {

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
  virtual void barrier() = 0;
  // Marks the communicator failed: later collectives throw at once (a peer is known to be gone).
  virtual void abort(const std::string& reason) = 0;
  virtual std::chrono::milliseconds timeout() const = 0;
};

// Gloo over TCP. `rendezvous` says where the ranks meet:
//   file:///some/dir                        a shared directory (local ranks, tests, the CLI)
//   redis://host:port/?prefix=<key prefix>  the cluster's Redis (what the orchestrator publishes)
// Blocks until every rank joined or `timeout` passed; throws gptoss::Error(communicator_error).
std::unique_ptr<Communicator> connect_gloo(int rank, int world, const std::string& rendezvous, std::chrono::milliseconds timeout,
                                           const std::string& interface_host = "127.0.0.1");

// NCCL (GPU buffers): `unique_id` is the 128-byte ncclUniqueId rank 0 generated (nccl_unique_id) and
// published. Throws communicator_error when libnccl.so.2 cannot be loaded.
std::unique_ptr<Communicator> connect_nccl(int rank, int world, const std::string& unique_id, std::chrono::milliseconds timeout);
std::string nccl_unique_id();

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
