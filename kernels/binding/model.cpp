// model.cpp — the model object: readModelConfig, loadModel (off the loop) and the handle JS holds.
#include <algorithm>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common.h"

namespace gptoss::binding {

namespace {

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

}  // namespace

void init_model(Napi::Env env, Napi::Object exports) {
  exports.Set("readModelConfig", Napi::Function::New(env, ReadModelConfig));
  exports.Set("loadModel", Napi::Function::New(env, LoadModel));
}

}  // namespace gptoss::binding
