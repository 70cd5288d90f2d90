// ops_ref.cpp — see ops_ref.h.
#include "ops_ref.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

namespace gptoss::ref {

std::vector<double> rmsnorm(const std::vector<double>& x, int T, int H, const std::vector<double>& g, double eps) {
  std::vector<double> y(x.size());
  for (int t = 0; t < T; ++t) {
    double ss = 0;
    for (int i = 0; i < H; ++i) ss += x[t * H + i] * x[t * H + i];
    const double r = 1.0 / std::sqrt(ss / H + eps);
    for (int i = 0; i < H; ++i) y[t * H + i] = x[t * H + i] * r * g[i];
  }
  return y;
}

std::vector<double> matmul(const std::vector<double>& x, int T, int K, const std::vector<double>& w, int N,
                           const std::vector<double>* bias) {
  std::vector<double> y(static_cast<size_t>(T) * N);
  for (int t = 0; t < T; ++t)
    for (int n = 0; n < N; ++n) {
      double s = bias ? (*bias)[n] : 0.0;
      for (int k = 0; k < K; ++k) s += x[t * K + k] * w[static_cast<size_t>(n) * K + k];
      y[static_cast<size_t>(t) * N + n] = s;
    }
  return y;
}

std::vector<double> rope(const std::vector<double>& x, int T, int heads, int D, const std::vector<int>& pos,
                         const std::vector<double>& inv_freq, double c) {
  std::vector<double> y(x);
  const int half = D / 2;
  for (int t = 0; t < T; ++t)
    for (int h = 0; h < heads; ++h)
      for (int f = 0; f < half; ++f) {
        const double a = pos[t] * inv_freq[f];
        const size_t o = (static_cast<size_t>(t) * heads + h) * D;
        const double x1 = x[o + f], x2 = x[o + half + f];
        y[o + f] = x1 * std::cos(a) * c - x2 * std::sin(a) * c;
        y[o + half + f] = x2 * std::cos(a) * c + x1 * std::sin(a) * c;
      }
  return y;
}

std::vector<double> sdpa_sinks(const std::vector<double>& q, const std::vector<double>& k, const std::vector<double>& v,
                               int T, int Hq, int Hkv, int D, const std::vector<double>& sinks, double scale, int window) {
  std::vector<double> out(static_cast<size_t>(T) * Hq * D, 0.0);
  const int G = Hq / Hkv;
  for (int i = 0; i < T; ++i)
    for (int h = 0; h < Hq; ++h) {
      const int kvh = h / G;
      std::vector<double> s;
      std::vector<int> js;
      for (int j = 0; j <= i; ++j) {
        if (window > 0 && i - j >= window) continue;
        double d = 0;
        for (int e = 0; e < D; ++e) d += q[(static_cast<size_t>(i) * Hq + h) * D + e] * k[(static_cast<size_t>(j) * Hkv + kvh) * D + e];
        s.push_back(d * scale);
        js.push_back(j);
      }
      double m = sinks[h];
      for (double x : s) m = std::max(m, x);
      double z = std::exp(sinks[h] - m);
      for (double x : s) z += std::exp(x - m);
      for (size_t n = 0; n < s.size(); ++n) {
        const double p = std::exp(s[n] - m) / z;
        for (int e = 0; e < D; ++e) out[(static_cast<size_t>(i) * Hq + h) * D + e] += p * v[(static_cast<size_t>(js[n]) * Hkv + kvh) * D + e];
      }
    }
  return out;
}

void router_topk(const std::vector<double>& logits, int T, int E, int k, std::vector<int>& idx, std::vector<double>& w) {
  idx.assign(static_cast<size_t>(T) * k, 0);
  w.assign(static_cast<size_t>(T) * k, 0.0);
  for (int t = 0; t < T; ++t) {
    std::vector<int> order(E);
    for (int e = 0; e < E; ++e) order[e] = e;
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return logits[t * E + a] > logits[t * E + b]; });
    double z = 0;
    for (int j = 0; j < k; ++j) z += std::exp(logits[t * E + order[j]] - logits[t * E + order[0]]);
    for (int j = 0; j < k; ++j) {
      idx[t * k + j] = order[j];
      w[t * k + j] = std::exp(logits[t * E + order[j]] - logits[t * E + order[0]]) / z;
    }
  }
}

std::vector<double> dequant_mxfp4(const uint8_t* blocks, const uint8_t* scales, int rows, int cols) {
  static const double kValue[16] = {0, 0.5, 1, 1.5, 2, 3, 4, 6, -0.0, -0.5, -1, -1.5, -2, -3, -4, -6};
  const int nb = cols / 32;
  std::vector<double> w(static_cast<size_t>(rows) * cols);
  for (int r = 0; r < rows; ++r)
    for (int g = 0; g < nb; ++g)
      for (int k = 0; k < 32; ++k) {
        const uint8_t byte = blocks[(static_cast<size_t>(r) * nb + g) * 16 + k / 2];
        const int code = k % 2 == 0 ? (byte & 0x0F) : (byte >> 4);
        w[static_cast<size_t>(r) * cols + 32 * g + k] = kValue[code] * std::pow(2.0, static_cast<int>(scales[r * nb + g]) - 127);
      }
  return w;
}

std::vector<double> swiglu(const std::vector<double>& u, int n, int I, double limit, double alpha) {
  std::vector<double> z(static_cast<size_t>(n) * I);
  for (int t = 0; t < n; ++t)
    for (int i = 0; i < I; ++i) {
      const double gate = std::min(u[static_cast<size_t>(t) * 2 * I + 2 * i], limit);
      const double up = std::clamp(u[static_cast<size_t>(t) * 2 * I + 2 * i + 1], -limit, limit);
      z[static_cast<size_t>(t) * I + i] = gate / (1 + std::exp(-alpha * gate)) * (up + 1);
    }
  return z;
}

std::vector<double> add(const std::vector<double>& y, const std::vector<double>& x) {
  std::vector<double> out(y.size());
  for (size_t i = 0; i < y.size(); ++i) out[i] = y[i] + x[i];
  return out;
}

Routed moe_route(const std::vector<int32_t>& idx, const std::vector<float>& w, int T, int K, int E,
                 const std::vector<int>& local_of_global, const std::vector<uint8_t>& panel_row) {
  std::vector<std::vector<std::pair<int, int>>> routed(E);  // expert -> (token, choice)
  for (int t = 0; t < T; ++t)
    for (int j = 0; j < K; ++j) routed[idx[t * K + j]].emplace_back(t, j);
  Routed out;
  out.token_rows.assign(static_cast<size_t>(T) * K, -1);
  int rows = 0;
  for (int e = 0; e < E; ++e) {
    auto& mine = routed[e];
    if (local_of_global[e] < 0 || mine.empty()) continue;
    const auto mid = std::stable_partition(mine.begin(), mine.end(), [&](const auto& r) { return panel_row[r.first] == 0; });
    const int n = static_cast<int>(mine.size()), streamed = static_cast<int>(mid - mine.begin());
    out.groups.push_back({e, local_of_global[e], rows, streamed, n});
    for (const auto& [t, j] : mine) {
      out.token_rows[t * K + j] = static_cast<int>(out.row_weight.size());
      out.row_weight.push_back(w[t * K + j]);
    }
    rows += n;
  }
  return out;
}

std::vector<double> moe_combine(const std::vector<double>& y, int H, const std::vector<int>& token_rows,
                                const std::vector<float>& row_weight, int T, int K) {
  std::vector<double> out(static_cast<size_t>(T) * H, 0.0);
  for (int t = 0; t < T; ++t)
    for (int j = 0; j < K; ++j) {
      const int r = token_rows[t * K + j];
      if (r < 0) continue;
      for (int d = 0; d < H; ++d) out[static_cast<size_t>(t) * H + d] += row_weight[r] * y[static_cast<size_t>(r) * H + d];
    }
  return out;
}

namespace {

// The settings' value of each allowed id: bias, then the penalties.
std::vector<double> processed(const std::vector<float>& logits, const SamplingParams& p) {
  std::vector<double> x(logits.begin(), logits.end());
  for (int k = 0; k < p.num_bias; ++k) x[p.bias_ids[k]] += p.bias_values[k];
  std::set<int> seen(p.prompt, p.prompt + p.num_prompt);
  seen.insert(p.output, p.output + p.num_output);
  if (p.repetition_penalty != 1.0f)
    for (int id : seen) x[id] = x[id] > 0 ? x[id] / p.repetition_penalty : x[id] * p.repetition_penalty;
  std::map<int, int> count;
  for (int k = 0; k < p.num_output; ++k) ++count[p.output[k]];
  for (const auto& [id, n] : count) x[id] -= p.presence_penalty + static_cast<double>(p.frequency_penalty) * n;
  return x;
}

}  // namespace

SampleRef sample(const std::vector<float>& logits, const SamplingParams& p) {
  const int V = static_cast<int>(logits.size());
  std::vector<int> ids;  // allowed, ascending
  for (int i = 0; i < V; ++i)
    if (p.allowed == nullptr || ((p.allowed[i / 32] >> (i % 32)) & 1u)) ids.push_back(i);
  SampleRef r;
  r.allowed = static_cast<int>(ids.size());
  double mx = -INFINITY, z = 0.0;
  for (int i : ids) mx = std::max(mx, static_cast<double>(logits[i]));
  for (int i : ids) z += std::exp(logits[i] - mx);
  r.logprobs.assign(V, -INFINITY);
  for (int i : ids) r.logprobs[i] = logits[i] - mx - std::log(z);
  r.top = ids;
  std::stable_sort(r.top.begin(), r.top.end(), [&](int a, int b) { return r.logprobs[a] > r.logprobs[b]; });
  r.top.resize(std::min<size_t>(r.top.size(), kMaxTopLogprobs));

  const std::vector<double> x = processed(logits, p);
  std::stable_sort(ids.begin(), ids.end(), [&](int a, int b) { return x[a] > x[b]; });
  if (ids.empty() || p.temperature <= 0.0f) {
    r.candidates.assign(ids.begin(), ids.begin() + std::min<size_t>(ids.size(), 1));
    return r;
  }
  size_t n = p.top_k > 0 ? std::min(ids.size(), static_cast<size_t>(p.top_k)) : ids.size();
  std::vector<double> prob(n);
  for (size_t k = 0; k < n; ++k) prob[k] = std::exp((x[ids[k]] - x[ids[0]]) / p.temperature);
  while (n > 1 && prob[n - 1] < p.min_p * prob[0]) --n;
  double total = 0.0, cum = 0.0;
  for (size_t k = 0; k < n; ++k) total += prob[k];
  size_t keep = 0;  // the shortest prefix holding top_p of the mass
  while (keep < n && cum < p.top_p * total) cum += prob[keep++];
  r.candidates.assign(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(keep));
  return r;
}

}  // namespace gptoss::ref
