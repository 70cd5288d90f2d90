// config.cpp — see config.h. Unknown keys are ignored; missing or mistyped required keys are errors.
#include "config.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "../core/error.h"

namespace gptoss {

namespace {

using nlohmann::json;

int get_int(const json& j, const char* key, const std::string& file, int fallback, bool required) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (required) fail(gptoss_status_invalid_checkpoint, file + ": missing required key '" + key + "'");
    return fallback;
  }
  if (!it->is_number_integer() || it->get<int64_t>() < 0 || it->get<int64_t>() > (1ll << 31) - 1) {
    fail(gptoss_status_invalid_checkpoint, file + ": '" + key + "' must be a non-negative integer");
  }
  return static_cast<int>(it->get<int64_t>());
}

float get_float(const json& j, const char* key, const std::string& file, float fallback) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_number()) fail(gptoss_status_invalid_checkpoint, file + ": '" + key + "' must be a number");
  return it->get<float>();
}

}  // namespace

std::string ModelConfig::describe() const {
  std::ostringstream s;
  s << "layers=" << num_layers << " hidden=" << hidden << " intermediate=" << intermediate << " experts=" << num_experts
    << " top" << experts_per_token << " heads=" << num_q_heads << "/" << num_kv_heads << "x" << head_dim
    << " vocab=" << vocab << " window=" << sliding_window;
  return s.str();
}

ModelConfig load_model_config(const std::string& dir) {
  const std::string file = dir + "/config.json";
  std::ifstream in(file);
  if (!in) fail(gptoss_status_io_error, file + ": cannot open");
  std::stringstream buf;
  buf << in.rdbuf();
  const json j = json::parse(buf.str(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) fail(gptoss_status_invalid_checkpoint, file + ": not a JSON object");

  ModelConfig c;
  c.original_format = !j.contains("num_local_experts") && j.contains("num_experts");
  c.num_layers = get_int(j, "num_hidden_layers", file, 0, true);
  c.hidden = get_int(j, "hidden_size", file, 0, true);
  c.intermediate = get_int(j, "intermediate_size", file, 0, true);
  c.num_experts = get_int(j, c.original_format ? "num_experts" : "num_local_experts", file, 0, true);
  c.experts_per_token =
      get_int(j, j.contains("num_experts_per_tok") ? "num_experts_per_tok" : "experts_per_token", file, 4, false);
  c.num_q_heads = get_int(j, "num_attention_heads", file, 0, true);
  c.num_kv_heads = get_int(j, "num_key_value_heads", file, 0, true);
  c.head_dim = get_int(j, "head_dim", file, 64, false);
  c.vocab = get_int(j, "vocab_size", file, 0, true);
  c.sliding_window = get_int(j, "sliding_window", file, 128, false);
  c.rope_theta = get_float(j, "rope_theta", file, 150000.0f);
  c.swiglu_limit = get_float(j, "swiglu_limit", file, 7.0f);
  c.rms_eps = get_float(j, "rms_norm_eps", file, 1e-5f);
  if (j.contains("eos_token_id") && j["eos_token_id"].is_number_integer()) c.eos_token_id = j["eos_token_id"].get<int>();

  if (c.original_format) {
    c.rope_factor = get_float(j, "rope_scaling_factor", file, 32.0f);
    c.rope_beta_fast = get_float(j, "rope_ntk_beta", file, 32.0f);
    c.rope_beta_slow = get_float(j, "rope_ntk_alpha", file, 1.0f);
    c.rope_original_context = get_int(j, "initial_context_length", file, 4096, false);
  } else {
    const char* key = j.contains("rope_scaling") && !j["rope_scaling"].is_null() ? "rope_scaling" : "rope_parameters";
    const auto it = j.find(key);
    if (it != j.end() && it->is_object()) {
      const json& r = *it;
      const std::string type = r.value("rope_type", r.value("type", std::string("yarn")));
      if (type != "yarn") fail(gptoss_status_invalid_checkpoint, file + ": " + key + ".rope_type must be 'yarn' (got '" + type + "')");
      if (r.value("truncate", false)) fail(gptoss_status_unsupported_argument, file + ": " + key + ".truncate=true is not gpt-oss");
      c.rope_factor = get_float(r, "factor", file, 32.0f);
      c.rope_beta_fast = get_float(r, "beta_fast", file, 32.0f);
      c.rope_beta_slow = get_float(r, "beta_slow", file, 1.0f);
      c.rope_original_context = get_int(r, "original_max_position_embeddings", file, 4096, false);
      c.rope_theta = get_float(r, "rope_theta", file, c.rope_theta);
    }
  }
  c.max_positions = get_int(j, "max_position_embeddings", file, static_cast<int>(c.rope_original_context * c.rope_factor), false);

  c.sliding.assign(c.num_layers, false);
  const auto lt = j.find("layer_types");
  if (lt != j.end() && lt->is_array()) {
    if (static_cast<int>(lt->size()) != c.num_layers) {
      fail(gptoss_status_invalid_checkpoint, file + ": layer_types has " + std::to_string(lt->size()) + " entries for " +
                                                 std::to_string(c.num_layers) + " layers");
    }
    for (int l = 0; l < c.num_layers; ++l) {
      const auto& t = (*lt)[l];
      if (!t.is_string() || (t != "sliding_attention" && t != "full_attention")) {
        fail(gptoss_status_invalid_checkpoint, file + ": layer_types[" + std::to_string(l) + "] must be sliding_attention or full_attention");
      }
      c.sliding[l] = t == "sliding_attention";
    }
  } else {
    for (int l = 0; l < c.num_layers; ++l) c.sliding[l] = l % 2 == 0;  // original format: even layers slide
  }

  auto positive = [&](int v, const char* what) {
    if (v <= 0) fail(gptoss_status_invalid_checkpoint, file + ": " + what + " must be positive");
  };
  positive(c.num_layers, "num_hidden_layers");
  positive(c.hidden, "hidden_size");
  positive(c.intermediate, "intermediate_size");
  positive(c.num_experts, "num_local_experts");
  positive(c.num_q_heads, "num_attention_heads");
  positive(c.num_kv_heads, "num_key_value_heads");
  positive(c.head_dim, "head_dim");
  positive(c.vocab, "vocab_size");
  positive(c.sliding_window, "sliding_window");
  if (c.experts_per_token <= 0 || c.experts_per_token > c.num_experts) {
    fail(gptoss_status_invalid_checkpoint, file + ": experts per token must be in 1..num_experts");
  }
  if (c.num_q_heads % c.num_kv_heads != 0) fail(gptoss_status_invalid_checkpoint, file + ": num_attention_heads must be a multiple of num_key_value_heads");
  if (c.head_dim % 2 != 0) fail(gptoss_status_invalid_checkpoint, file + ": head_dim must be even (half-split RoPE)");
  if (c.hidden % 32 != 0 || c.intermediate % 32 != 0) {
    fail(gptoss_status_invalid_checkpoint, file + ": hidden_size and intermediate_size must be multiples of 32 (MXFP4 blocks)");
  }
  return c;
}

}  // namespace gptoss
