// config.h — the gpt-oss hyper-parameters. Defaults are the published model's values; every shape the
// engine uses comes from here, never from constants. Reading them from config.json is loader/config.h's job.
#pragma once

#include <string>
#include <vector>

namespace gptoss {

// The ops keep a token's expert choices in registers or on the stack; gpt-oss uses 4.
constexpr int kMaxExpertsPerToken = 32;

struct ModelConfig {
  int num_layers = 24;
  int hidden = 2880;
  int intermediate = 2880;
  int num_experts = 32;
  int experts_per_token = 4;
  int num_q_heads = 64;
  int num_kv_heads = 8;
  int head_dim = 64;
  int vocab = 201088;
  int sliding_window = 128;
  float rope_theta = 150000.0f;
  float rope_factor = 32.0f;
  float rope_beta_fast = 32.0f;  // original: rope_ntk_beta
  float rope_beta_slow = 1.0f;   // original: rope_ntk_alpha
  int rope_original_context = 4096;
  float swiglu_limit = 7.0f;
  float swiglu_alpha = 1.702f;
  float rms_eps = 1e-5f;
  int max_positions = 131072;
  int eos_token_id = 200002;
  std::vector<bool> sliding;  // per layer: true = sliding_attention
  bool original_format = false;

  int q_width() const { return num_q_heads * head_dim; }
  int kv_width() const { return num_kv_heads * head_dim; }
  std::string describe() const;
};

}  // namespace gptoss
