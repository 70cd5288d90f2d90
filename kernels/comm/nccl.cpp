// nccl.cpp — the GPU transport. NCCL is never linked: GPU images bring libnccl.so.2 and we resolve the
// few symbols we need at run time, so the same binary runs (CPU-only) where NCCL is absent.
#include <dlfcn.h>

#include "communicator.h"

namespace gptoss::comm {

namespace {
using nccl_get_version_fn = int (*)(int*);  // ncclResult_t ncclGetVersion(int*)
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
  // Keep the handle: the communicator resolves the collective symbols from it later.
}

}  // namespace gptoss::comm
