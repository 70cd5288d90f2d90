// gloo.cpp — the CPU transport (Gloo over TCP). The group collectives arrive with the expert-parallel
// issue; today this file proves the library links and a loopback TCP device opens.
#include <exception>

#include <gloo/transport/tcp/device.h>

#include "communicator.h"

namespace gptoss::comm {

void probe_gloo(TransportProbe& out) {
  out.gloo_compiled = true;
  try {
    gloo::transport::tcp::attr attr;
    attr.hostname = "127.0.0.1";
    auto device = gloo::transport::tcp::CreateDevice(attr);
    out.gloo_usable = device != nullptr;
  } catch (const std::exception& e) {
    out.gloo_usable = false;
    out.gloo_error = e.what();
  }
}

}  // namespace gptoss::comm
