// config.cpp — see config.h. Unknown keys are ignored; missing, mistyped or out-of-domain keys are errors
// that name the key and the value found, so a hostile or mistyped config.json never reaches the forward
// pass (where rope_theta = -1 silently turned every logit into NaN).
#include "config.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "../core/error.h"

namespace gptoss {

namespace {

using nlohmann::json;

// Upper bounds far above any published model that keep every product the engine forms in int
// (q_width, experts × intermediate, row offsets into [vocab, hidden]) from overflowing.
constexpr int kMaxDim = 1 << 20;
constexpr int kMaxLayers = 4096;
constexpr int kMaxExperts = 1 << 16;
constexpr int kMaxPositions = 1 << 26;

std::string num(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

// Reads typed values from one JSON object; `prefix` names the object in messages ("rope_scaling.").
struct Reader {
  const json& j;
  const std::string& file;
  std::string prefix;

  [[noreturn]] void bad(const std::string& key, const std::string& rule, const std::string& got) const {
    fail(gptoss_status_invalid_checkpoint, file + ": '" + prefix + key + "' " + rule + " (got " + got + ")");
  }

  int integer(const char* key, int fallback, bool required) const {
    const auto it = j.find(key);
    if (it == j.end() || it->is_null()) {
      if (required) fail(gptoss_status_invalid_checkpoint, file + ": missing required key '" + prefix + key + "'");
      return fallback;
    }
    if (!it->is_number_integer() || it->get<int64_t>() < 0 || it->get<int64_t>() > (1ll << 31) - 1) {
      bad(key, "must be a non-negative integer", it->dump());
    }
    return static_cast<int>(it->get<int64_t>());
  }

  // Finite once narrowed to the engine's float too: 1e39 is a valid JSON number but an infinite float.
  float real(const char* key, float fallback) const {
    const auto it = j.find(key);
    if (it == j.end() || it->is_null()) return fallback;
    if (!it->is_number()) bad(key, "must be a number", it->dump());
    const double d = it->get<double>();
    if (!std::isfinite(d) || !std::isfinite(static_cast<float>(d))) bad(key, "must be a finite float", it->dump());
    return static_cast<float>(d);
  }
};

// The HF object holding the rope keys: rope_scaling, or rope_parameters in newer transformers ("" in
// the original format, whose keys are flat).
std::string rope_block(const ModelConfig& c, const json& j) {
  if (c.original_format) return "";
  return j.contains("rope_scaling") && !j["rope_scaling"].is_null() ? "rope_scaling" : "rope_parameters";
}

// The name a rope key has in this config.json, for messages.
std::string rope_key(const ModelConfig& c, const json& j, const char* hf, const char* original) {
  const std::string block = rope_block(c, j);
  return block.empty() ? std::string(original) : block + "." + hf;
}

// The YaRN block: HF's rope_scaling (or rope_parameters, with rope_theta inside), or the original
// format's flat keys.
void read_rope(const json& j, const std::string& file, ModelConfig& c) {
  if (c.original_format) {
    const Reader r{j, file, ""};
    c.rope_factor = r.real("rope_scaling_factor", 32.0f);
    c.rope_beta_fast = r.real("rope_ntk_beta", 32.0f);
    c.rope_beta_slow = r.real("rope_ntk_alpha", 1.0f);
    c.rope_original_context = r.integer("initial_context_length", 4096, false);
    return;
  }
  const std::string key = rope_block(c, j);
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return;
  if (!it->is_object()) Reader{j, file, ""}.bad(key, "must be an object", it->dump());
  const Reader r{*it, file, key + "."};
  const auto type = it->find(it->contains("rope_type") ? "rope_type" : "type");
  if (type != it->end() && *type != "yarn") r.bad("rope_type", "must be 'yarn'", type->dump());
  const auto truncate = it->find("truncate");
  if (truncate != it->end() && !truncate->is_null()) {
    if (!truncate->is_boolean()) r.bad("truncate", "must be a boolean", truncate->dump());
    if (truncate->get<bool>()) fail(gptoss_status_unsupported_argument, file + ": " + key + ".truncate=true is not gpt-oss");
  }
  c.rope_factor = r.real("factor", 32.0f);
  c.rope_beta_fast = r.real("beta_fast", 32.0f);
  c.rope_beta_slow = r.real("beta_slow", 1.0f);
  c.rope_original_context = r.integer("original_max_position_embeddings", 4096, false);
  c.rope_theta = r.real("rope_theta", c.rope_theta);
}

void read_layer_types(const json& j, const std::string& file, ModelConfig& c) {
  c.sliding.assign(c.num_layers, false);
  const auto lt = j.find("layer_types");
  if (lt == j.end() || lt->is_null()) {
    for (int l = 0; l < c.num_layers; ++l) c.sliding[l] = l % 2 == 0;  // original format: even layers slide
    return;
  }
  const Reader r{j, file, ""};
  if (!lt->is_array()) r.bad("layer_types", "must be an array", lt->dump());
  if (static_cast<int64_t>(lt->size()) != c.num_layers) {
    r.bad("layer_types", "must have num_hidden_layers = " + std::to_string(c.num_layers) + " entries", std::to_string(lt->size()));
  }
  for (int l = 0; l < c.num_layers; ++l) {
    const auto& t = (*lt)[l];
    if (!t.is_string() || (t != "sliding_attention" && t != "full_attention")) {
      r.bad("layer_types[" + std::to_string(l) + "]", "must be sliding_attention or full_attention", t.dump());
    }
    c.sliding[l] = t == "sliding_attention";
  }
}

// Each size within (0, max], named by its config.json key.
void check_sizes(const ModelConfig& c, const Reader& r) {
  const struct {
    const char* key;
    int value, max;
  } sizes[] = {
      {"num_hidden_layers", c.num_layers, kMaxLayers},
      {"hidden_size", c.hidden, kMaxDim},
      {"intermediate_size", c.intermediate, kMaxDim},
      {c.original_format ? "num_experts" : "num_local_experts", c.num_experts, kMaxExperts},
      {"num_attention_heads", c.num_q_heads, kMaxDim},
      {"num_key_value_heads", c.num_kv_heads, kMaxDim},
      {"head_dim", c.head_dim, kMaxDim},
      {"vocab_size", c.vocab, kMaxDim},
      {"sliding_window", c.sliding_window, kMaxPositions},
      {"max_position_embeddings", c.max_positions, kMaxPositions},
  };
  for (const auto& s : sizes) {
    if (s.value <= 0 || s.value > s.max) r.bad(s.key, "must be in 1.." + std::to_string(s.max), std::to_string(s.value));
  }
  if (static_cast<int64_t>(c.num_q_heads) * c.head_dim > kMaxDim) {
    r.bad("num_attention_heads", "× head_dim must be at most " + std::to_string(kMaxDim), std::to_string(c.num_q_heads));
  }
}

// YaRN divides by ln(rope_theta) and by the ramp's width, which beta_fast = beta_slow makes zero.
void check_rope(const ModelConfig& c, const Reader& r) {
  // HF's rope block may carry its own rope_theta, which then wins over the top-level one.
  const std::string block = rope_block(c, r.j);
  const auto it = block.empty() ? r.j.end() : r.j.find(block);
  const bool nested = it != r.j.end() && it->is_object() && it->contains("rope_theta");
  if (!(c.rope_theta > 1.0f)) r.bad(nested ? block + ".rope_theta" : "rope_theta", "must be greater than 1", num(c.rope_theta));
  if (!(c.rope_factor >= 1.0f)) r.bad(rope_key(c, r.j, "factor", "rope_scaling_factor"), "must be at least 1", num(c.rope_factor));
  if (!(c.rope_beta_slow > 0.0f)) r.bad(rope_key(c, r.j, "beta_slow", "rope_ntk_alpha"), "must be positive", num(c.rope_beta_slow));
  if (!(c.rope_beta_fast > c.rope_beta_slow)) {
    r.bad(rope_key(c, r.j, "beta_fast", "rope_ntk_beta"), "must be greater than beta_slow = " + num(c.rope_beta_slow), num(c.rope_beta_fast));
  }
  if (c.rope_original_context <= 0 || c.rope_original_context > kMaxPositions) {
    r.bad(rope_key(c, r.j, "original_max_position_embeddings", "initial_context_length"), "must be in 1.." + std::to_string(kMaxPositions),
          std::to_string(c.rope_original_context));
  }
}

// Relations between fields: what the kernels assume (GQA grouping, half-split RoPE, MXFP4 blocks,
// top-k routing) and what keeps the YaRN and SwiGLU arithmetic finite.
void check_domain(const ModelConfig& c, const Reader& r) {
  const char* ept = r.j.contains("num_experts_per_tok") ? "num_experts_per_tok" : "experts_per_token";
  const int most = std::min(c.num_experts, kMaxExpertsPerToken);
  if (c.experts_per_token < 1 || c.experts_per_token > most) {
    r.bad(ept, most == c.num_experts ? "must be in 1..num_experts = " + std::to_string(most)
                                     : "must be in 1.." + std::to_string(most) + " (the engine's most experts per token)",
          std::to_string(c.experts_per_token));
  }
  if (c.num_q_heads % c.num_kv_heads != 0) {
    r.bad("num_attention_heads", "must be a multiple of num_key_value_heads = " + std::to_string(c.num_kv_heads),
          std::to_string(c.num_q_heads));
  }
  if (c.head_dim % 2 != 0) r.bad("head_dim", "must be even (half-split RoPE)", std::to_string(c.head_dim));
  if (c.hidden % 32 != 0) r.bad("hidden_size", "must be a multiple of 32 (MXFP4 blocks)", std::to_string(c.hidden));
  if (c.intermediate % 32 != 0) r.bad("intermediate_size", "must be a multiple of 32 (MXFP4 blocks)", std::to_string(c.intermediate));
  if (c.rope_original_context > c.max_positions) {
    r.bad(rope_key(c, r.j, "original_max_position_embeddings", "initial_context_length"),
          "must be at most max_position_embeddings = " + std::to_string(c.max_positions), std::to_string(c.rope_original_context));
  }
  if (!(c.swiglu_limit > 0.0f)) r.bad("swiglu_limit", "must be positive", num(c.swiglu_limit));
  if (!(c.rms_eps > 0.0f && c.rms_eps < 1.0f)) r.bad("rms_norm_eps", "must be in (0, 1)", num(c.rms_eps));
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
  json j;
  try {
    j = json::parse(buf.str());
  } catch (const json::exception& e) {
    // The parser's message gives line, column and the text last read: it names the field for a bare
    // NaN or Infinity, which JSON has no literal for, or a number past the range of a double.
    fail(gptoss_status_invalid_checkpoint, file + ": not valid JSON: " + e.what());
  }
  if (!j.is_object()) fail(gptoss_status_invalid_checkpoint, file + ": not a JSON object");

  const Reader r{j, file, ""};
  ModelConfig c;
  c.original_format = !j.contains("num_local_experts") && j.contains("num_experts");
  c.num_layers = r.integer("num_hidden_layers", 0, true);
  c.hidden = r.integer("hidden_size", 0, true);
  c.intermediate = r.integer("intermediate_size", 0, true);
  c.num_experts = r.integer(c.original_format ? "num_experts" : "num_local_experts", 0, true);
  c.experts_per_token = r.integer(j.contains("num_experts_per_tok") ? "num_experts_per_tok" : "experts_per_token", 4, false);
  c.num_q_heads = r.integer("num_attention_heads", 0, true);
  c.num_kv_heads = r.integer("num_key_value_heads", 0, true);
  c.head_dim = r.integer("head_dim", 64, false);
  c.vocab = r.integer("vocab_size", 0, true);
  c.sliding_window = r.integer("sliding_window", 128, false);
  c.rope_theta = r.real("rope_theta", 150000.0f);
  c.swiglu_limit = r.real("swiglu_limit", 7.0f);
  c.rms_eps = r.real("rms_norm_eps", 1e-5f);
  // Only a single id is the engine's; generation_config-style lists are the caller's business.
  if (j.contains("eos_token_id") && j["eos_token_id"].is_number_integer()) c.eos_token_id = r.integer("eos_token_id", 0, false);
  read_rope(j, file, c);
  check_rope(c, r);
  const double derived = std::min<double>(c.rope_original_context * static_cast<double>(c.rope_factor), kMaxPositions + 1.0);
  c.max_positions = r.integer("max_position_embeddings", static_cast<int>(derived), false);
  check_sizes(c, r);
  check_domain(c, r);
  read_layer_types(j, file, c);
  return c;
}

}  // namespace gptoss
