// common.h — what the binding's files share: the failure of a C call as JS sees it (the TS-owned
// NativeError), a worker that runs a blocking C call off the event loop, and the handle types. Node-API
// plumbing only: no argument validation (TypeScript does that) and no engine logic (the C ABI does).
#pragma once

#include <napi.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "gptoss.h"

namespace gptoss::binding {

// Shared ownership: the JS handle and every engine created from it keep the weights alive.
using ModelPtr = std::shared_ptr<gptoss_model>;
using CommPtr = std::shared_ptr<::gptoss_comm>;

// What a failed C call left behind, captured on the thread that made it (the messages are thread-local).
struct Failure {
  gptoss_status status = gptoss_status_success;
  std::string message;
  gptoss_comm_failure comm = gptoss_comm_failure_none;
  bool failed() const { return status != gptoss_status_success; }
  gptoss_status capture(gptoss_status s) {
    status = s;
    if (s != gptoss_status_success) {
      message = gptoss_last_error();
      comm = gptoss_last_comm_failure();
    }
    return s;
  }
};

// The TS-owned NativeError(status, statusName, message, commFailure?) when registered, else a plain Error.
Napi::Value make_error(Napi::Env env, const Failure& f);
// Throws the error of the C call that just returned `status` on this thread.
[[noreturn]] void throw_status(Napi::Env env, gptoss_status status);
// setErrorClass(ctor): registers the TS-owned NativeError.
Napi::Value SetErrorClass(const Napi::CallbackInfo& info);

// Runs a blocking C call off the event loop; resolves with `done()`'s value or rejects with the status.
class CallWorker : public Napi::AsyncWorker {
 public:
  CallWorker(Napi::Env env, std::function<gptoss_status()> call, std::function<Napi::Value(Napi::Env)> done,
             std::vector<Napi::Object> keep = {})
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), call_(std::move(call)), done_(std::move(done)) {
    for (auto& k : keep) keep_.push_back(Napi::Persistent(k));  // what the call uses must outlive it
  }
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override { failure_.capture(call_()); }
  void OnOK() override {
    Napi::Env env = Env();
    if (failure_.failed()) deferred_.Reject(make_error(env, failure_));
    else deferred_.Resolve(done_(env));
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::function<gptoss_status()> call_;
  std::function<Napi::Value(Napi::Env)> done_;
  std::vector<Napi::ObjectReference> keep_;
  Failure failure_;
};

// Each exported object's file registers its functions.
void init_model(Napi::Env env, Napi::Object exports);
void init_engine(Napi::Env env, Napi::Object exports);
void init_communicator(Napi::Env env, Napi::Object exports);

}  // namespace gptoss::binding
