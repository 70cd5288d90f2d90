// common.cpp — the error class TypeScript registers, and turning a failed C call into it.
#include "common.h"

namespace gptoss::binding {

namespace {
Napi::FunctionReference* g_error_class = nullptr;
}  // namespace

Napi::Value make_error(Napi::Env env, const Failure& f) {
  if (g_error_class == nullptr) return Napi::Error::New(env, f.message).Value();
  Napi::Value comm = f.comm == gptoss_comm_failure_none ? env.Undefined() : Napi::String::New(env, gptoss_comm_failure_name(f.comm));
  return g_error_class->New(
      {Napi::Number::New(env, f.status), Napi::String::New(env, gptoss_status_name(f.status)), Napi::String::New(env, f.message), comm});
}

[[noreturn]] void throw_status(Napi::Env env, gptoss_status status) {
  Failure f;
  f.capture(status);
  throw Napi::Error(env, make_error(env, f).As<Napi::Object>());
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

}  // namespace gptoss::binding
