// capabilities.cpp — gptoss_query_capabilities: one struct that tells the host what this build and this
// machine can run (SIMD paths, CUDA devices, NCCL, Gloo). Cheap; the binding calls it on demand.
#include <string>

#include "../comm/communicator.h"
#include "../cpu/cpu_features.h"
#include "../cuda/cuda_device.h"
#include "gptoss.h"

extern "C" gptoss_status gptoss_query_capabilities(gptoss_capabilities* out) {
  if (out == nullptr) return gptoss_status_invalid_argument;
  const auto cpu = gptoss::cpu::detect_cpu_features();
  out->cpu_avx2 = cpu.avx2;
  out->cpu_fma = cpu.fma;
  out->cpu_avx512f = cpu.avx512f;
  out->cpu_avx512bw = cpu.avx512bw;
  out->cpu_avx512_bf16 = cpu.avx512_bf16;
  out->cpu_avx512_vnni = cpu.avx512_vnni;
  out->cpu_avx_vnni = cpu.avx_vnni;
  out->cpu_amx_bf16 = cpu.amx_bf16;
  out->cpu_amx_int8 = cpu.amx_int8;
  out->cpu_logical_cores = cpu.logical_cores;

  // The strings live as long as the process: probes are cached on first use.
  static const gptoss::cuda::DeviceProbe cuda = gptoss::cuda::probe_devices();
  out->cuda_compiled = cuda.compiled;
  out->cuda_device_count = cuda.device_count;
  out->cuda_architectures = cuda.architectures.c_str();
  out->cuda_error = cuda.error.c_str();

  static const gptoss::comm::TransportProbe comm = [] {
    gptoss::comm::TransportProbe p;
    gptoss::comm::probe_gloo(p);
    gptoss::comm::probe_nccl(p);
    return p;
  }();
  out->nccl_loadable = comm.nccl_loadable;
  out->nccl_version = comm.nccl_version;
  out->gloo_compiled = comm.gloo_compiled;
  out->gloo_usable = comm.gloo_usable;
  return gptoss_status_success;
}

extern "C" const char* gptoss_status_name(gptoss_status status) {
  switch (status) {
    case gptoss_status_success: return "success";
    case gptoss_status_invalid_argument: return "invalid_argument";
    case gptoss_status_unsupported_argument: return "unsupported_argument";
    case gptoss_status_invalid_state: return "invalid_state";
    case gptoss_status_io_error: return "io_error";
    case gptoss_status_insufficient_memory: return "insufficient_memory";
    case gptoss_status_insufficient_resources: return "insufficient_resources";
    case gptoss_status_unsupported_system: return "unsupported_system";
    case gptoss_status_context_overflow: return "context_overflow";
    case gptoss_status_invalid_checkpoint: return "invalid_checkpoint";
    case gptoss_status_communicator_error: return "communicator_error";
    case gptoss_status_numeric_error: return "numeric_error";
  }
  return "unknown";
}

extern "C" const char* gptoss_comm_failure_name(gptoss_comm_failure failure) {
  switch (failure) {
    case gptoss_comm_failure_none: return "none";
    case gptoss_comm_failure_timeout: return "timeout";
    case gptoss_comm_failure_peer_lost: return "peer_lost";
    case gptoss_comm_failure_aborted: return "aborted";
    case gptoss_comm_failure_rendezvous: return "rendezvous";
    case gptoss_comm_failure_transport: return "transport";
  }
  return "unknown";
}
