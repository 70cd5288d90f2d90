// engine.cpp — the engine object: createEngine, setEnginePrecision, step (packed arguments, run off the
// loop) and the lockstep calls (follow, stopFollowers, keepalive).
#include <algorithm>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common.h"

namespace gptoss::binding {

namespace {

struct EngineBox {
  ModelPtr model;  // declared first: destroyed after the engine
  std::shared_ptr<::gptoss_comm> comm;  // likewise (null: a single rank)
  std::unique_ptr<gptoss_engine, void (*)(gptoss_engine_t)> engine{nullptr, gptoss_engine_release};
};

// createEngine(modelHandle, blockSize, numFullBlocks, numSlidingBlocks, commObject?, backend?, decodeGraphs?, kvType?,
// denseWeights?, residentWeights?, precision?) ->
// {handle, backend}; decodeGraphs: 1 on, -1 off, 0 or absent the backend's default.
Napi::Value CreateEngine(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ModelPtr model = *info[0].As<Napi::External<ModelPtr>>().Data();
  auto box = std::make_unique<EngineBox>();
  box->model = model;
  if (info.Length() > 4 && info[4].IsObject()) {
    box->comm = *info[4].As<Napi::Object>().Get("handle").As<Napi::External<CommPtr>>().Data();
  }
  const std::string backend = info.Length() > 5 && info[5].IsString() ? info[5].As<Napi::String>().Utf8Value() : "cpu";
  const int32_t graphs = info.Length() > 6 && info[6].IsNumber() ? info[6].As<Napi::Number>().Int32Value() : 0;
  const int32_t kv_type = info.Length() > 7 && info[7].IsNumber() ? info[7].As<Napi::Number>().Int32Value() : 0;
  const int32_t dense = info.Length() > 8 && info[8].IsNumber() ? info[8].As<Napi::Number>().Int32Value() : 0;
  const int32_t resident = info.Length() > 9 && info[9].IsBoolean() && info[9].As<Napi::Boolean>().Value() ? 1 : 0;
  const int32_t precision = info.Length() > 10 && info[10].IsNumber() ? info[10].As<Napi::Number>().Int32Value() : 0;
  const gptoss_engine_options options{info[1].As<Napi::Number>().Int32Value(),
                                      info[2].As<Napi::Number>().Int32Value(),
                                      info[3].As<Napi::Number>().Int32Value(),
                                      backend.c_str(),
                                      box->comm.get(),
                                      graphs,
                                      kv_type,
                                      dense,
                                      resident,
                                      precision};
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

// engineGraphStats(engine) -> {captures, replays}
Napi::Value EngineGraphStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EngineBox* box = info[0].As<Napi::Object>().Get("handle").As<Napi::External<EngineBox>>().Data();
  uint64_t captures = 0, replays = 0;
  const gptoss_status st = gptoss_engine_graph_stats(box->engine.get(), &captures, &replays);
  if (st != gptoss_status_success) throw_status(env, st);
  Napi::Object out = Napi::Object::New(env);
  out.Set("captures", Napi::Number::New(env, static_cast<double>(captures)));
  out.Set("replays", Napi::Number::New(env, static_cast<double>(replays)));
  return out;
}

// engineKvCapacity(engine) -> {bytes, bytesPerToken, fullTokens, slidingTokens, dtype: "bf16" | "f32"}
Napi::Value EngineKvCapacity(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EngineBox* box = info[0].As<Napi::Object>().Get("handle").As<Napi::External<EngineBox>>().Data();
  gptoss_kv_capacity c{};
  const gptoss_status st = gptoss_engine_kv_capacity(box->engine.get(), &c);
  if (st != gptoss_status_success) throw_status(env, st);
  Napi::Object out = Napi::Object::New(env);
  out.Set("bytes", Napi::Number::New(env, static_cast<double>(c.bytes)));
  out.Set("bytesPerToken", Napi::Number::New(env, static_cast<double>(c.bytes_per_token)));
  out.Set("fullTokens", Napi::Number::New(env, static_cast<double>(c.full_tokens)));
  out.Set("slidingTokens", Napi::Number::New(env, static_cast<double>(c.sliding_tokens)));
  out.Set("dtype", Napi::String::New(env, c.kv_type == gptoss_kv_bf16 ? "bf16" : c.kv_type == gptoss_kv_fp8 ? "fp8" : "f32"));
  return out;
}

// Packed step arguments (see src/engine.ts, which builds them):
//   seqs      Int32Array, kSeqInts per sequence: numTokens, posBegin, allLogits, returnLogits,
//             fullOffset, fullCount, slidingOffset, slidingCount, samplingIndex (-1 = none)
//   blocks    Int32Array, block ids addressed by the offsets above
//   sampF     Float64Array, kSampFloats per sampling: temperature, topP, topK, minP, presence, frequency,
//             repetition, seedHigh32, seedLow32, counter, numTopLogprobs
//   sampI     Int32Array, kSampInts per sampling: biasOffset, biasCount, promptOffset, promptCount,
//             outputOffset, outputCount (offsets into aux; bias values at the same offsets in auxF)
//   masks     Array, per sampling: null or its allowed-token mask, a Uint32Array or Int32Array (the
//             caller's own array, not repacked: copied once here, as the loop may refill it mid-step)
constexpr size_t kSeqInts = 9, kSampFloats = 11, kSampInts = 6;

template <typename T, typename A>
std::vector<T> copy_of(const A& a) {
  return std::vector<T>(a.Data(), a.Data() + a.ElementLength());
}

// The masks, one after another in `words`; at[k] is sampling k's first word, or -1 for none.
struct MaskCopies {
  std::vector<uint32_t> words;
  std::vector<int64_t> at, count;
};

MaskCopies copy_masks(const Napi::Array& masks) {
  MaskCopies out;
  for (uint32_t k = 0; k < masks.Length(); ++k) {
    const Napi::Value v = masks.Get(k);
    if (!v.IsTypedArray()) {
      out.at.push_back(-1), out.count.push_back(0);
      continue;
    }
    const auto t = v.As<Napi::TypedArray>();
    const auto* first = reinterpret_cast<const uint32_t*>(static_cast<const uint8_t*>(t.ArrayBuffer().Data()) + t.ByteOffset());
    out.at.push_back(static_cast<int64_t>(out.words.size())), out.count.push_back(static_cast<int64_t>(t.ElementLength()));
    out.words.insert(out.words.end(), first, first + t.ElementLength());
  }
  return out;
}

class StepWorker : public Napi::AsyncWorker {
 public:
  StepWorker(Napi::Env env, Napi::Object engine_ref, EngineBox* box, const Napi::CallbackInfo& info)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), box_(box),
        tokens_(copy_of<int32_t>(info[1].As<Napi::Int32Array>())), seqs_(copy_of<int32_t>(info[2].As<Napi::Int32Array>())),
        blocks_(copy_of<int32_t>(info[3].As<Napi::Int32Array>())), samp_f_(copy_of<double>(info[4].As<Napi::Float64Array>())),
        samp_i_(copy_of<int32_t>(info[5].As<Napi::Int32Array>())), aux_(copy_of<int32_t>(info[6].As<Napi::Int32Array>())),
        aux_f_(copy_of<float>(info[7].As<Napi::Float32Array>())), logit_floats_(info[8].As<Napi::Number>().Int64Value()),
        masks_(copy_masks(info[9].As<Napi::Array>())) {
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
                     aux_.data() + i[4], i[5], nullptr, 0};
      if (k < masks_.at.size() && masks_.at[k] >= 0)
        sampling[k].allowed = masks_.words.data() + masks_.at[k], sampling[k].allowed_words = static_cast<int32_t>(masks_.count[k]);
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
  MaskCopies masks_;
  std::vector<float> logits_;
  std::vector<gptoss_sample_result> samples_;
  Failure failure_;
};

// step(engineObject, tokens, seqs, blocks, sampF, sampI, aux, auxF, logitFloats, masks) -> Promise<StepOutput>
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

}  // namespace

void init_engine(Napi::Env env, Napi::Object exports) {
  exports.Set("createEngine", Napi::Function::New(env, CreateEngine));
  exports.Set("setEnginePrecision", Napi::Function::New(env, SetEnginePrecision));
  exports.Set("engineGraphStats", Napi::Function::New(env, EngineGraphStats));
  exports.Set("engineKvCapacity", Napi::Function::New(env, EngineKvCapacity));
  exports.Set("step", Napi::Function::New(env, Step));
  exports.Set("engineCall", Napi::Function::New(env, EngineCall));
}

}  // namespace gptoss::binding
