// c_api.cpp — the C ABI of include/gptoss.h over the C++ engine. Every entry point catches gptoss::Error
// (and anything else) and returns a status, keeping the message for gptoss_last_error().
#include <cstring>
#include <mutex>
#include <new>
#include <string>

#include "../core/error.h"
#include "../model/gpt_oss.h"
#include "gptoss.h"

struct gptoss_model {
  std::shared_ptr<const gptoss::ModelWeights> weights;
};

struct gptoss_engine {
  std::shared_ptr<const gptoss::ModelWeights> weights;
  std::unique_ptr<gptoss::Transformer> transformer;
  std::unique_ptr<gptoss::KvCache> kv;
  std::mutex busy;  // one step at a time per engine
};

namespace {

thread_local std::string g_last_error;

template <typename F>
gptoss_status guarded(F&& f) {
  try {
    f();
    return gptoss_status_success;
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

extern "C" gptoss_status gptoss_model_get_config(gptoss_model_t model, gptoss_model_config* out) {
  return guarded([&] {
    gptoss::check(model != nullptr && out != nullptr, gptoss_status_invalid_argument, "model_get_config: null argument");
    const auto& c = model->weights->config;
    *out = {c.num_layers,   c.hidden, c.intermediate,   c.num_experts,   c.experts_per_token,
            c.num_q_heads,  c.num_kv_heads, c.head_dim, c.vocab,         c.sliding_window,
            c.max_positions, c.eos_token_id, c.original_format ? 1 : 0};
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

extern "C" gptoss_status gptoss_engine_create(gptoss_model_t model, int32_t block_size, int32_t num_full_blocks,
                                              int32_t num_ring_blocks, gptoss_engine_t* out) {
  return guarded([&] {
    gptoss::check(model != nullptr && out != nullptr, gptoss_status_invalid_argument, "engine_create: null argument");
    auto e = std::make_unique<gptoss_engine>();
    e->weights = model->weights;
    e->transformer = std::make_unique<gptoss::Transformer>(e->weights, gptoss::cpu_ops());
    e->kv = std::make_unique<gptoss::KvCache>(e->weights->config, e->weights->shard, block_size, num_full_blocks, num_ring_blocks);
    *out = e.release();
  });
}

extern "C" int32_t gptoss_engine_ring_blocks_per_seq(gptoss_engine_t engine) {
  return engine == nullptr ? 0 : engine->kv->ring_blocks_per_seq();
}

extern "C" gptoss_status gptoss_engine_step(gptoss_engine_t engine, const int32_t* tokens, size_t num_tokens,
                                            const gptoss_seq_chunk* seqs, size_t num_seqs, float* logits, size_t logits_capacity) {
  return guarded([&] {
    gptoss::check(engine != nullptr && tokens != nullptr && seqs != nullptr && logits != nullptr, gptoss_status_invalid_argument,
                  "engine_step: null argument");
    std::unique_lock lock(engine->busy, std::try_to_lock);
    gptoss::check(lock.owns_lock(), gptoss_status_invalid_state, "engine_step: a step is already running on this engine");
    std::vector<gptoss::SeqChunk> chunks;
    chunks.reserve(num_seqs);
    for (size_t i = 0; i < num_seqs; ++i) {
      const gptoss_seq_chunk& s = seqs[i];
      gptoss::check(s.num_full_blocks >= 0 && s.num_ring_blocks >= 0, gptoss_status_invalid_argument, "engine_step: negative block count");
      chunks.push_back({s.num_tokens, s.pos_begin, std::vector<int32_t>(s.full_blocks, s.full_blocks + s.num_full_blocks),
                        std::vector<int32_t>(s.ring_blocks, s.ring_blocks + s.num_ring_blocks), s.all_logits != 0});
    }
    const std::vector<int32_t> toks(tokens, tokens + num_tokens);
    const std::vector<float> out = engine->transformer->forward(toks, chunks, *engine->kv);
    gptoss::check(out.size() <= logits_capacity, gptoss_status_invalid_argument,
                  "engine_step: logits buffer holds " + std::to_string(logits_capacity) + " floats, step needs " + std::to_string(out.size()));
    std::memcpy(logits, out.data(), out.size() * sizeof(float));
  });
}

extern "C" void gptoss_engine_release(gptoss_engine_t engine) { delete engine; }
