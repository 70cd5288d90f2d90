// rendezvous.h — where the ranks of one group meet to exchange their TCP addresses before the Gloo
// full mesh is connected: a key-value store, named by a spec string the orchestrator publishes.
//   file:///dir                          a shared directory (local ranks: tests, the CLI)
//   redis://host:port/?prefix=<prefix>   the cluster's Redis; the prefix keys the group
//                                        (the orchestrator uses <cluster prefix>rdzv:<group id>:)
// Schemes are pluggable: a host that wants another store (etcd, a store the leader serves over TCP)
// registers a factory for its scheme; connect_gloo never changes. Keys are namespaced by the store, so
// two groups never share one unless their specs are equal.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

namespace gloo::rendezvous {
class Store;
}

namespace gptoss::comm {

// Opens the store for `spec` (the part after "scheme://" is the factory's to parse).
using StoreFactory = std::function<std::unique_ptr<gloo::rendezvous::Store>(const std::string& spec)>;

// Adds or replaces the factory for `scheme` (e.g. "etcd"). Thread-safe.
void register_rendezvous(const std::string& scheme, StoreFactory factory);

// Opens the store a spec names; throws Error(invalid_argument) for an unknown scheme or a bad spec.
std::unique_ptr<gloo::rendezvous::Store> open_rendezvous(const std::string& spec);

// What rank 0 alone can make (NCCL's unique id), handed to the other ranks through the store a spec
// names: rank 0 calls `make` and sets the bytes under `key`; every other rank waits for the key, at most
// `timeout` (then CommError{rendezvous}), and reads it. Every rank returns the same bytes.
std::string share_from_rank0(const std::string& spec, const std::string& key, int rank, std::chrono::milliseconds timeout,
                             const std::function<std::string()>& make);

}  // namespace gptoss::comm
