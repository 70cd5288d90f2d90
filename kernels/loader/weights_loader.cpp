// weights_loader.cpp — builds ModelWeights from a checkpoint with one table: logical tensor → its Hugging
// Face name, its original-format name (with the row slice of the fused qkv), and its shard rule.
// No substring matching anywhere; every tensor is checked for dtype and exact shape.
#include <algorithm>
#include <cstring>
#include <string>

#include "../core/error.h"
#include "../model/weights.h"
#include "checkpoint.h"

namespace gptoss {

namespace {

enum class Part { Whole, Q, K, V };  // row slice of the original format's fused qkv

enum class Rule {
  Replicated,     // every rank holds it whole
  QHeadRows,      // rows of the rank's q heads
  KvHeadRows,     // rows of the rank's kv heads
  QHeadCols,      // columns of the rank's q heads (o_proj)
  QHeadVector,    // entries of the rank's q heads (sinks)
  Rank0Only,      // bias added once before the all-reduce (o_proj bias)
  ExpertMajor,    // leading dim is the expert; the rank keeps its placement
};

enum class Kind {
  Embed, FinalNorm, LmHead,
  AttnNorm, QW, QB, KW, KB, VW, VB, OW, OB, Sinks,
  MlpNorm, RouterW, RouterB, W1Blocks, W1Scales, W1Bias, W2Blocks, W2Scales, W2Bias,
};

struct NameRule {
  Kind kind;
  const char* hf;        // "{l}" = layer index
  const char* original;
  Part part;
  Rule rule;
};

// clang-format off
constexpr NameRule kNames[] = {
  {Kind::Embed,     "model.embed_tokens.weight",                        "embedding.weight",             Part::Whole, Rule::Replicated},
  {Kind::FinalNorm, "model.norm.weight",                                "norm.scale",                   Part::Whole, Rule::Replicated},
  {Kind::LmHead,    "lm_head.weight",                                   "unembedding.weight",           Part::Whole, Rule::Replicated},
  {Kind::AttnNorm,  "model.layers.{l}.input_layernorm.weight",          "block.{l}.attn.norm.scale",    Part::Whole, Rule::Replicated},
  {Kind::QW,        "model.layers.{l}.self_attn.q_proj.weight",         "block.{l}.attn.qkv.weight",    Part::Q,     Rule::QHeadRows},
  {Kind::QB,        "model.layers.{l}.self_attn.q_proj.bias",           "block.{l}.attn.qkv.bias",      Part::Q,     Rule::QHeadRows},
  {Kind::KW,        "model.layers.{l}.self_attn.k_proj.weight",         "block.{l}.attn.qkv.weight",    Part::K,     Rule::KvHeadRows},
  {Kind::KB,        "model.layers.{l}.self_attn.k_proj.bias",           "block.{l}.attn.qkv.bias",      Part::K,     Rule::KvHeadRows},
  {Kind::VW,        "model.layers.{l}.self_attn.v_proj.weight",         "block.{l}.attn.qkv.weight",    Part::V,     Rule::KvHeadRows},
  {Kind::VB,        "model.layers.{l}.self_attn.v_proj.bias",           "block.{l}.attn.qkv.bias",      Part::V,     Rule::KvHeadRows},
  {Kind::OW,        "model.layers.{l}.self_attn.o_proj.weight",         "block.{l}.attn.out.weight",    Part::Whole, Rule::QHeadCols},
  {Kind::OB,        "model.layers.{l}.self_attn.o_proj.bias",           "block.{l}.attn.out.bias",      Part::Whole, Rule::Rank0Only},
  {Kind::Sinks,     "model.layers.{l}.self_attn.sinks",                 "block.{l}.attn.sinks",         Part::Whole, Rule::QHeadVector},
  {Kind::MlpNorm,   "model.layers.{l}.post_attention_layernorm.weight", "block.{l}.mlp.norm.scale",     Part::Whole, Rule::Replicated},
  {Kind::RouterW,   "model.layers.{l}.mlp.router.weight",               "block.{l}.mlp.gate.weight",    Part::Whole, Rule::Replicated},
  {Kind::RouterB,   "model.layers.{l}.mlp.router.bias",                 "block.{l}.mlp.gate.bias",      Part::Whole, Rule::Replicated},
  {Kind::W1Blocks,  "model.layers.{l}.mlp.experts.gate_up_proj_blocks", "block.{l}.mlp.mlp1_weight.blocks", Part::Whole, Rule::ExpertMajor},
  {Kind::W1Scales,  "model.layers.{l}.mlp.experts.gate_up_proj_scales", "block.{l}.mlp.mlp1_weight.scales", Part::Whole, Rule::ExpertMajor},
  {Kind::W1Bias,    "model.layers.{l}.mlp.experts.gate_up_proj_bias",   "block.{l}.mlp.mlp1_bias",      Part::Whole, Rule::ExpertMajor},
  {Kind::W2Blocks,  "model.layers.{l}.mlp.experts.down_proj_blocks",    "block.{l}.mlp.mlp2_weight.blocks", Part::Whole, Rule::ExpertMajor},
  {Kind::W2Scales,  "model.layers.{l}.mlp.experts.down_proj_scales",    "block.{l}.mlp.mlp2_weight.scales", Part::Whole, Rule::ExpertMajor},
  {Kind::W2Bias,    "model.layers.{l}.mlp.experts.down_proj_bias",      "block.{l}.mlp.mlp2_bias",      Part::Whole, Rule::ExpertMajor},
};
// clang-format on

const NameRule& rule_of(Kind k) {
  for (const auto& r : kNames)
    if (r.kind == k) return r;
  fail(gptoss_status_invalid_state, "no name rule");
}

class Loader {
 public:
  Loader(const Checkpoint& ckpt, const ShardInfo& shard, HostVectors& store) : ckpt_(ckpt), c_(ckpt.config()), s_(shard), store_(store) {}

  std::string name(Kind k, int layer) const {
    std::string n = c_.original_format ? rule_of(k).original : rule_of(k).hf;
    const auto at = n.find("{l}");
    if (at != std::string::npos) n.replace(at, 3, std::to_string(layer));
    return n;
  }

  // Rows [begin, end) of the logical tensor inside its stored tensor (fused qkv in the original format).
  std::pair<int64_t, int64_t> part_rows(Kind k) const {
    if (!c_.original_format) return {0, -1};
    switch (rule_of(k).part) {
      case Part::Q: return {0, c_.q_width()};
      case Part::K: return {c_.q_width(), c_.q_width() + c_.kv_width()};
      case Part::V: return {c_.q_width() + c_.kv_width(), c_.q_width() + 2 * c_.kv_width()};
      case Part::Whole: return {0, -1};
    }
    return {0, -1};
  }

  const TensorRef& tensor(Kind k, int layer, std::vector<int64_t> logical_shape, bool allow_f32) const {
    const std::string n = name(k, layer);
    const TensorRef& t = ckpt_.require(n);
    std::vector<int64_t> stored = logical_shape;
    if (rule_of(k).part != Part::Whole && c_.original_format) stored[0] = c_.q_width() + 2 * c_.kv_width();
    const bool dtype_ok = t.info->dtype == DType::BF16 || (allow_f32 && t.info->dtype == DType::F32);
    if (!dtype_ok) {
      fail(gptoss_status_invalid_checkpoint, t.file->path() + ": tensor '" + n + "' has dtype " + dtype_name(t.info->dtype) +
                                                 (allow_f32 ? ", expected BF16 or F32" : ", expected BF16"));
    }
    expect_shape(t, n, stored);
    return t;
  }

  static void expect_shape(const TensorRef& t, const std::string& n, const std::vector<int64_t>& want) {
    if (t.info->shape != want) {
      auto str = [](const std::vector<int64_t>& v) {
        std::string s = "[";
        for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
        return s + "]";
      };
      fail(gptoss_status_invalid_checkpoint, t.file->path() + ": tensor '" + n + "' has shape " + str(t.info->shape) +
                                                 ", expected " + str(want));
    }
  }

  // A vector (gain/bias/sinks), widened to fp32, restricted to [begin, end) of its logical rows.
  Span<float> vector(Kind k, int layer, int64_t logical_len, int64_t begin, int64_t end, bool zero = false) const {
    const TensorRef& t = tensor(k, layer, {logical_len}, true);
    const int64_t off = part_rows(k).first;
    std::vector<float> out(static_cast<size_t>(end - begin));
    for (int64_t i = begin; i < end; ++i) {
      out[i - begin] = zero ? 0.0f : read_scalar(t, off + i);
    }
    return store_.keep(std::move(out));
  }

  static float read_scalar(const TensorRef& t, int64_t i) {
    if (t.info->dtype == DType::F32) {
      float f;
      std::memcpy(&f, t.data() + 4 * i, 4);
      return f;
    }
    bf16_t b;
    std::memcpy(&b, t.data() + 2 * i, 2);
    return bf16_to_f32(b);
  }

  MatrixBF16 matrix(Kind k, int layer, int64_t rows, int64_t cols, int64_t row_begin, int64_t row_end, int64_t col_begin,
                    int64_t col_end) const {
    const TensorRef& t = tensor(k, layer, {rows, cols}, false);
    const int64_t off = part_rows(k).first;
    MatrixBF16 m;
    m.ld = cols;
    m.rows = row_end - row_begin;
    m.cols = col_end - col_begin;
    m.data = reinterpret_cast<const bf16_t*>(t.data()) + (off + row_begin) * cols + col_begin;
    SafetensorsFile::populate(reinterpret_cast<const uint8_t*>(m.data), static_cast<uint64_t>(m.rows) * cols * 2);
    return m;
  }

  Linear linear(Kind w, Kind b, int layer, int64_t rows, int64_t cols, int64_t r0, int64_t r1) const {
    return Linear{matrix(w, layer, rows, cols, r0, r1, 0, cols), vector(b, layer, rows, r0, r1)};
  }

  const uint8_t* u8(Kind k, int layer, const std::vector<int64_t>& shape) const {
    const std::string n = name(k, layer);
    const TensorRef& t = ckpt_.require(n);
    if (t.info->dtype != DType::U8) {
      fail(gptoss_status_invalid_checkpoint, t.file->path() + ": tensor '" + n + "' has dtype " + dtype_name(t.info->dtype) + ", expected U8 (MXFP4)");
    }
    expect_shape(t, n, shape);
    return t.data();
  }

  LayerWeights layer(int l) const {
    const int64_t H = c_.hidden, D = c_.head_dim, E = c_.num_experts, I = c_.intermediate;
    const int64_t q0 = s_.q_head_begin * D, q1 = s_.q_head_end * D, kv0 = s_.kv_head_begin * D, kv1 = s_.kv_head_end * D;
    LayerWeights w;
    w.sliding = c_.sliding[l];
    AttentionWeights& a = w.attn;
    a.norm = vector(Kind::AttnNorm, l, H, 0, H);
    a.q = linear(Kind::QW, Kind::QB, l, c_.q_width(), H, q0, q1);
    a.k = linear(Kind::KW, Kind::KB, l, c_.kv_width(), H, kv0, kv1);
    a.v = linear(Kind::VW, Kind::VB, l, c_.kv_width(), H, kv0, kv1);
    a.o.w = matrix(Kind::OW, l, H, c_.q_width(), 0, H, q0, q1);
    a.o.bias = vector(Kind::OB, l, H, 0, H, /*zero=*/s_.rank != 0);
    a.sinks = vector(Kind::Sinks, l, c_.num_q_heads, s_.q_head_begin, s_.q_head_end);

    MoEWeights& m = w.moe;
    m.norm = vector(Kind::MlpNorm, l, H, 0, H);
    m.router = linear(Kind::RouterW, Kind::RouterB, l, E, H, 0, E);
    if (c_.original_format ? false : ckpt_.find("model.layers." + std::to_string(l) + ".mlp.experts.gate_up_proj") != nullptr) {
      fail(gptoss_status_unsupported_argument,
           ckpt_.dir() + ": dequantized (bf16) expert tensors are not supported; use the published MXFP4 checkpoint");
    }
    const int64_t hb = H / 32, ib = I / 32;
    const uint8_t* w1b = u8(Kind::W1Blocks, l, {E, 2 * I, hb, 16});
    const uint8_t* w1s = u8(Kind::W1Scales, l, {E, 2 * I, hb});
    const uint8_t* w2b = u8(Kind::W2Blocks, l, {E, H, ib, 16});
    const uint8_t* w2s = u8(Kind::W2Scales, l, {E, H, ib});
    const TensorRef& b1 = tensor(Kind::W1Bias, l, {E, 2 * I}, true);
    const TensorRef& b2 = tensor(Kind::W2Bias, l, {E, H}, true);
    std::vector<int32_t> local_of_global(E, -1);
    for (int e : s_.experts) {
      local_of_global[e] = static_cast<int32_t>(m.experts.size());
      Expert x;
      x.w1 = {w1b + e * 2 * I * hb * 16, w1s + e * 2 * I * hb, 2 * I, H};
      x.w2 = {w2b + e * H * ib * 16, w2s + e * H * ib, H, I};
      // Only this rank's experts are paged in: the others stay untouched on disk / in the page cache.
      SafetensorsFile::populate(x.w1.blocks, 2 * I * hb * 16);
      SafetensorsFile::populate(x.w1.scales, 2 * I * hb);
      SafetensorsFile::populate(x.w2.blocks, H * ib * 16);
      SafetensorsFile::populate(x.w2.scales, H * ib);
      std::vector<float> bias1(2 * I), bias2(H);
      for (int64_t i = 0; i < 2 * I; ++i) bias1[i] = read_scalar(b1, e * 2 * I + i);
      for (int64_t i = 0; i < H; ++i) bias2[i] = read_scalar(b2, e * H + i);
      x.b1 = store_.keep(std::move(bias1));
      x.b2 = store_.keep(std::move(bias2));
      m.experts.push_back(std::move(x));
    }
    m.local_of_global = store_.keep(std::move(local_of_global));
    m.w1_table = store_.keep(projections(m.experts, &Expert::w1, &Expert::b1));
    m.w2_table = store_.keep(projections(m.experts, &Expert::w2, &Expert::b2));
    return w;
  }

 private:
  const Checkpoint& ckpt_;
  const ModelConfig& c_;
  const ShardInfo& s_;
  HostVectors& store_;
};

ShardInfo plan_shard(const ModelConfig& c, const ShardSpec& spec) {
  if (spec.world < 1 || spec.rank < 0 || spec.rank >= spec.world) {
    fail(gptoss_status_invalid_argument, "shard: rank " + std::to_string(spec.rank) + " is not in world of size " + std::to_string(spec.world));
  }
  if (c.num_kv_heads % spec.world != 0) {
    fail(gptoss_status_unsupported_argument, "shard: " + std::to_string(c.num_kv_heads) + " kv heads cannot be split over " +
                                                 std::to_string(spec.world) + " ranks");
  }
  ShardInfo s;
  s.rank = spec.rank;
  s.world = spec.world;
  const int kv_per = c.num_kv_heads / spec.world, group = c.num_q_heads / c.num_kv_heads;
  s.kv_head_begin = spec.rank * kv_per;
  s.kv_head_end = s.kv_head_begin + kv_per;
  s.q_head_begin = s.kv_head_begin * group;
  s.q_head_end = s.kv_head_end * group;
  if (spec.experts.empty()) {
    // Contiguous split; the first E % W ranks take one extra expert.
    const int base = c.num_experts / spec.world, extra = c.num_experts % spec.world;
    const int begin = spec.rank * base + std::min(spec.rank, extra);
    const int count = base + (spec.rank < extra ? 1 : 0);
    for (int e = begin; e < begin + count; ++e) s.experts.push_back(e);
  } else {
    s.experts = spec.experts;
    std::sort(s.experts.begin(), s.experts.end());
    for (size_t i = 0; i < s.experts.size(); ++i) {
      if (s.experts[i] < 0 || s.experts[i] >= c.num_experts || (i > 0 && s.experts[i] == s.experts[i - 1])) {
        fail(gptoss_status_invalid_argument, "shard: expert placement must list distinct ids in 0.." + std::to_string(c.num_experts - 1));
      }
    }
  }
  const uint64_t per_expert = static_cast<uint64_t>(2 * c.intermediate) * (c.hidden / 32) * 17 +
                              static_cast<uint64_t>(c.hidden) * (c.intermediate / 32) * 17;
  s.expert_bytes = per_expert * s.experts.size() * c.num_layers;
  return s;
}

}  // namespace

std::shared_ptr<const ModelWeights> load_weights(const std::string& dir, const ShardSpec& spec) {
  auto ckpt = std::make_shared<const Checkpoint>(dir);
  auto w = std::make_shared<ModelWeights>();
  w->config = ckpt->config();
  const ModelConfig& c = w->config;
  w->shard = plan_shard(c, spec);
  auto store = std::make_shared<HostVectors>();
  Loader ld(*ckpt, w->shard, *store);
  w->embed = ld.matrix(Kind::Embed, 0, c.vocab, c.hidden, 0, c.vocab, 0, c.hidden);
  w->final_norm = ld.vector(Kind::FinalNorm, 0, c.hidden, 0, c.hidden);
  w->lm_head = ld.matrix(Kind::LmHead, 0, c.vocab, c.hidden, 0, c.vocab, 0, c.hidden);
  for (int l = 0; l < c.num_layers; ++l) w->layers.push_back(ld.layer(l));
  w->checkpoint = std::move(ckpt);
  w->storage = std::move(store);
  return w;
}

}  // namespace gptoss
