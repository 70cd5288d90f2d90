// addon.cpp — the Node-API layer, and only that: converts between JS values and the C ABI in
// include/gptoss.h. Argument validation with user-facing messages happens in TypeScript (src/);
// anything that slips through is reported as a status by the C ABI and thrown as the JS error
// class that TypeScript registers with setErrorClass().
#include <napi.h>

#include <memory>
#include <string>
#include <vector>

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

// ---- model ------------------------------------------------------------------------------------
// Shared ownership: the JS handle and every engine created from it keep the weights alive.
using ModelPtr = std::shared_ptr<gptoss_model>;

Napi::Value ModelToJs(Napi::Env env, const ModelPtr& model) {
  gptoss_model_config c{};
  gptoss_model_get_config(model.get(), &c);
  gptoss_shard_info s{};
  std::vector<int32_t> experts(c.num_experts);
  gptoss_model_get_shard(model.get(), &s, experts.data(), experts.size());
  experts.resize(s.num_experts);

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
    status_ = gptoss_model_load(dir_.c_str(), rank_, world_, explicit_ ? experts_.data() : nullptr, experts_.size(), &m);
    if (status_ == gptoss_status_success) model_.reset(m, gptoss_model_release);
    else message_ = gptoss_last_error();
  }
  void OnOK() override {
    Napi::Env env = Env();
    if (status_ != gptoss_status_success) {
      deferred_.Reject(MakeError(env, status_, message_));
      return;
    }
    deferred_.Resolve(ModelToJs(env, model_));
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

  static Napi::Value MakeError(Napi::Env env, gptoss_status status, const std::string& message) {
    if (g_error_class != nullptr) {
      return g_error_class->New({Napi::Number::New(env, status), Napi::String::New(env, gptoss_status_name(status)),
                                 Napi::String::New(env, message)});
    }
    return Napi::Error::New(env, message).Value();
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::string dir_;
  int rank_, world_;
  std::vector<int32_t> experts_;
  bool explicit_;
  gptoss_status status_ = gptoss_status_success;
  std::string message_;
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
  std::unique_ptr<gptoss_engine, void (*)(gptoss_engine_t)> engine{nullptr, gptoss_engine_release};
};

// createEngine(modelHandle, blockSize, numFullBlocks, numRingBlocks) -> {handle, ringBlocksPerSeq}
Napi::Value CreateEngine(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ModelPtr model = *info[0].As<Napi::External<ModelPtr>>().Data();
  auto box = std::make_unique<EngineBox>();
  box->model = model;
  gptoss_engine_t e = nullptr;
  const gptoss_status st = gptoss_engine_create(model.get(), info[1].As<Napi::Number>().Int32Value(),
                                                info[2].As<Napi::Number>().Int32Value(), info[3].As<Napi::Number>().Int32Value(), &e);
  if (st != gptoss_status_success) throw_status(env, st, gptoss_last_error());
  box->engine.reset(e);
  const int32_t ring = gptoss_engine_ring_blocks_per_seq(e);
  Napi::Object out = Napi::Object::New(env);
  out.Set("ringBlocksPerSeq", ring);
  out.Set("handle", Napi::External<EngineBox>::New(env, box.release(), [](Napi::Env, EngineBox* b) { delete b; }));
  return out;
}

class StepWorker : public Napi::AsyncWorker {
 public:
  // seqs: Int32Array of 7 ints per sequence: numTokens, posBegin, allLogits, fullOffset, fullCount, ringOffset, ringCount
  // (offsets into blocks). The typed arrays are copied: JS may reuse its buffers as soon as step() returns.
  StepWorker(Napi::Env env, Napi::Object engine_ref, EngineBox* box, Napi::Int32Array tokens, Napi::Int32Array seqs,
             Napi::Int32Array blocks, size_t logit_rows)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), box_(box),
        tokens_(tokens.Data(), tokens.Data() + tokens.ElementLength()), seqs_(seqs.Data(), seqs.Data() + seqs.ElementLength()),
        blocks_(blocks.Data(), blocks.Data() + blocks.ElementLength()), logit_rows_(logit_rows) {
    keep_.Reset(engine_ref, 1);  // the engine must outlive the step
  }
  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    const size_t n = seqs_.size() / 7;
    std::vector<gptoss_seq_chunk> chunks(n);
    for (size_t i = 0; i < n; ++i) {
      const int32_t* s = &seqs_[i * 7];
      chunks[i] = {s[0], s[1], blocks_.data() + s[3], s[4], blocks_.data() + s[5], s[6], s[2]};
    }
    gptoss_model_config c{};
    gptoss_model_get_config(box_->model.get(), &c);
    logits_.resize(logit_rows_ * static_cast<size_t>(c.vocab));
    status_ = gptoss_engine_step(box_->engine.get(), tokens_.data(), tokens_.size(), chunks.data(), n, logits_.data(), logits_.size());
    if (status_ != gptoss_status_success) message_ = gptoss_last_error();
  }
  void OnOK() override {
    Napi::Env env = Env();
    keep_.Reset();
    if (status_ != gptoss_status_success) {
      deferred_.Reject(LoadWorker::MakeError(env, status_, message_));
      return;
    }
    auto out = Napi::Float32Array::New(env, logits_.size());
    std::copy(logits_.begin(), logits_.end(), out.Data());
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
  size_t logit_rows_;
  std::vector<float> logits_;
  gptoss_status status_ = gptoss_status_success;
  std::string message_;
};

// step(engineObject, tokens, seqs, blocks, logitRows) -> Promise<Float32Array>
Napi::Value Step(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object engine = info[0].As<Napi::Object>();
  EngineBox* box = engine.Get("handle").As<Napi::External<EngineBox>>().Data();
  auto* w = new StepWorker(env, engine, box, info[1].As<Napi::Int32Array>(), info[2].As<Napi::Int32Array>(),
                           info[3].As<Napi::Int32Array>(), info[4].As<Napi::Number>().Uint32Value());
  auto promise = w->Promise();
  w->Queue();
  return promise;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("setErrorClass", Napi::Function::New(env, SetErrorClass));
  exports.Set("capabilities", Napi::Function::New(env, Capabilities));
  exports.Set("loadModel", Napi::Function::New(env, LoadModel));
  exports.Set("createEngine", Napi::Function::New(env, CreateEngine));
  exports.Set("step", Napi::Function::New(env, Step));
  return exports;
}

}  // namespace

NODE_API_MODULE(expertmesh_kernels, Init)
