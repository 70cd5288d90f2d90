// gpt_oss.cpp — the forward pass, read like openai/gpt-oss gpt_oss/torch/model.py:
//   h = Embed(x); per layer: h += AttentionBlock(h); h += MLPBlock(h); logits = Unembed(RMSNorm(h)).
// Shapes: T = rows in this step, H = hidden, D = head_dim, Hq/Hkv = this rank's query/kv heads,
// E = experts, K = experts per token, I = intermediate. Activations and accumulation are fp32.
// Expert parallelism shows as the two all_reduce calls per layer; with one rank they do nothing.
#include "gpt_oss.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <numeric>
#include <tuple>

#include "../core/error.h"

namespace gptoss {

// ---- profiling (EXPERTMESH_PROFILE=N): wall time per block over the last N steps, printed to stderr every
// N steps (default 8) --
namespace {
struct Profile {
  const bool on = std::getenv("EXPERTMESH_PROFILE") != nullptr;
  const int every = on && std::atoi(std::getenv("EXPERTMESH_PROFILE")) > 0 ? std::atoi(std::getenv("EXPERTMESH_PROFILE")) : 8;
  double t[9] = {};
  int steps = 0;
  static double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }
  void add(int i, double since) { t[i] += now() - since; }
  void step_done() {
    if (!on || ++steps % every) return;
    static const char* names[] = {"attn:norm+qkv+rope", "attn:sdpa+store", "attn:out", "moe:norm+router", "moe:experts",
                                  "head", "moe:gather", "moe:combine", "comm:all-reduce"};
    double total = 0;
    for (double x : t) total += x;
    std::fprintf(stderr, "[profile] %d steps (%d–%d), %.3f s/step:", every, steps - every + 1, steps, total / every);
    for (int i = 0; i < 9; ++i) std::fprintf(stderr, " %s %.1f%%", names[i], 100 * t[i] / total);
    std::fprintf(stderr, "\n");
    for (double& x : t) x = 0;
  }
};
Profile g_profile;
}  // namespace

// ---- RoPE: YaRN frequencies and concentration, fp32 as in the reference (spec §4.3) -------------
static std::vector<float> yarn_inv_freq(const ModelConfig& c, float* concentration) {
  const int D = c.head_dim, half = D / 2;
  const double pi = 3.14159265358979323846;
  const double low = half * std::log(c.rope_original_context / (c.rope_beta_fast * 2 * pi)) / std::log(c.rope_theta);
  const double high = half * std::log(c.rope_original_context / (c.rope_beta_slow * 2 * pi)) / std::log(c.rope_theta);
  *concentration = c.rope_factor > 1.0f ? static_cast<float>(0.1 * std::log(c.rope_factor) + 1.0) : 1.0f;
  std::vector<float> inv(half);
  for (int f = 0; f < half; ++f) {
    const float freq = std::pow(c.rope_theta, static_cast<float>(2 * f) / static_cast<float>(D));
    if (c.rope_factor <= 1.0f) {
      inv[f] = 1.0f / freq;
      continue;
    }
    const float interp = 1.0f / (c.rope_factor * freq), extrap = 1.0f / freq;
    const float ramp = static_cast<float>((f - low) / (high - low));
    const float mask = 1.0f - std::min(1.0f, std::max(0.0f, ramp));
    inv[f] = interp * (1.0f - mask) + extrap * mask;
  }
  return inv;
}

// ---- KV cache ----------------------------------------------------------------------------------
KvCache::KvCache(const ModelConfig& c, const ShardInfo& s, int block_size, int num_full_blocks, int num_sliding_blocks,
                 const DeviceMemory& memory, bool pad_block, KvType type)
    : sliding_(c.sliding), block_size_(block_size), num_full_(num_full_blocks), num_sliding_(num_sliding_blocks),
      window_(c.sliding_window), kv_heads_(s.kv_head_end - s.kv_head_begin), head_dim_(c.head_dim), pad_(pad_block),
      type_(type), memory_(&memory), full_(memory), sliding_kv_(memory) {
  check(block_size > 0 && num_full_blocks >= 0 && num_sliding_blocks >= 0, gptoss_status_invalid_argument, "kv cache: bad sizes");
  block_elems_ = 2ll * kv_heads_ * block_size * head_dim_;
  int n_full = 0, n_slide = 0;
  for (bool sl : sliding_) index_in_kind_.push_back(sl ? n_slide++ : n_full++);
  allocate();
}

// One layer's bytes in a pool of `blocks` blocks: the elements, then (FP8) the row scales, 16-aligned.
int64_t KvCache::layer_bytes(int blocks) const {
  const int64_t elems = static_cast<int64_t>(blocks) * block_elems_ * KvLayer::kv_elem_bytes(type_);
  if (type_ != KvType::FP8) return elems;
  const int64_t rows = static_cast<int64_t>(blocks) * 2 * kv_heads_ * block_size_;
  return (elems + 15) / 16 * 16 + (rows * 4 + 15) / 16 * 16;
}

void KvCache::allocate() {
  const size_t n_slide = std::count(sliding_.begin(), sliding_.end(), true), n_full = sliding_.size() - n_slide;
  const size_t full_bytes = n_full * layer_bytes(num_full_ + pad_);
  const size_t sliding_bytes = n_slide * layer_bytes(num_sliding_ + pad_);
  try {
    memory_->zero(full_.reserve(full_bytes), full_bytes);
    memory_->zero(sliding_kv_.reserve(sliding_bytes), sliding_bytes);
  } catch (const Error& e) {
    fail(gptoss_status_insufficient_memory, "kv cache: cannot allocate " + std::to_string(num_full_) + " + " +
                                                std::to_string(num_sliding_) + " blocks (" + e.what() + ")");
  }
}

uint64_t KvCache::bytes_per_token() const {
  const uint64_t row = static_cast<uint64_t>(head_dim_) * KvLayer::kv_elem_bytes(type_) + (type_ == KvType::FP8 ? 4 : 0);
  return static_cast<uint64_t>(sliding_.size()) * 2 * kv_heads_ * row;
}

KvLayer KvCache::layer(int l) const {
  const bool sliding = sliding_[l];
  const int blocks = (sliding ? num_sliding_ : num_full_) + pad_;
  KvLayer layer{sliding ? sliding_kv_.data() : full_.data(), block_size_, kv_heads_, head_dim_, type_};
  layer.pool = static_cast<uint8_t*>(layer.pool) + index_in_kind_[l] * layer_bytes(blocks);
  if (type_ == KvType::FP8)
    layer.scales = reinterpret_cast<float*>(static_cast<uint8_t*>(layer.pool) + (static_cast<int64_t>(blocks) * block_elems_ + 15) / 16 * 16);
  return layer;
}

// ---- the transformer ---------------------------------------------------------------------------
// A step's buffers. The device arrays are what the ops read and write (in the backend's memory); the
// rest is the host's plan of the step (job lists and runs).
struct Transformer::Scratch {
  explicit Scratch(const DeviceMemory& m)
      : tokens(m), positions(m), panel_row(m), seqs(m), blocks(m), h(m), t(m), q(m), k(m), v(m), attn(m), proj(m), router(m),
        expert_idx(m), expert_w(m), xs(m), u(m), z(m), y(m), row_weight(m), token_rows(m), groups(m), totals(m), head_rows(m),
        last(m), logits(m), attn_work(m) {}
  int T = 0, out_rows = 0;
  struct Run {
    int begin, count;
    RowPath path;
  };
  std::vector<Run> runs;       // consecutive rows sharing a dense path: one dense product each
  int expert_panel_tokens = 0;  // rows of chunks whose expert products take RowPath::Panel
  std::vector<Run> head_runs;  // the same over the rows of `last` (the head's unembedding)
  std::vector<DenseMatmul> dense_jobs;
  std::vector<DenseQ8Matmul> dense_q8_jobs;
  const AttnSeq* full_seqs = nullptr;  // device: [num_seqs] each, their block tables in `blocks`
  const AttnSeq* sliding_seqs = nullptr;
  int num_seqs = 0;

  DeviceArray<int32_t> tokens, positions;
  DeviceArray<uint8_t> panel_row;  // [T]: the row belongs to a long prefill chunk (RowPath::Panel)
  DeviceArray<AttnSeq> seqs;       // full then sliding
  DeviceArray<int32_t> blocks;     // every sequence's block tables
  DeviceArray<float> h, t, q, k, v, attn, proj;  // [T,H] [T,H] [T,Hq·D] [T,Hkv·D] [T,Hkv·D] [T,Hq·D] [T,H]
  DeviceArray<float> router;                     // [T,E]
  DeviceArray<int32_t> expert_idx;               // [T,K]
  DeviceArray<float> expert_w;                   // [T,K]
  DeviceArray<float> xs, u, z, y;                // routed rows (u: W1's [2I] products, where a backend keeps them)
  DeviceArray<float> row_weight;                 // [T·K]
  DeviceArray<int32_t> token_rows;               // [T·K]
  DeviceArray<ExpertRows> groups;                // [E]
  DeviceArray<int32_t> totals;                   // [2]
  DeviceArray<int32_t> head_rows;                // [T]: row of `last`, or -1
  DeviceArray<float> last, logits;               // [out rows, H], [out rows, V]
  DeviceArray<float> attn_work;                  // f32_sdpa_sinks's workspace (sdpa_workspace_floats)

  // Where every device array is now: a captured launch sequence stays valid while these stay put.
  std::vector<const void*> buffers() const {
    return {tokens.data(), positions.data(), panel_row.data(), seqs.data(), blocks.data(), h.data(), t.data(), q.data(),
            k.data(), v.data(), attn.data(), proj.data(), router.data(), expert_idx.data(), expert_w.data(), xs.data(),
            u.data(), z.data(), y.data(), row_weight.data(), token_rows.data(), groups.data(), totals.data(),
            head_rows.data(), last.data(), logits.data(), attn_work.data()};
  }
};

Transformer::Transformer(std::shared_ptr<const ModelWeights> w, const OpSet& ops, AllReduce* all_reduce)
    : w_(std::move(w)), ops_(ops), all_reduce_(all_reduce), inv_freq_dev_(ops.memory),
      scratch_(std::make_unique<Scratch>(ops.memory)) {
  inv_freq_ = yarn_inv_freq(w_->config, &concentration_);
  inv_freq_dev_.assign(inv_freq_);
}

Transformer::~Transformer() = default;

int Transformer::logit_rows() const { return scratch_->out_rows; }
const float* Transformer::logits() const { return scratch_->logits.data(); }

// Dense products over the step's rows: one job per run of rows that share a path, all in one group.
struct Product {
  const float* x;  // [T, l.w.cols]
  const Linear& l;
  float* out;  // row stride ldo
  int64_t ldo;
};

// Weights held in 8 bits (the q8 dense-weight mode) are read in 8 bits; a group's products share one form.
// bf16 weights: fp32 activations in exact precision, split into two bf16 in serving precision.
void Transformer::dense(Scratch& s, std::initializer_list<Product> products) const {
  s.dense_jobs.clear();
  s.dense_q8_jobs.clear();
  for (const auto& r : s.runs)
    for (const Product& p : products) {
      const float* x = p.x + r.begin * p.l.w.cols;
      const float* bias = p.l.bias.empty() ? nullptr : p.l.bias.data();
      float* out = p.out + r.begin * p.ldo;
      if (p.l.q8.codes) s.dense_q8_jobs.push_back({x, r.count, p.l.q8, bias, out, p.ldo, r.path});
      else s.dense_jobs.push_back({x, r.count, p.l.w, bias, out, p.ldo, r.path});
    }
  const auto bf16w = precision_ == Precision::Serving ? ops_.bf16x2_bf16w_matmul : ops_.f32_bf16w_matmul;
  if (!s.dense_jobs.empty()) bf16w(s.dense_jobs.data(), static_cast<int>(s.dense_jobs.size()));
  if (!s.dense_q8_jobs.empty()) ops_.q8_q8w_matmul(s.dense_q8_jobs.data(), static_cast<int>(s.dense_q8_jobs.size()));
}

void Transformer::attention_block(int l, Scratch& s, KvCache& kv) const {
  const ModelConfig& c = w_->config;
  const AttentionWeights& a = w_->layers[l].attn;
  const int T = s.T, H = c.hidden, D = c.head_dim;
  const int hq = static_cast<int>(a.q.w.rows) / D, hkv = static_cast<int>(a.k.w.rows) / D;
  double t0 = Profile::now();
  ops_.f32_rmsnorm(s.h.data(), T, H, a.norm.data(), c.rms_eps, s.t.data());
  dense(s, {{s.t.data(), a.q, s.q.data(), hq * D}, {s.t.data(), a.k, s.k.data(), hkv * D}, {s.t.data(), a.v, s.v.data(), hkv * D}});
  ops_.f32_rope(s.q.data(), T, hq, D, hq * D, s.positions.data(), inv_freq_dev_.data(), concentration_);
  ops_.f32_rope(s.k.data(), T, hkv, D, hkv * D, s.positions.data(), inv_freq_dev_.data(), concentration_);
  g_profile.add(0, t0);
  t0 = Profile::now();
  const KvLayer layer = kv.layer(l);
  const AttnSeq* seqs = w_->layers[l].sliding ? s.sliding_seqs : s.full_seqs;
  const int window = w_->layers[l].sliding ? c.sliding_window : 0;
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  ops_.f32_sdpa_sinks(s.q.data(), hq * D, s.k.data(), s.v.data(), hkv * D, seqs, s.num_seqs, layer, hq, a.sinks.data(), scale,
                      window, s.attn.data(), hq * D, s.attn_work.data());
  ops_.f32_kv_store(s.k.data(), s.v.data(), hkv * D, seqs, s.num_seqs, layer);
  g_profile.add(1, t0);
  t0 = Profile::now();
  dense(s, {{s.attn.data(), a.o, s.proj.data(), H}});
  g_profile.add(2, t0);
  t0 = Profile::now();
  if (all_reduce_) all_reduce_->sum(s.proj.data(), static_cast<int64_t>(T) * H);
  g_profile.add(8, t0);
  ops_.f32_add(s.h.data(), s.proj.data(), static_cast<int64_t>(T) * H);
}

void Transformer::mlp_block(int l, Scratch& s) const {
  const ModelConfig& c = w_->config;
  const MoEWeights& m = w_->layers[l].moe;
  const int T = s.T, H = c.hidden, E = c.num_experts, K = c.experts_per_token, I = c.intermediate;
  double t0 = Profile::now();
  ops_.f32_rmsnorm(s.h.data(), T, H, m.norm.data(), c.rms_eps, s.t.data());
  dense(s, {{s.t.data(), m.router, s.router.data(), E}});
  ops_.f32_router_topk(s.router.data(), T, E, K, s.expert_idx.data(), s.expert_w.data());
  g_profile.add(3, t0);
  t0 = Profile::now();
  // Each local expert's tokens as consecutive rows (streamed rows first, then the rows of long prefill
  // chunks); W1 of every local expert with the SwiGLU folded in, then W2, each one launch over the
  // routing groups where moe_route left them; the weighted rows are added back per token.
  ops_.moe_route(s.expert_idx.data(), s.expert_w.data(), T, K, E, m.local_of_global.data(), s.panel_row.data(),
                 MoeRoute{s.row_weight.data(), s.token_rows.data(), s.groups.data(), s.totals.data()});
  ops_.f32_scatter_rows(s.t.data(), H, s.token_rows.data(), T, K, s.xs.data());
  g_profile.add(6, t0);
  t0 = Profile::now();
  const auto experts = precision_ == Precision::Serving ? ops_.q8_mxfp4w_moe : ops_.f32_mxfp4w_moe;
  const int max_groups = std::min(E, T * K);
  const int panel_tokens = s.expert_panel_tokens;
  MoeMatmul w1{s.xs.data(), s.groups.data(), s.totals.data(), max_groups, m.w1_table.data(), 2ll * I, H, s.z.data()};
  w1.swiglu = true;
  w1.limit = c.swiglu_limit;
  w1.alpha = c.swiglu_alpha;
  w1.wide = s.u.data();
  w1.max_panel_rows = panel_tokens * K;
  experts(w1);
  MoeMatmul w2{s.z.data(), s.groups.data(), s.totals.data(), max_groups, m.w2_table.data(), H, I, s.y.data()};
  w2.max_panel_rows = panel_tokens * K;
  experts(w2);
  g_profile.add(4, t0);
  t0 = Profile::now();
  ops_.f32_moe_combine(s.y.data(), H, s.token_rows.data(), s.row_weight.data(), T, K, s.proj.data());
  g_profile.add(7, t0);
  t0 = Profile::now();
  if (all_reduce_) all_reduce_->sum(s.proj.data(), static_cast<int64_t>(T) * H);
  g_profile.add(8, t0);
  ops_.f32_add(s.h.data(), s.proj.data(), static_cast<int64_t>(T) * H);
}

// Checks the step's chunks against the cache and uploads what the ops read about them: positions,
// each row's path, and the sequences' block tables.
void Transformer::plan(const std::vector<SeqChunk>& seqs, KvCache& kv, Scratch& s) const {
  const ModelConfig& c = w_->config;
  std::vector<int32_t> positions, blocks;
  std::vector<uint8_t> panel_row;
  std::vector<AttnSeq> attn;  // full, then sliding; blocks as offsets into `blocks` until uploaded
  s.runs.clear();
  s.expert_panel_tokens = 0;
  int row = 0;
  s.out_rows = 0;
  for (const SeqChunk& q : seqs) {
    check(q.num_tokens > 0 && q.pos_begin >= 0, gptoss_status_invalid_argument, "step: empty sequence chunk");
    check(q.pos_begin + q.num_tokens <= c.max_positions, gptoss_status_context_overflow, "step: position past the context length");
    const int need = (q.pos_begin + q.num_tokens + kv.block_size() - 1) / kv.block_size();
    check(static_cast<int>(q.full_blocks.size()) >= need, gptoss_status_invalid_argument,
          "step: block table has " + std::to_string(q.full_blocks.size()) + " blocks, positions need " + std::to_string(need));
    check(static_cast<int>(q.sliding_blocks.size()) >= need, gptoss_status_invalid_argument,
          "step: sliding block table has " + std::to_string(q.sliding_blocks.size()) + " blocks, positions need " + std::to_string(need));
    for (int32_t b : q.full_blocks)
      check((b >= 0 && b < kv.num_full_blocks()) || (b >= 0 && b == kv.pad_block()), gptoss_status_invalid_argument,
            "step: full block id out of range");
    // Sliding layers read positions from pos_begin − window + 1 on: those blocks must be present.
    const int first_live = std::max(0, q.pos_begin - kv.window() + 1) / kv.block_size();
    for (int i = 0; i < static_cast<int>(q.sliding_blocks.size()); ++i) {
      const int32_t b = q.sliding_blocks[i];
      check((b == -1 && i < first_live) || (b >= 0 && (b < kv.num_sliding_blocks() || b == kv.pad_sliding_block())),
            gptoss_status_invalid_argument,
            "step: sliding block " + std::to_string(i) + " (id " + std::to_string(b) + ") is missing or out of range");
    }
    for (int i = 0; i < q.num_tokens; ++i) positions.push_back(q.pos_begin + i);
    const bool expert_panel = q.num_tokens >= kPanelChunkTokens;
    const RowPath path = q.num_tokens >= kDensePanelChunkTokens ? RowPath::Panel : RowPath::Stream;
    panel_row.insert(panel_row.end(), q.num_tokens, expert_panel);
    s.expert_panel_tokens += expert_panel ? q.num_tokens : 0;
    if (!s.runs.empty() && s.runs.back().path == path) s.runs.back().count += q.num_tokens;
    else s.runs.push_back({row, q.num_tokens, path});
    row += q.num_tokens;
    s.out_rows += q.all_logits ? q.num_tokens : 1;
  }
  for (bool sliding : {false, true}) {
    row = 0;
    for (const SeqChunk& q : seqs) {
      const auto& table = sliding ? q.sliding_blocks : q.full_blocks;
      attn.push_back({row, q.num_tokens, q.pos_begin, nullptr, static_cast<int>(table.size())});
      blocks.insert(blocks.end(), table.begin(), table.end());
      row += q.num_tokens;
    }
  }
  check(row == s.T, gptoss_status_invalid_argument, "step: token count does not match the sequence chunks");
  // Room for every table at full context, so the array stays put as contexts grow (a captured step
  // keeps its address).
  const int max_blocks = (c.max_positions + kv.block_size() - 1) / kv.block_size();
  s.blocks.reserve(std::max(blocks.size(), 2 * seqs.size() * static_cast<size_t>(max_blocks)));
  const int32_t* device_blocks = s.blocks.assign(blocks);
  for (AttnSeq& a : attn) {
    a.blocks = device_blocks;
    device_blocks += a.num_blocks;
  }
  s.num_seqs = static_cast<int>(seqs.size());
  s.full_seqs = s.seqs.assign(attn);
  s.sliding_seqs = s.full_seqs + seqs.size();
  s.positions.assign(positions);
  s.panel_row.assign(panel_row);
  plan_head(seqs, s);
}

// Which rows reach the head: the last row of each sequence, or all of them with all_logits; a long
// chunk's rows take the panel path when all of them are wanted. Uploaded with the rest of the plan, so
// the launches of a step read nothing the host writes while they run.
void Transformer::plan_head(const std::vector<SeqChunk>& seqs, Scratch& s) const {
  std::vector<int32_t> dest(s.T, -1);  // row of `last` for each wanted row of h
  s.head_runs.clear();
  int o = 0, row = 0;
  for (const SeqChunk& q : seqs) {
    const int first = q.all_logits ? row : row + q.num_tokens - 1, n = row + q.num_tokens - first;
    const RowPath path = q.all_logits && q.num_tokens >= kPanelChunkTokens ? RowPath::Panel : RowPath::Stream;
    if (!s.head_runs.empty() && s.head_runs.back().path == path) s.head_runs.back().count += n;
    else s.head_runs.push_back({o, n, path});
    for (int r = first; r < row + q.num_tokens; ++r) dest[r] = o++;
    row += q.num_tokens;
  }
  s.head_rows.assign(dest);
}

// Only the rows whose logits are wanted (plan_head) go through the final norm and the (large) unembedding.
void Transformer::head(Scratch& s) const {
  const ModelConfig& c = w_->config;
  const int H = c.hidden;
  float* last = s.last.data();
  ops_.f32_scatter_rows(s.h.data(), H, s.head_rows.data(), s.T, 1, last);
  ops_.f32_rmsnorm(last, s.out_rows, H, w_->final_norm.data(), c.rms_eps, last);
  float* logits = s.logits.data();
  for (const auto& r : s.head_runs) {
    const float* x = last + r.begin * static_cast<int64_t>(H);
    float* out = logits + r.begin * static_cast<int64_t>(c.vocab);
    if (w_->lm_head_q8.codes) {
      const DenseQ8Matmul job{x, r.count, w_->lm_head_q8, nullptr, out, c.vocab, r.path};
      ops_.q8_q8w_matmul(&job, 1);
    } else if (precision_ == Precision::Serving) {
      const DenseMatmul job{x, r.count, w_->lm_head, nullptr, out, c.vocab, r.path};
      ops_.bf16x2_bf16w_matmul(&job, 1);
    } else {
      ops_.f32_bf16w_unembed(x, r.count, w_->lm_head, out, r.path);
    }
  }
}

const float* Transformer::forward(const std::vector<int32_t>& tokens, const std::vector<SeqChunk>& seqs, KvCache& kv) {
  prepare(tokens, seqs, kv);
  launch(kv);
  return logits();
}

void Transformer::prepare(const std::vector<int32_t>& tokens, const std::vector<SeqChunk>& seqs, KvCache& kv) {
  const ModelConfig& c = w_->config;
  Scratch& s = *scratch_;
  const int T = static_cast<int>(tokens.size()), H = c.hidden, D = c.head_dim;
  s.T = T;
  plan(seqs, kv, s);
  s.tokens.assign(tokens);

  const ShardInfo& sh = w_->shard;
  const size_t hq = sh.q_head_end - sh.q_head_begin, hkv = sh.kv_head_end - sh.kv_head_begin;
  const size_t rows = static_cast<size_t>(T), routed = rows * c.experts_per_token;  // every (token, expert) pair gets its own row
  for (auto* a : {&s.h, &s.t, &s.proj}) a->reserve(rows * H);
  for (auto* a : {&s.q, &s.attn}) a->reserve(rows * hq * D);
  for (auto* a : {&s.k, &s.v}) a->reserve(rows * hkv * D);
  s.router.reserve(rows * c.num_experts);
  s.expert_idx.reserve(routed);
  s.expert_w.reserve(routed);
  s.token_rows.reserve(routed);
  s.row_weight.reserve(routed);
  s.groups.reserve(c.num_experts);
  s.totals.reserve(2);
  s.xs.reserve(routed * H);
  s.u.reserve(routed * 2 * c.intermediate);
  s.z.reserve(routed * c.intermediate);
  s.y.reserve(routed * H);
  s.last.reserve(static_cast<size_t>(s.out_rows) * H);
  s.logits.reserve(static_cast<size_t>(s.out_rows) * c.vocab);
  s.attn_work.reserve(ops_.sdpa_workspace_floats(s.num_seqs, static_cast<int>(hq), D));
}

std::vector<const void*> Transformer::buffers() const { return scratch_->buffers(); }

void Transformer::launch(KvCache& kv) const {
  const ModelConfig& c = w_->config;
  Scratch& s = *scratch_;
  ops_.bf16w_embed(w_->embed, s.tokens.data(), s.T, s.h.data());
  for (int l = 0; l < c.num_layers; ++l) {
    attention_block(l, s, kv);
    mlp_block(l, s);
  }
  const double t_head = Profile::now();
  head(s);
  g_profile.add(5, t_head);
  g_profile.step_done();
}

}  // namespace gptoss
