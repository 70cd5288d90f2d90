/*
 * gptoss.h — the C ABI of the ExpertMesh native engine.
 *
 * Style of gpt-oss's functions.h: every call returns a gptoss_status, objects are opaque handles, and
 * nothing here knows about JavaScript, tokenization or HTTP. The Node binding (binding/) is the only
 * caller today; the ABI is plain C so a future Python or Rust host can use the same library.
 */
#ifndef GPTOSS_H
#define GPTOSS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum gptoss_status {
  gptoss_status_success = 0,
  gptoss_status_invalid_argument = 1,
  gptoss_status_unsupported_argument = 2,
  gptoss_status_invalid_state = 3,
  gptoss_status_io_error = 4,
  gptoss_status_insufficient_memory = 5,
  gptoss_status_insufficient_resources = 6,
  gptoss_status_unsupported_system = 7,
  gptoss_status_context_overflow = 8,
  gptoss_status_invalid_checkpoint = 9,
  gptoss_status_communicator_error = 10,
} gptoss_status;

/* What the host can do. Filled by gptoss_query_capabilities; strings are static. */
typedef struct gptoss_capabilities {
  /* CPU ISA extensions usable by this process (CPUID and OS-enabled state both checked). */
  int cpu_avx2;
  int cpu_fma;
  int cpu_avx512f;
  int cpu_avx512bw;
  int cpu_avx512_bf16;
  int cpu_avx512_vnni;
  int cpu_avx_vnni;
  int cpu_amx_bf16;
  int cpu_amx_int8;
  int cpu_logical_cores;
  /* CUDA: compiled into this build, and devices the driver reports (0 without a driver). */
  int cuda_compiled;
  int cuda_device_count;
  const char* cuda_architectures; /* e.g. "80;90", empty when not compiled */
  const char* cuda_error;         /* why cuda_device_count is 0, or empty */
  /* NCCL: found by dlopen at run time (never linked). */
  int nccl_loadable;
  int nccl_version; /* ncclGetVersion code, 0 when not loadable */
  /* Gloo: linked, and a TCP device on loopback could be created. */
  int gloo_compiled;
  int gloo_usable;
} gptoss_capabilities;

gptoss_status gptoss_query_capabilities(gptoss_capabilities* out);

const char* gptoss_status_name(gptoss_status status);

#ifdef __cplusplus
}
#endif

#endif /* GPTOSS_H */
