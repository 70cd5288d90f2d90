// addon.cpp — the Node-API layer, and only that: converts between JS values and the C ABI in
// include/gptoss.h. Argument validation with user-facing messages happens in TypeScript (src/);
// anything that slips through is reported as a status by the C ABI and thrown as the JS error
// class that TypeScript registers with setErrorClass().
#include <napi.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "gptoss.h"

namespace {

Napi::FunctionReference* g_error_class = nullptr;

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

// ---- model ------------------------------------------------------------------------------------
// Shared ownership: the JS handle and every engine created from it keep the weights alive.
using ModelPtr = std::shared_ptr<gptoss_model>;

Napi::Object ConfigToJs(Napi::Env env, const gptoss_model_config& c) {
  Napi::Object cfg = Napi::Object::New(env);
  cfg.Set("numLayers", c.num_layers);
  cfg.Set("hidden", c.hidden);
  cfg.Set("intermediate", c.intermediate);
  cfg.Set("numExperts", c.num_experts);
  cfg.Set("expertsPerToken", c.experts_per_token);
  cfg.Set("numQHeads", c.num_q_heads);
  cfg.Set("numKvHeads", c.num_kv_heads);
  cfg.Set("headDim", c.head_dim);
  cfg.Set("vocab", c.vocab);
  cfg.Set("slidingWindow", c.sliding_window);
  cfg.Set("maxPositions", c.max_positions);
  cfg.Set("eosTokenId", c.eos_token_id);
  cfg.Set("originalFormat", Napi::Boolean::New(env, c.original_format != 0));
  return cfg;
}

// readModelConfig(dir): config.json validated, no tensors opened (a small file: read synchronously).
Napi::Value ReadModelConfig(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "readModelConfig(dir) expects a string");
  gptoss_model_config c{};
  const gptoss_status st = gptoss_model_read_config(info[0].As<Napi::String>().Utf8Value().c_str(), &c);
  if (st != gptoss_status_success) throw_status(env, st);
  return ConfigToJs(env, c);
}

Napi::Value ModelToJs(Napi::Env env, const ModelPtr& model) {
  gptoss_model_config c{};
  gptoss_model_get_config(model.get(), &c);
  gptoss_shard_info s{};
  std::vector<int32_t> experts(c.num_experts);
  gptoss_model_get_shard(model.get(), &s, experts.data(), experts.size());
  experts.resize(s.num_experts);
  const Napi::Object cfg = ConfigToJs(env, c);

  Napi::Object shard = Napi::Object::New(env);
  shard.Set("rank", s.rank);
  shard.Set("world", s.world);
  shard.Set("qHeadBegin", s.q_head_begin);
  shard.Set("qHeadEnd", s.q_head_end);
  shard.Set("kvHeadBegin", s.kv_head_begin);
  shard.Set("kvHeadEnd", s.kv_head_end);
  shard.Set("expertBytes", Napi::Number::New(env, static_cast<double>(s.expert_bytes)));
  Napi::Array ex = Napi::Array::New(env, experts.size());
  for (size_t i = 0; i < experts.size(); ++i) ex.Set(i, experts[i]);
  shard.Set("experts", ex);

  Napi::Object out = Napi::Object::New(env);
  out.Set("config", cfg);
  out.Set("shard", shard);
  out.Set("handle", Napi::External<ModelPtr>::New(env, new ModelPtr(model), [](Napi::Env, ModelPtr* p) { delete p; }));
  return out;
}

class LoadWorker : public Napi::AsyncWorker {
 public:
  LoadWorker(Napi::Env env, std::string dir, int rank, int world, std::vector<int32_t> experts, bool explicit_experts)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), dir_(std::move(dir)), rank_(rank), world_(world),
        experts_(std::move(experts)), explicit_(explicit_experts) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    gptoss_model_t m = nullptr;
    if (failure_.capture(gptoss_model_load(dir_.c_str(), rank_, world_, explicit_ ? experts_.data() : nullptr, experts_.size(), &m)) ==
        gptoss_status_success)
      model_.reset(m, gptoss_model_release);
  }
  void OnOK() override {
    Napi::Env env = Env();
    if (failure_.failed()) deferred_.Reject(make_error(env, failure_));
    else deferred_.Resolve(ModelToJs(env, model_));
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::string dir_;
  int rank_, world_;
  std::vector<int32_t> experts_;
  bool explicit_;
  Failure failure_;
  ModelPtr model_;
};

// loadModel(dir, rank, world, experts | null) -> Promise<{config, shard, handle}>
Napi::Value LoadModel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<int32_t> experts;
  const bool explicit_experts = info[3].IsTypedArray();
  if (explicit_experts) {
    auto arr = info[3].As<Napi::Int32Array>();
    experts.assign(arr.Data(), arr.Data() + arr.ElementLength());
  }
  auto* w = new LoadWorker(env, info[0].As<Napi::String>().Utf8Value(), info[1].As<Napi::Number>().Int32Value(),
                           info[2].As<Napi::Number>().Int32Value(), std::move(experts), explicit_experts);
  auto promise = w->Promise();
  w->Queue();
  return promise;
}

// ---- engine -----------------------------------------------------------------------------------
struct EngineBox {
  ModelPtr model;  // declared first: destroyed after the engine
  std::shared_ptr<::gptoss_comm> comm;  // likewise (null: a single rank)
  std::unique_ptr<gptoss_engine, void (*)(gptoss_engine_t)> engine{nullptr, gptoss_engine_release};
};

// ---- communicator -------------------------------------------------------------------------------
using CommPtr = std::shared_ptr<::gptoss_comm>;

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

// connectCommunicator({transport, rank, world, timeoutMs, rendezvous?, ncclUniqueId?, device?}) ->
// Promise<{handle}>: blocks (off the loop) until every rank joined. TS validated the options.
Napi::Value ConnectCommunicator(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = info[0].As<Napi::Object>();
  const bool nccl = o.Get("transport").As<Napi::String>().Utf8Value() == "nccl";
  const int32_t rank = o.Get("rank").As<Napi::Number>().Int32Value(), world = o.Get("world").As<Napi::Number>().Int32Value();
  const int32_t timeout = o.Get("timeoutMs").As<Napi::Number>().Int32Value();
  const std::string rdzv = nccl ? "" : o.Get("rendezvous").As<Napi::String>().Utf8Value();
  std::vector<uint8_t> id;
  int32_t device = -1;
  if (nccl) {
    auto a = o.Get("ncclUniqueId").As<Napi::Uint8Array>();
    id.assign(a.Data(), a.Data() + a.ElementLength());
    if (o.Get("device").IsNumber()) device = o.Get("device").As<Napi::Number>().Int32Value();
  }
  auto comm = std::make_shared<CommPtr>();
  auto* w = new CallWorker(
      env,
      [=] {
        gptoss_comm_t c = nullptr;
        const gptoss_status st = nccl ? gptoss_comm_connect_nccl(rank, world, id.data(), id.size(), device, timeout, &c)
                                      : gptoss_comm_connect(rank, world, rdzv.c_str(), timeout, &c);
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

// createEngine(modelHandle, blockSize, numFullBlocks, numSlidingBlocks, commObject?, backend?) -> {handle, backend}
Napi::Value CreateEngine(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ModelPtr model = *info[0].As<Napi::External<ModelPtr>>().Data();
  auto box = std::make_unique<EngineBox>();
  box->model = model;
  if (info.Length() > 4 && info[4].IsObject()) {
    box->comm = *info[4].As<Napi::Object>().Get("handle").As<Napi::External<CommPtr>>().Data();
  }
  const std::string backend = info.Length() > 5 && info[5].IsString() ? info[5].As<Napi::String>().Utf8Value() : "cpu";
  const gptoss_engine_options options{info[1].As<Napi::Number>().Int32Value(), info[2].As<Napi::Number>().Int32Value(),
                                      info[3].As<Napi::Number>().Int32Value(), backend.c_str(), box->comm.get()};
  gptoss_engine_t e = nullptr;
  const gptoss_status st = gptoss_engine_create_with_options(model.get(), &options, &e);
  if (st != gptoss_status_success) throw_status(env, st);
  box->engine.reset(e);
  Napi::Object out = Napi::Object::New(env);
  out.Set("backend", Napi::String::New(env, gptoss_engine_backend(e)));
  out.Set("handle", Napi::External<EngineBox>::New(env, box.release(), [](Napi::Env, EngineBox* b) { delete b; }));
  return out;
}

// setEnginePrecision(engine, precision: 0 exact | 1 serving)
Napi::Value SetEnginePrecision(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EngineBox* box = info[0].As<Napi::Object>().Get("handle").As<Napi::External<EngineBox>>().Data();
  const gptoss_status st =
      gptoss_engine_set_precision(box->engine.get(), static_cast<gptoss_precision>(info[1].As<Napi::Number>().Int32Value()));
  if (st != gptoss_status_success) throw_status(env, st);
  return env.Undefined();
}

// Packed step arguments (see src/engine.ts, which builds them):
//   seqs      Int32Array, kSeqInts per sequence: numTokens, posBegin, allLogits, returnLogits,
//             fullOffset, fullCount, slidingOffset, slidingCount, samplingIndex (-1 = none)
//   blocks    Int32Array, block ids addressed by the offsets above
//   sampF     Float64Array, kSampFloats per sampling: temperature, topP, topK, minP, presence, frequency,
//             repetition, seedHigh32, seedLow32, counter, numTopLogprobs
//   sampI     Int32Array, kSampInts per sampling: biasOffset, biasCount, promptOffset, promptCount,
//             outputOffset, outputCount (offsets into aux; bias values at the same offsets in auxF)
constexpr size_t kSeqInts = 9, kSampFloats = 11, kSampInts = 6;

template <typename T, typename A>
std::vector<T> copy_of(const A& a) {
  return std::vector<T>(a.Data(), a.Data() + a.ElementLength());
}

class StepWorker : public Napi::AsyncWorker {
 public:
  StepWorker(Napi::Env env, Napi::Object engine_ref, EngineBox* box, const Napi::CallbackInfo& info)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), box_(box),
        tokens_(copy_of<int32_t>(info[1].As<Napi::Int32Array>())), seqs_(copy_of<int32_t>(info[2].As<Napi::Int32Array>())),
        blocks_(copy_of<int32_t>(info[3].As<Napi::Int32Array>())), samp_f_(copy_of<double>(info[4].As<Napi::Float64Array>())),
        samp_i_(copy_of<int32_t>(info[5].As<Napi::Int32Array>())), aux_(copy_of<int32_t>(info[6].As<Napi::Int32Array>())),
        aux_f_(copy_of<float>(info[7].As<Napi::Float32Array>())), logit_floats_(info[8].As<Napi::Number>().Int64Value()) {
    keep_.Reset(engine_ref, 1);  // the engine must outlive the step
  }
  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    const size_t n = seqs_.size() / kSeqInts;
    std::vector<gptoss_sampling> sampling(samp_f_.size() / kSampFloats);
    for (size_t k = 0; k < sampling.size(); ++k) {
      const double* f = &samp_f_[k * kSampFloats];
      const int32_t* i = &samp_i_[k * kSampInts];
      sampling[k] = {static_cast<float>(f[0]), static_cast<float>(f[1]), static_cast<int32_t>(f[2]), static_cast<float>(f[3]),
                     static_cast<float>(f[4]), static_cast<float>(f[5]), static_cast<float>(f[6]),
                     (static_cast<uint64_t>(f[7]) << 32) | static_cast<uint64_t>(f[8]), static_cast<uint64_t>(f[9]),
                     static_cast<int32_t>(f[10]), aux_.data() + i[0], aux_f_.data() + i[0], i[1], aux_.data() + i[2], i[3],
                     aux_.data() + i[4], i[5]};
    }
    std::vector<gptoss_seq_chunk> chunks(n);
    for (size_t k = 0; k < n; ++k) {
      const int32_t* s = &seqs_[k * kSeqInts];
      chunks[k] = {s[0], s[1], blocks_.data() + s[4], s[5], blocks_.data() + s[6], s[7], s[2], s[3],
                   s[8] >= 0 ? &sampling[s[8]] : nullptr};
    }
    logits_.resize(logit_floats_);
    samples_.resize(n);
    failure_.capture(gptoss_engine_step(box_->engine.get(), tokens_.data(), tokens_.size(), chunks.data(), n, logits_.data(),
                                        logits_.size(), samples_.data()));
  }
  void OnOK() override {
    Napi::Env env = Env();
    keep_.Reset();
    if (failure_.failed()) {
      deferred_.Reject(make_error(env, failure_));
      return;
    }
    const size_t n = samples_.size();
    auto logits = Napi::Float32Array::New(env, logits_.size());
    std::copy(logits_.begin(), logits_.end(), logits.Data());
    auto tokens = Napi::Int32Array::New(env, n);
    auto logprobs = Napi::Float32Array::New(env, n);
    auto top_counts = Napi::Int32Array::New(env, n);
    auto top_ids = Napi::Int32Array::New(env, n * 20);
    auto top_lp = Napi::Float32Array::New(env, n * 20);
    for (size_t k = 0; k < n; ++k) {
      tokens[k] = samples_[k].token;
      logprobs[k] = samples_[k].logprob;
      top_counts[k] = samples_[k].num_top;
      for (int j = 0; j < 20; ++j) {
        top_ids[k * 20 + j] = samples_[k].top_ids[j];
        top_lp[k * 20 + j] = samples_[k].top_logprobs[j];
      }
    }
    Napi::Object out = Napi::Object::New(env);
    out.Set("logits", logits);
    out.Set("tokens", tokens);
    out.Set("logprobs", logprobs);
    out.Set("topCounts", top_counts);
    out.Set("topIds", top_ids);
    out.Set("topLogprobs", top_lp);
    deferred_.Resolve(out);
  }
  void OnError(const Napi::Error& e) override {
    keep_.Reset();
    deferred_.Reject(e.Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  Napi::ObjectReference keep_;
  EngineBox* box_;
  std::vector<int32_t> tokens_, seqs_, blocks_;
  std::vector<double> samp_f_;
  std::vector<int32_t> samp_i_, aux_;
  std::vector<float> aux_f_;
  int64_t logit_floats_;
  std::vector<float> logits_;
  std::vector<gptoss_sample_result> samples_;
  Failure failure_;
};

// step(engineObject, tokens, seqs, blocks, sampF, sampI, aux, auxF, logitFloats) -> Promise<StepOutput>
Napi::Value Step(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object engine = info[0].As<Napi::Object>();
  EngineBox* box = engine.Get("handle").As<Napi::External<EngineBox>>().Data();
  auto* w = new StepWorker(env, engine, box, info);
  auto promise = w->Promise();
  w->Queue();
  return promise;
}

// engineCall(engineObject, "follow" | "stopFollowers" | "keepalive") -> Promise<void>, off the loop.
Napi::Value EngineCall(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object ref = info[0].As<Napi::Object>();
  EngineBox* box = ref.Get("handle").As<Napi::External<EngineBox>>().Data();
  const std::string what = info[1].As<Napi::String>().Utf8Value();
  gptoss_status (*fn)(gptoss_engine_t) = what == "follow"          ? gptoss_engine_follow
                                         : what == "stopFollowers" ? gptoss_engine_stop_followers
                                         : what == "keepalive"     ? gptoss_engine_keepalive
                                                                   : nullptr;
  if (fn == nullptr) throw Napi::TypeError::New(env, "engineCall: unknown call " + what);
  auto* w = new CallWorker(env, [=] { return fn(box->engine.get()); }, [](Napi::Env e) { return e.Undefined(); }, {ref});
  auto promise = w->Promise();
  w->Queue();
  return promise;
}

// probes(bytes, repeats) -> {readGBps, fmaGflops}; synchronous (benchmarks only, ~1 s).
Napi::Value Probes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  double bw = 0, fl = 0;
  gptoss_status st = gptoss_probe_read_bandwidth(static_cast<uint64_t>(info[0].As<Napi::Number>().Int64Value()),
                                                 info[1].As<Napi::Number>().Int32Value(), &bw);
  if (st == gptoss_status_success) st = gptoss_probe_fma_rate(&fl);
  if (st != gptoss_status_success) throw_status(env, st);
  Napi::Object out = Napi::Object::New(env);
  out.Set("readGBps", bw);
  out.Set("fmaGflops", fl);
  return out;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("probes", Napi::Function::New(env, Probes));
  exports.Set("setErrorClass", Napi::Function::New(env, SetErrorClass));
  exports.Set("capabilities", Napi::Function::New(env, Capabilities));
  exports.Set("readModelConfig", Napi::Function::New(env, ReadModelConfig));
  exports.Set("loadModel", Napi::Function::New(env, LoadModel));
  exports.Set("createEngine", Napi::Function::New(env, CreateEngine));
  exports.Set("setEnginePrecision", Napi::Function::New(env, SetEnginePrecision));
  exports.Set("step", Napi::Function::New(env, Step));
  exports.Set("connectCommunicator", Napi::Function::New(env, ConnectCommunicator));
  exports.Set("ncclUniqueId", Napi::Function::New(env, NcclUniqueId));
  exports.Set("commAllReduceSum", Napi::Function::New(env, CommAllReduceSum));
  exports.Set("commBroadcast", Napi::Function::New(env, CommBroadcast));
  exports.Set("commAllGather", Napi::Function::New(env, CommAllGather));
  exports.Set("commBarrier", Napi::Function::New(env, CommBarrier));
  exports.Set("commAbort", Napi::Function::New(env, CommAbort));
  exports.Set("engineCall", Napi::Function::New(env, EngineCall));
  return exports;
}

}  // namespace

NODE_API_MODULE(expertmesh_kernels, Init)
