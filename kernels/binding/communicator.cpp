// communicator.cpp — the communicator object: connect (Gloo or NCCL) and its collectives, each off the loop.
#include <algorithm>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common.h"

namespace gptoss::binding {

namespace {

// connectCommunicator({transport, rank, world, timeoutMs, rendezvous?, ncclUniqueId?, device?}) ->
// Promise<{handle}>: blocks (off the loop) until every rank joined. TS validated the options.
Napi::Value ConnectCommunicator(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = info[0].As<Napi::Object>();
  const bool nccl = o.Get("transport").As<Napi::String>().Utf8Value() == "nccl";
  const int32_t rank = o.Get("rank").As<Napi::Number>().Int32Value(), world = o.Get("world").As<Napi::Number>().Int32Value();
  const int32_t timeout = o.Get("timeoutMs").As<Napi::Number>().Int32Value();
  // NCCL takes either the unique id itself or the rendezvous to share it through.
  const std::string rdzv = o.Get("rendezvous").IsString() ? o.Get("rendezvous").As<Napi::String>().Utf8Value() : "";
  std::vector<uint8_t> id;
  int32_t device = -1;
  if (nccl) {
    if (o.Get("ncclUniqueId").IsTypedArray()) {
      auto a = o.Get("ncclUniqueId").As<Napi::Uint8Array>();
      id.assign(a.Data(), a.Data() + a.ElementLength());
    }
    if (o.Get("device").IsNumber()) device = o.Get("device").As<Napi::Number>().Int32Value();
  }
  auto comm = std::make_shared<CommPtr>();
  auto* w = new CallWorker(
      env,
      [=] {
        gptoss_comm_t c = nullptr;
        const gptoss_status st = !nccl         ? gptoss_comm_connect(rank, world, rdzv.c_str(), timeout, &c)
                                 : id.empty() ? gptoss_comm_connect_nccl_at(rank, world, rdzv.c_str(), device, timeout, &c)
                                              : gptoss_comm_connect_nccl(rank, world, id.data(), id.size(), device, timeout, &c);
        if (st == gptoss_status_success) comm->reset(c, gptoss_comm_release);
        return st;
      },
      [=](Napi::Env e) {
        Napi::Object out = Napi::Object::New(e);
        out.Set("handle", Napi::External<CommPtr>::New(e, new CommPtr(*comm), [](Napi::Env, CommPtr* p) { delete p; }));
        return out;
      });
  auto promise = w->Promise();
  w->Queue();
  return promise;
}

// ncclUniqueId() -> Promise<Uint8Array(128)> (rank 0 of an NCCL group publishes it to the others).
Napi::Value NcclUniqueId(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto id = std::make_shared<std::vector<uint8_t>>(128);
  auto* w = new CallWorker(
      env, [=] { return gptoss_comm_nccl_unique_id(id->data(), id->size()); },
      [=](Napi::Env e) {
        auto out = Napi::Uint8Array::New(e, id->size());
        std::copy(id->begin(), id->end(), out.Data());
        return out;
      });
  auto promise = w->Promise();
  w->Queue();
  return promise;
}

CommPtr comm_of(const Napi::Object& ref) { return *ref.Get("handle").As<Napi::External<CommPtr>>().Data(); }

uint8_t* bytes_of(const Napi::TypedArray& a) {
  return static_cast<uint8_t*>(a.ArrayBuffer().Data()) + a.ByteOffset();
}

// Queues a collective on `comm` off the loop; the arrays it reads or writes are kept alive until it ends.
Napi::Value queue_collective(Napi::Env env, const Napi::Object& ref, std::function<gptoss_status(gptoss_comm_t)> call,
                             std::vector<Napi::Object> keep) {
  CommPtr comm = comm_of(ref);
  keep.push_back(ref);
  auto* w = new CallWorker(env, [=] { return call(comm.get()); }, [](Napi::Env e) { return e.Undefined(); }, std::move(keep));
  auto promise = w->Promise();
  w->Queue();
  return promise;
}

// commAllReduceSum(comm, Float32Array) -> Promise<void>, in place.
Napi::Value CommAllReduceSum(const Napi::CallbackInfo& info) {
  auto data = info[1].As<Napi::Float32Array>();
  float* p = data.Data();
  const int64_t n = static_cast<int64_t>(data.ElementLength());
  return queue_collective(info.Env(), info[0].As<Napi::Object>(), [=](gptoss_comm_t c) { return gptoss_comm_all_reduce_sum(c, p, n); },
                          {data});
}

// commBroadcast(comm, TypedArray, root) -> Promise<void>, in place (its bytes).
Napi::Value CommBroadcast(const Napi::CallbackInfo& info) {
  auto data = info[1].As<Napi::TypedArray>();
  uint8_t* p = bytes_of(data);
  const int64_t n = static_cast<int64_t>(data.ByteLength());
  const int32_t root = info[2].As<Napi::Number>().Int32Value();
  return queue_collective(info.Env(), info[0].As<Napi::Object>(), [=](gptoss_comm_t c) { return gptoss_comm_broadcast(c, p, n, root); },
                          {data});
}

// commAllGather(comm, input TypedArray, output TypedArray of world × its bytes) -> Promise<void>.
Napi::Value CommAllGather(const Napi::CallbackInfo& info) {
  auto in = info[1].As<Napi::TypedArray>();
  auto out = info[2].As<Napi::TypedArray>();
  const uint8_t* i = bytes_of(in);
  uint8_t* o = bytes_of(out);
  const int64_t n = static_cast<int64_t>(in.ByteLength());
  return queue_collective(info.Env(), info[0].As<Napi::Object>(), [=](gptoss_comm_t c) { return gptoss_comm_all_gather(c, i, o, n); },
                          {in, out});
}

// commBarrier(comm) -> Promise<void>.
Napi::Value CommBarrier(const Napi::CallbackInfo& info) {
  return queue_collective(info.Env(), info[0].As<Napi::Object>(), [](gptoss_comm_t c) { return gptoss_comm_barrier(c); }, {});
}

// commAbort(comm, reason): synchronous (only marks the communicator failed).
Napi::Value CommAbort(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const gptoss_status st = gptoss_comm_abort(comm_of(info[0].As<Napi::Object>()).get(), info[1].As<Napi::String>().Utf8Value().c_str());
  if (st != gptoss_status_success) throw_status(env, st);
  return env.Undefined();
}

}  // namespace

void init_communicator(Napi::Env env, Napi::Object exports) {
  exports.Set("connectCommunicator", Napi::Function::New(env, ConnectCommunicator));
  exports.Set("ncclUniqueId", Napi::Function::New(env, NcclUniqueId));
  exports.Set("commAllReduceSum", Napi::Function::New(env, CommAllReduceSum));
  exports.Set("commBroadcast", Napi::Function::New(env, CommBroadcast));
  exports.Set("commAllGather", Napi::Function::New(env, CommAllGather));
  exports.Set("commBarrier", Napi::Function::New(env, CommBarrier));
  exports.Set("commAbort", Napi::Function::New(env, CommAbort));
}

}  // namespace gptoss::binding
