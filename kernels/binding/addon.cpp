// addon.cpp — the Node-API layer, and only that: converts between JS values and the C ABI in
// include/gptoss.h. Argument validation with user-facing messages happens in TypeScript (src/);
// anything that slips through is reported as a status by the C ABI and thrown as the JS error
// class that TypeScript registers with setErrorClass().
#include <napi.h>

#include "gptoss.h"

namespace {

Napi::FunctionReference* g_error_class = nullptr;

// Throws the TS-owned NativeError(status, statusName, message) when registered, else a plain Error.
[[maybe_unused]] void throw_status(Napi::Env env, gptoss_status status, const std::string& message) {
  if (g_error_class != nullptr) {
    Napi::Object err = g_error_class->New({Napi::Number::New(env, status),
                                           Napi::String::New(env, gptoss_status_name(status)),
                                           Napi::String::New(env, message)});
    throw Napi::Error(env, err);
  }
  throw Napi::Error::New(env, message);
}

Napi::Value SetErrorClass(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsFunction()) {
    throw Napi::TypeError::New(env, "setErrorClass(ctor) expects a constructor");
  }
  delete g_error_class;
  g_error_class = new Napi::FunctionReference(Napi::Persistent(info[0].As<Napi::Function>()));
  return env.Undefined();
}

Napi::Value Capabilities(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  gptoss_capabilities caps{};
  const gptoss_status status = gptoss_query_capabilities(&caps);
  if (status != gptoss_status_success) throw_status(env, status, "capabilities query failed");

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

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("setErrorClass", Napi::Function::New(env, SetErrorClass));
  exports.Set("capabilities", Napi::Function::New(env, Capabilities));
  return exports;
}

}  // namespace

NODE_API_MODULE(expertmesh_kernels, Init)
