// communicator.h — collectives for expert parallelism, one interface over two transports:
// Gloo (TCP, CPU ranks) and NCCL (GPU ranks, loaded with dlopen so the build never links it).
// The model calls these; it never knows which transport runs underneath.
#pragma once

#include <string>

namespace gptoss::comm {

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
