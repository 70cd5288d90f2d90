// addon.cpp — the Node-API module's entry: registers each exported object's functions (model.cpp,
// engine.cpp, communicator.cpp; shared plumbing in common.h) and the process-wide ones here
// (setErrorClass, capabilities, probes). Node-API only: converts between JS values and the C ABI in
// include/gptoss.h. Argument validation with user-facing messages happens in TypeScript (src/); anything
// that slips through is reported as a status by the C ABI and thrown as the JS error class that
// TypeScript registers with setErrorClass().
#include <napi.h>

#include <algorithm>
#include <vector>

#include "common.h"
#include "gptoss.h"

namespace gptoss::binding {

namespace {

Napi::Value Capabilities(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  gptoss_capabilities caps{};
  const gptoss_status status = gptoss_query_capabilities(&caps);
  if (status != gptoss_status_success) throw_status(env, status);

  Napi::Object cpu = Napi::Object::New(env);
  cpu.Set("avx2", Napi::Boolean::New(env, caps.cpu_avx2));
  cpu.Set("fma", Napi::Boolean::New(env, caps.cpu_fma));
  cpu.Set("avx512f", Napi::Boolean::New(env, caps.cpu_avx512f));
  cpu.Set("avx512bw", Napi::Boolean::New(env, caps.cpu_avx512bw));
  cpu.Set("avx512bf16", Napi::Boolean::New(env, caps.cpu_avx512_bf16));
  cpu.Set("avx512vnni", Napi::Boolean::New(env, caps.cpu_avx512_vnni));
  cpu.Set("avxvnni", Napi::Boolean::New(env, caps.cpu_avx_vnni));
  cpu.Set("amxBf16", Napi::Boolean::New(env, caps.cpu_amx_bf16));
  cpu.Set("amxInt8", Napi::Boolean::New(env, caps.cpu_amx_int8));
  cpu.Set("logicalCores", Napi::Number::New(env, caps.cpu_logical_cores));

  Napi::Object cuda = Napi::Object::New(env);
  cuda.Set("compiled", Napi::Boolean::New(env, caps.cuda_compiled));
  cuda.Set("deviceCount", Napi::Number::New(env, caps.cuda_device_count));
  cuda.Set("architectures", Napi::String::New(env, caps.cuda_architectures));
  cuda.Set("error", Napi::String::New(env, caps.cuda_error));

  Napi::Object nccl = Napi::Object::New(env);
  nccl.Set("loadable", Napi::Boolean::New(env, caps.nccl_loadable));
  nccl.Set("version", Napi::Number::New(env, caps.nccl_version));

  Napi::Object gloo = Napi::Object::New(env);
  gloo.Set("compiled", Napi::Boolean::New(env, caps.gloo_compiled));
  gloo.Set("usable", Napi::Boolean::New(env, caps.gloo_usable));

  Napi::Object out = Napi::Object::New(env);
  out.Set("cpu", cpu);
  out.Set("cuda", cuda);
  out.Set("nccl", nccl);
  out.Set("gloo", gloo);
  return out;
}

// probes(bytes, passes) -> {readGBps: number[], readOnCpu: number[] (one per pass), fmaGflops}; synchronous
// (benchmarks only, ~1 s).
Napi::Value Probes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const size_t passes = static_cast<size_t>(std::max(info[1].As<Napi::Number>().Int32Value(), 1));
  std::vector<double> bw(passes), on_cpu(passes);
  double fl = 0;
  gptoss_status st = gptoss_probe_read_bandwidth(static_cast<uint64_t>(info[0].As<Napi::Number>().Int64Value()),
                                                 static_cast<int32_t>(passes), bw.data(), on_cpu.data());
  if (st == gptoss_status_success) st = gptoss_probe_fma_rate(&fl);
  if (st != gptoss_status_success) throw_status(env, st);
  Napi::Array read = Napi::Array::New(env, passes), share = Napi::Array::New(env, passes);
  for (size_t i = 0; i < passes; ++i) {
    read.Set(static_cast<uint32_t>(i), bw[i]);
    share.Set(static_cast<uint32_t>(i), on_cpu[i]);
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("readGBps", read);
  out.Set("readOnCpu", share);
  out.Set("fmaGflops", fl);
  return out;
}

}  // namespace

}  // namespace gptoss::binding

// NODE_API_MODULE needs an unqualified name.
static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("probes", Napi::Function::New(env, gptoss::binding::Probes));
  exports.Set("setErrorClass", Napi::Function::New(env, gptoss::binding::SetErrorClass));
  exports.Set("capabilities", Napi::Function::New(env, gptoss::binding::Capabilities));
  gptoss::binding::init_model(env, exports);
  gptoss::binding::init_engine(env, exports);
  gptoss::binding::init_communicator(env, exports);
  return exports;
}

NODE_API_MODULE(expertmesh_kernels, Init)
