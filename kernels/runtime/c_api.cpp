// c_api.cpp — the C ABI of include/gptoss.h: thin wrappers over gptoss::Engine (runtime/engine.h) and the
// model and communicator types, converting C structs to C++ ones. Every entry point catches gptoss::Error
// (and anything else) and returns a status, keeping the message for gptoss_last_error().
#include <chrono>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <new>
#include <string>

#include "../core/error.h"
#include "../comm/communicator.h"
#include "../loader/config.h"
#include "../model/gpt_oss.h"
#include "engine.h"
#include "gptoss.h"

struct gptoss_model {
  std::shared_ptr<const gptoss::ModelWeights> weights;
};

struct gptoss_comm {
  std::shared_ptr<gptoss::comm::Communicator> comm;
};

struct gptoss_engine {
  std::unique_ptr<gptoss::Engine> engine;
};

namespace {

thread_local std::string g_last_error;
thread_local gptoss_comm_failure g_last_comm_failure = gptoss_comm_failure_none;

template <typename F>
gptoss_status guarded(F&& f) {
  g_last_comm_failure = gptoss_comm_failure_none;
  try {
    f();
    return gptoss_status_success;
  } catch (const gptoss::comm::CommError& e) {
    g_last_error = e.what();
    g_last_comm_failure = static_cast<gptoss_comm_failure>(e.failure());
    return e.status();
  } catch (const gptoss::Error& e) {
    g_last_error = e.what();
    return e.status();
  } catch (const std::bad_alloc&) {
    g_last_error = "out of memory";
    return gptoss_status_insufficient_memory;
  } catch (const std::exception& e) {
    g_last_error = e.what();
    return gptoss_status_invalid_state;
  }
}

}  // namespace

extern "C" const char* gptoss_last_error(void) { return g_last_error.c_str(); }

extern "C" gptoss_comm_failure gptoss_last_comm_failure(void) { return g_last_comm_failure; }

extern "C" gptoss_status gptoss_model_load(const char* dir, int32_t rank, int32_t world, const int32_t* experts,
                                           size_t num_experts, gptoss_model_t* out) {
  return guarded([&] {
    gptoss::check(dir != nullptr && out != nullptr, gptoss_status_invalid_argument, "model_load: null argument");
    gptoss::ShardSpec spec{rank, world, {}};
    if (experts != nullptr) spec.experts.assign(experts, experts + num_experts);
    auto* m = new gptoss_model{gptoss::load_weights(dir, spec)};
    *out = m;
  });
}

static gptoss_model_config to_abi(const gptoss::ModelConfig& c) {
  return {c.num_layers,   c.hidden, c.intermediate,   c.num_experts,   c.experts_per_token,
          c.num_q_heads,  c.num_kv_heads, c.head_dim, c.vocab,         c.sliding_window,
          c.max_positions, c.eos_token_id, c.original_format ? 1 : 0};
}

extern "C" gptoss_status gptoss_model_get_config(gptoss_model_t model, gptoss_model_config* out) {
  return guarded([&] {
    gptoss::check(model != nullptr && out != nullptr, gptoss_status_invalid_argument, "model_get_config: null argument");
    *out = to_abi(model->weights->config);
  });
}

extern "C" gptoss_status gptoss_model_read_config(const char* dir, gptoss_model_config* out) {
  return guarded([&] {
    gptoss::check(dir != nullptr && out != nullptr, gptoss_status_invalid_argument, "model_read_config: null argument");
    *out = to_abi(gptoss::load_model_config(dir));
  });
}

extern "C" gptoss_status gptoss_model_get_shard(gptoss_model_t model, gptoss_shard_info* info, int32_t* experts, size_t capacity) {
  return guarded([&] {
    gptoss::check(model != nullptr && info != nullptr, gptoss_status_invalid_argument, "model_get_shard: null argument");
    const auto& s = model->weights->shard;
    *info = {s.rank, s.world, s.q_head_begin, s.q_head_end, s.kv_head_begin, s.kv_head_end,
             static_cast<int32_t>(s.experts.size()), s.expert_bytes};
    for (size_t i = 0; i < s.experts.size() && i < capacity && experts != nullptr; ++i) experts[i] = s.experts[i];
  });
}

extern "C" void gptoss_model_release(gptoss_model_t model) { delete model; }

extern "C" gptoss_status gptoss_engine_create_with_options(gptoss_model_t model, const gptoss_engine_options* options,
                                                           gptoss_engine_t* out) {
  return guarded([&] {
    gptoss::check(model != nullptr && options != nullptr && out != nullptr, gptoss_status_invalid_argument,
                  "engine_create: null argument");
    gptoss::EngineOptions o;
    o.block_size = options->block_size;
    o.num_full_blocks = options->num_full_blocks;
    o.num_sliding_blocks = options->num_sliding_blocks;
    if (options->backend != nullptr) o.backend = options->backend;
    o.decode_graphs = options->decode_graphs;
    gptoss::check(options->kv_type == gptoss_kv_f32 || options->kv_type == gptoss_kv_bf16 || options->kv_type == gptoss_kv_fp8,
                  gptoss_status_invalid_argument, "engine_create: unknown KV type " + std::to_string(options->kv_type));
    o.kv_type = options->kv_type == gptoss_kv_bf16  ? gptoss::KvType::BF16
                : options->kv_type == gptoss_kv_fp8 ? gptoss::KvType::FP8
                                                    : gptoss::KvType::F32;
    gptoss::check(options->dense_weights == gptoss_dense_bf16 || options->dense_weights == gptoss_dense_q8 ||
                      options->dense_weights == gptoss_dense_q8_attention,
                  gptoss_status_invalid_argument, "engine_create: unknown dense weight type " + std::to_string(options->dense_weights));
    o.dense = options->dense_weights == gptoss_dense_q8             ? gptoss::DenseWeights::Q8
              : options->dense_weights == gptoss_dense_q8_attention ? gptoss::DenseWeights::Q8Attention
                                                                    : gptoss::DenseWeights::BF16;
    o.resident_weights = options->resident_weights != 0;
    gptoss::check(options->precision == gptoss_precision_exact || options->precision == gptoss_precision_serving,
                  gptoss_status_invalid_argument, "engine_create: unknown precision " + std::to_string(options->precision));
    o.precision = options->precision == gptoss_precision_serving ? gptoss::Precision::Serving : gptoss::Precision::Exact;
    if (options->comm != nullptr) {
      const auto& sh = model->weights->shard;
      const auto& c = *options->comm->comm;
      gptoss::check(sh.rank == c.rank() && sh.world == c.world(), gptoss_status_invalid_argument,
                    "engine_create_ranked: the model was loaded as rank " + std::to_string(sh.rank) + " of " +
                        std::to_string(sh.world) + " but the communicator is rank " + std::to_string(c.rank()) + " of " +
                        std::to_string(c.world()));
      o.comm = options->comm->comm;
    }
    *out = new gptoss_engine{std::make_unique<gptoss::Engine>(model->weights, o)};
  });
}

extern "C" gptoss_status gptoss_engine_create(gptoss_model_t model, int32_t block_size, int32_t num_full_blocks,
                                              int32_t num_sliding_blocks, gptoss_engine_t* out) {
  const gptoss_engine_options o{block_size, num_full_blocks, num_sliding_blocks, "cpu", nullptr};
  return gptoss_engine_create_with_options(model, &o, out);
}

extern "C" const char* gptoss_engine_backend(gptoss_engine_t engine) { return engine != nullptr ? engine->engine->backend() : ""; }

extern "C" gptoss_status gptoss_engine_graph_stats(gptoss_engine_t engine, uint64_t* captures, uint64_t* replays) {
  return guarded([&] {
    gptoss::check(engine != nullptr && captures != nullptr && replays != nullptr, gptoss_status_invalid_argument,
                  "engine_graph_stats: null argument");
    *captures = engine->engine->graphs().captures();
    *replays = engine->engine->graphs().replays();
  });
}

extern "C" gptoss_status gptoss_engine_kv_capacity(gptoss_engine_t engine, gptoss_kv_capacity* out) {
  return guarded([&] {
    gptoss::check(engine != nullptr && out != nullptr, gptoss_status_invalid_argument, "engine_kv_capacity: null argument");
    const gptoss::KvCache& kv = engine->engine->kv();
    *out = {kv.bytes(), kv.bytes_per_token(), kv.full_tokens(), kv.sliding_tokens(),
            kv.type() == gptoss::KvType::BF16  ? gptoss_kv_bf16
            : kv.type() == gptoss::KvType::FP8 ? gptoss_kv_fp8
                                               : gptoss_kv_f32};
  });
}

extern "C" gptoss_status gptoss_engine_set_precision(gptoss_engine_t engine, gptoss_precision precision) {
  return guarded([&] {
    gptoss::check(engine != nullptr, gptoss_status_invalid_argument, "engine_set_precision: null engine");
    gptoss::check(precision == gptoss_precision_exact || precision == gptoss_precision_serving, gptoss_status_invalid_argument,
                  "engine_set_precision: unknown precision " + std::to_string(static_cast<int>(precision)));
    engine->engine->set_precision(precision == gptoss_precision_serving ? gptoss::Precision::Serving : gptoss::Precision::Exact);
  });
}

namespace {
gptoss::SamplingParams to_params(const gptoss_sampling& q) {
  gptoss::SamplingParams p;
  p.temperature = q.temperature;
  p.top_p = q.top_p;
  p.top_k = q.top_k;
  p.min_p = q.min_p;
  p.presence_penalty = q.presence_penalty;
  p.frequency_penalty = q.frequency_penalty;
  p.repetition_penalty = q.repetition_penalty;
  p.seed = q.seed;
  p.num_top_logprobs = q.num_top_logprobs;
  p.bias_ids = q.bias_ids;
  p.bias_values = q.bias_values;
  p.num_bias = q.num_bias;
  p.prompt = q.prompt;
  p.num_prompt = q.num_prompt;
  p.output = q.output;
  p.num_output = q.num_output;
  p.allowed = q.allowed;
  p.allowed_words = q.allowed_words;
  return p;
}
}  // namespace

extern "C" gptoss_status gptoss_engine_step(gptoss_engine_t engine, const int32_t* tokens, size_t num_tokens,
                                            const gptoss_seq_chunk* seqs, size_t num_seqs, float* logits, size_t logits_capacity,
                                            gptoss_sample_result* samples) {
  return guarded([&] {
    gptoss::check(engine != nullptr && tokens != nullptr && seqs != nullptr, gptoss_status_invalid_argument,
                  "engine_step: null argument");
    std::vector<gptoss::SamplingParams> params(num_seqs);  // sized once: StepSeq points into it
    std::vector<gptoss::StepSeq> steps;
    steps.reserve(num_seqs);
    for (size_t i = 0; i < num_seqs; ++i) {
      const gptoss_seq_chunk& s = seqs[i];
      gptoss::check(s.num_full_blocks >= 0 && s.num_sliding_blocks >= 0, gptoss_status_invalid_argument, "engine_step: negative block count");
      gptoss::StepSeq q{{s.num_tokens, s.pos_begin, std::vector<int32_t>(s.full_blocks, s.full_blocks + s.num_full_blocks),
                         std::vector<int32_t>(s.sliding_blocks, s.sliding_blocks + s.num_sliding_blocks), s.all_logits != 0},
                        s.return_logits != 0};
      if (s.sampling != nullptr) {
        gptoss::check(s.sampling->num_top_logprobs <= 20, gptoss_status_invalid_argument, "engine_step: at most 20 top logprobs");
        params[i] = to_params(*s.sampling);
        q.sampling = &params[i];
        q.counter = s.sampling->counter;
      }
      steps.push_back(std::move(q));
    }
    std::vector<gptoss::SampleResult> results(samples != nullptr ? num_seqs : 0);
    engine->engine->step(std::vector<int32_t>(tokens, tokens + num_tokens), steps, logits, logits_capacity,
                         samples != nullptr ? results.data() : nullptr);
    for (size_t i = 0; i < num_seqs; ++i) {
      if (seqs[i].sampling == nullptr || samples == nullptr) continue;
      const gptoss::SampleResult& r = results[i];
      samples[i].token = r.token;
      samples[i].logprob = r.logprob;
      samples[i].num_top = r.num_top;
      std::memcpy(samples[i].top_ids, r.top_ids, sizeof r.top_ids);
      std::memcpy(samples[i].top_logprobs, r.top_logprobs, sizeof r.top_logprobs);
    }
  });
}

extern "C" void gptoss_engine_release(gptoss_engine_t engine) { delete engine; }

// ---- expert parallelism ---------------------------------------------------------------------------
extern "C" gptoss_status gptoss_comm_connect(int32_t rank, int32_t world, const char* rendezvous, int32_t timeout_ms, gptoss_comm_t* out) {
  return guarded([&] {
    gptoss::check(rendezvous != nullptr && out != nullptr, gptoss_status_invalid_argument, "comm_connect: null argument");
    auto c = gptoss::comm::connect_gloo(rank, world, rendezvous, std::chrono::milliseconds(timeout_ms));
    *out = new gptoss_comm{std::move(c)};
  });
}

extern "C" gptoss_status gptoss_comm_nccl_unique_id(uint8_t* out, size_t capacity) {
  return guarded([&] {
    gptoss::check(out != nullptr && capacity >= 128, gptoss_status_invalid_argument, "comm_nccl_unique_id: needs a 128-byte buffer");
    const std::string id = gptoss::comm::nccl_unique_id();
    std::memcpy(out, id.data(), id.size());
  });
}

extern "C" gptoss_status gptoss_comm_connect_nccl(int32_t rank, int32_t world, const uint8_t* unique_id, size_t unique_id_bytes,
                                                  int32_t device, int32_t timeout_ms, gptoss_comm_t* out) {
  return guarded([&] {
    gptoss::check(unique_id != nullptr && out != nullptr, gptoss_status_invalid_argument, "comm_connect_nccl: null argument");
    const std::string id(reinterpret_cast<const char*>(unique_id), unique_id_bytes);
    *out = new gptoss_comm{gptoss::comm::connect_nccl(rank, world, id, std::chrono::milliseconds(timeout_ms), device)};
  });
}

extern "C" gptoss_status gptoss_comm_connect_nccl_at(int32_t rank, int32_t world, const char* rendezvous, int32_t device,
                                                     int32_t timeout_ms, gptoss_comm_t* out) {
  return guarded([&] {
    gptoss::check(rendezvous != nullptr && out != nullptr, gptoss_status_invalid_argument, "comm_connect_nccl_at: null argument");
    *out = new gptoss_comm{gptoss::comm::connect_nccl_at(rank, world, rendezvous, std::chrono::milliseconds(timeout_ms), device)};
  });
}

extern "C" gptoss_status gptoss_comm_broadcast(gptoss_comm_t comm, void* data, int64_t bytes, int32_t root) {
  return guarded([&] {
    gptoss::check(comm != nullptr && (data != nullptr || bytes == 0) && bytes >= 0, gptoss_status_invalid_argument,
                  "comm_broadcast: null argument");
    comm->comm->broadcast(data, bytes, root);
  });
}

extern "C" gptoss_status gptoss_comm_all_gather(gptoss_comm_t comm, const void* in, void* out, int64_t bytes) {
  return guarded([&] {
    gptoss::check(comm != nullptr && ((in != nullptr && out != nullptr) || bytes == 0) && bytes >= 0, gptoss_status_invalid_argument,
                  "comm_all_gather: null argument");
    comm->comm->allgather(in, out, bytes);
  });
}

extern "C" gptoss_status gptoss_comm_abort(gptoss_comm_t comm, const char* reason) {
  return guarded([&] {
    gptoss::check(comm != nullptr, gptoss_status_invalid_argument, "comm_abort: null argument");
    comm->comm->abort(reason != nullptr ? reason : "");
  });
}

extern "C" gptoss_status gptoss_comm_all_reduce_sum(gptoss_comm_t comm, float* data, int64_t count) {
  return guarded([&] {
    gptoss::check(comm != nullptr && (data != nullptr || count == 0), gptoss_status_invalid_argument, "comm_all_reduce: null argument");
    comm->comm->sum(data, count);
  });
}

extern "C" gptoss_status gptoss_comm_barrier(gptoss_comm_t comm) {
  return guarded([&] {
    gptoss::check(comm != nullptr, gptoss_status_invalid_argument, "comm_barrier: null argument");
    comm->comm->barrier();
  });
}

extern "C" void gptoss_comm_release(gptoss_comm_t comm) { delete comm; }

extern "C" gptoss_status gptoss_engine_create_ranked(gptoss_model_t model, int32_t block_size, int32_t num_full_blocks,
                                                     int32_t num_sliding_blocks, gptoss_comm_t comm, gptoss_engine_t* out) {
  if (comm == nullptr) {
    g_last_error = "engine_create_ranked: null argument";
    return gptoss_status_invalid_argument;
  }
  const gptoss_engine_options o{block_size, num_full_blocks, num_sliding_blocks, "cpu", comm};
  return gptoss_engine_create_with_options(model, &o, out);
}

extern "C" gptoss_status gptoss_engine_follow(gptoss_engine_t engine) {
  return guarded([&] {
    gptoss::check(engine != nullptr, gptoss_status_invalid_argument, "engine_follow: null argument");
    engine->engine->follow();
  });
}

namespace {
gptoss_status leader_plan(gptoss_engine_t engine, gptoss::lockstep::PlanKind kind, const char* what) {
  return guarded([&] {
    gptoss::check(engine != nullptr, gptoss_status_invalid_argument, std::string(what) + ": null argument");
    engine->engine->send_plan(kind);
  });
}
}  // namespace

extern "C" gptoss_status gptoss_engine_stop_followers(gptoss_engine_t engine) {
  return leader_plan(engine, gptoss::lockstep::PlanKind::stop, "engine_stop_followers");
}

extern "C" gptoss_status gptoss_engine_keepalive(gptoss_engine_t engine) {
  return leader_plan(engine, gptoss::lockstep::PlanKind::noop, "engine_keepalive");
}
