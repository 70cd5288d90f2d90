// engine.cpp — Engine: backend selection, the step (lockstep broadcast, forward, finite check, logits copy,
// sampling) and following. On the CPU backend the rows are host memory and are checked, copied and
// sampled there; on device backends (cuda:N, cuda-emu) the op set's f32_sample draws on the device
// (DeviceSampler) and only the results come back, plus the rows of sequences that return logits.
// Errors are gptoss::Error with the C ABI's status codes.
#include "engine.h"

#include <cmath>
#include <cstring>
#include <exception>
#include <mutex>
#include <utility>
#include <vector>

#include "../core/error.h"
#include "../cuda/cuda_device.h"
#include "../cuda/ops/cuda_ops.h"

namespace gptoss {

namespace {

// Index of the first NaN or ±Inf in x, or n. A float is not finite exactly when its exponent bits are
// all ones; comparing them as integers and OR-ing the results vectorizes on baseline SSE2 (~28 GB/s,
// ~30 µs for a 201,088-logit row: under 0.1 % of that row's lm_head, which reads 1.2 GB of weights).
size_t first_non_finite(const float* x, size_t n) {
  constexpr uint32_t kExponent = 0x7f800000u;
  uint32_t any = 0;
  for (size_t i = 0; i < n; ++i) {
    uint32_t bits;
    std::memcpy(&bits, x + i, sizeof bits);
    any |= static_cast<uint32_t>((bits & kExponent) == kExponent);
  }
  if (any == 0) return n;
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(x[i])) return i;
  }
  return n;
}

// A step whose logits are not finite fails as a whole with numeric_error, before anything is sampled
// or copied out: NaN logits would otherwise come back as null logprobs or a sampled token 0.
[[noreturn]] void fail_non_finite(size_t seq, size_t row, size_t at, float v) {
  fail(gptoss_status_numeric_error, "engine_step: sequence " + std::to_string(seq) + " row " + std::to_string(row) +
                                        " has a non-finite logit (" + (std::isnan(v) ? "NaN" : v > 0 ? "+Inf" : "-Inf") +
                                        " at token " + std::to_string(at) + "): the weights or config.json are broken");
}

void check_finite_logits(const float* rows, size_t num_rows, int V, size_t seq) {
  for (size_t r = 0; r < num_rows; ++r) {
    const size_t at = first_non_finite(rows + r * V, static_cast<size_t>(V));
    if (at != static_cast<size_t>(V)) fail_non_finite(seq, r, at, rows[r * V + at]);
  }
}

// The caller's side of a sampled sequence: a samples buffer, token ids inside the vocabulary, and a mask
// (if any) that covers the vocabulary and allows some token (device ops cannot fail on its contents).
void check_sampling(const SamplingParams& p, const SampleResult* samples, int V) {
  allowed_tokens(p, V);
  check(samples != nullptr, gptoss_status_invalid_argument, "engine_step: samples buffer is null");
  for (int k = 0; k < p.num_prompt; ++k) check(p.prompt[k] >= 0 && p.prompt[k] < V, gptoss_status_invalid_argument, "engine_step: prompt token out of range");
  for (int k = 0; k < p.num_output; ++k) check(p.output[k] >= 0 && p.output[k] < V, gptoss_status_invalid_argument, "engine_step: output token out of range");
  for (int k = 0; k < p.num_bias; ++k) check(p.bias_ids[k] >= 0 && p.bias_ids[k] < V, gptoss_status_invalid_argument, "sample: logit_bias token out of range");
}

// N of "cuda:N", or -1.
int cuda_ordinal(const std::string& backend) {
  if (backend.rfind("cuda:", 0) != 0 || backend.size() == 5 || backend.size() > 8) return -1;
  for (size_t i = 5; i < backend.size(); ++i)
    if (backend[i] < '0' || backend[i] > '9') return -1;
  return std::stoi(backend.substr(5));
}

size_t logit_rows(const StepSeq& s) { return s.chunk.all_logits ? static_cast<size_t>(s.chunk.num_tokens) : 1; }

}  // namespace

const OpSet& select_backend(const std::string& backend) {
  if (backend == "cpu") return cpu_ops();
  if (backend == "cuda-emu") return cuda::emulated::cuda_ops();
  const int ordinal = cuda_ordinal(backend);
  check(ordinal >= 0, gptoss_status_invalid_argument, "engine_create: unknown backend '" + backend + "' (expected cpu, cuda-emu or cuda:N)");
  return cuda::device_ops(ordinal);
}

Engine::Engine(std::shared_ptr<const ModelWeights> weights, const EngineOptions& options)
    : ops_(select_backend(options.backend)),
      device_(cuda_ordinal(options.backend)),
      weights_(place_weights(options.dense == DenseWeights::BF16 ? std::move(weights)
                                                                 : quantize_dense(std::move(weights), options.dense == DenseWeights::Q8Attention),
                             options.resident_weights && ops_.memory.host_is_device ? cpu::resident_memory() : ops_.memory,
                             options.resident_weights && &ops_ == &cpu_ops()
                                 ? WeightLayouts{cpu::resident_expert_layout(),
                                                 options.precision == Precision::Serving ? cpu::resident_dense_layout() : BF16Layout::Rows,
                                                 options.precision == Precision::Serving ? cpu::resident_q8_layout() : Q8Layout::Runs}
                                 : WeightLayouts{})),
      comm_(options.comm),
      transformer_(weights_, ops_, comm_ && comm_->world() > 1 ? comm_.get() : nullptr),
      graphs_(ops_, (options.decode_graphs > 0 || (options.decode_graphs == 0 && device_ >= 0)) && !(comm_ && comm_->world() > 1)),
      kv_(weights_->config, weights_->shard, options.block_size, options.num_full_blocks, options.num_sliding_blocks, ops_.memory,
          graphs_.enabled(), options.kv_type),
      sampler_(ops_) {
  transformer_.set_precision(options.precision);
  // The model all-reduces its activations where they are: on a GPU that needs a communicator that
  // takes device buffers. (cuda-emu's "device" memory is host memory, so Gloo serves it.)
  check(device_ < 0 || !comm_ || comm_->world() == 1 || comm_->device_buffers(), gptoss_status_unsupported_argument,
        "engine_create: backend '" + options.backend + "' with " + std::to_string(comm_ ? comm_->world() : 1) +
            " ranks needs an NCCL communicator (Gloo takes host buffers only)");
}

void Engine::set_precision(Precision p) {
  std::unique_lock lock(busy_, std::try_to_lock);
  check(lock.owns_lock(), gptoss_status_invalid_state, "engine_set_precision: a step is running on this engine");
  transformer_.set_precision(p);
  graphs_.clear();
}

void Engine::step(const std::vector<int32_t>& tokens, const std::vector<StepSeq>& seqs, float* logits, size_t logits_capacity,
                  SampleResult* samples) {
  // A leader may be sending its followers a keepalive plan: wait for it (microseconds). Anything else
  // overlapping a step is a caller bug.
  std::unique_lock lock(busy_, std::defer_lock);
  if (leads()) lock.lock();
  else lock.try_lock();
  check(lock.owns_lock(), gptoss_status_invalid_state, "engine_step: a step is already running on this engine");
  if (device_ >= 0) cuda::use_device(device_);
  check(!comm_ || comm_->rank() == 0, gptoss_status_invalid_state,
        "engine_step: rank " + std::to_string(comm_ ? comm_->rank() : 0) + " follows the leader's steps (engine_follow)");
  // Before any work (and before the followers are told to run it): a bad setting fails the step untouched.
  for (const StepSeq& s : seqs)
    if (s.sampling != nullptr) check_sampling(*s.sampling, samples, weights_->config.vocab);
  std::vector<SeqChunk> chunks;
  chunks.reserve(seqs.size());
  for (const StepSeq& s : seqs) chunks.push_back(s.chunk);
  if (leads()) lockstep::send(*comm_, lockstep::PlanKind::step, tokens, chunks);
  const float* out = graphs_.run(transformer_, kv_, tokens, chunks) ? transformer_.logits() : transformer_.forward(tokens, chunks, kv_);
  if (ops_.memory.host_is_device) sample_and_copy(out, seqs, logits, logits_capacity, samples);
  else sample_on_device(out, seqs, logits, logits_capacity, samples);
}

// Device backends: the sampled rows are drawn from where they are; only the results come back, and the
// logit rows only of the sequences that return them. Failures keep the host path's order and messages
// (the first sequence with a non-finite row, its first row and token), as far as the rows looked at go:
// a sampled sequence's earlier all_logits rows are looked at only when it returns them.
void Engine::sample_on_device(const float* out, const std::vector<StepSeq>& seqs, float* logits, size_t logits_capacity,
                              SampleResult* samples) {
  const int V = weights_->config.vocab;
  std::vector<SampleRequest> requests;
  std::vector<size_t> request_of(seqs.size(), 0);
  for (size_t i = 0, row = 0; i < seqs.size(); row += logit_rows(seqs[i]), ++i) {
    if (seqs[i].sampling == nullptr) continue;
    request_of[i] = requests.size();
    requests.push_back({out + (row + logit_rows(seqs[i]) - 1) * V, seqs[i].sampling, seqs[i].counter});
  }
  const std::vector<SampleResult>& results = sampler_.sample(V, requests);
  size_t written = 0;
  for (size_t i = 0, row = 0; i < seqs.size(); row += logit_rows(seqs[i]), ++i) {
    const size_t rows = logit_rows(seqs[i]);
    if (seqs[i].return_logits) {
      check(logits != nullptr && written + rows * V <= logits_capacity, gptoss_status_invalid_argument,
            "engine_step: logits buffer too small (" + std::to_string(logits_capacity) + " floats)");
      ops_.memory.download(logits + written, out + row * V, rows * V * sizeof(float));
      check_finite_logits(logits + written, rows, V, i);
      written += rows * V;
    }
    const int at = seqs[i].sampling != nullptr ? results[request_of[i]].non_finite : -1;
    if (at < 0) continue;
    float v;
    ops_.memory.download(&v, out + (row + rows - 1) * V + at, sizeof v);
    fail_non_finite(i, rows - 1, static_cast<size_t>(at), v);
  }
  for (size_t i = 0; i < seqs.size(); ++i)
    if (seqs[i].sampling != nullptr) samples[i] = results[request_of[i]];
}

void Engine::sample_and_copy(const float* out, const std::vector<StepSeq>& seqs, float* logits,
                             size_t logits_capacity, SampleResult* samples) const {
  const int V = weights_->config.vocab;
  for (size_t i = 0, row = 0; i < seqs.size(); ++i) {
    const size_t rows = logit_rows(seqs[i]);
    if (seqs[i].return_logits || seqs[i].sampling != nullptr) check_finite_logits(out + row * V, rows, V, i);
    row += rows;
  }
  size_t row = 0, written = 0;
  std::vector<std::pair<size_t, const float*>> sampled;  // (sequence, its last logits row)
  for (size_t i = 0; i < seqs.size(); ++i) {
    const StepSeq& s = seqs[i];
    const size_t rows = logit_rows(s);
    const float* first = out + row * V;
    if (s.return_logits) {
      check(logits != nullptr && written + rows * V <= logits_capacity, gptoss_status_invalid_argument,
            "engine_step: logits buffer too small (" + std::to_string(logits_capacity) + " floats)");
      std::memcpy(logits + written, first, rows * V * sizeof(float));
      written += rows * V;
    }
    if (s.sampling != nullptr) sampled.emplace_back(i, first + (rows - 1) * V);
    row += rows;
  }
  // Each draw depends only on its own row and settings, so rows are drawn in parallel (a draw over a
  // full vocabulary at temperature costs milliseconds); the first error is rethrown after the loop.
  std::exception_ptr failed;
  std::mutex failed_lock;
#pragma omp parallel for schedule(dynamic) if (sampled.size() > 1)
  for (size_t k = 0; k < sampled.size(); ++k) {
    const size_t i = sampled[k].first;
    try {
      ops_.f32_sample(sampled[k].second, V, *seqs[i].sampling, seqs[i].counter, &samples[i]);
    } catch (...) {
      std::lock_guard guard(failed_lock);
      if (!failed) failed = std::current_exception();
    }
  }
  if (failed) std::rethrow_exception(failed);
}

void Engine::follow() {
  check(comm_ && comm_->rank() > 0, gptoss_status_invalid_state, "engine_follow: only ranks > 0 follow");
  std::unique_lock lock(busy_, std::try_to_lock);
  check(lock.owns_lock(), gptoss_status_invalid_state, "engine_follow: the engine is busy");
  if (device_ >= 0) cuda::use_device(device_);
  std::vector<int32_t> tokens;
  std::vector<SeqChunk> seqs;
  for (;;) {
    const auto kind = lockstep::receive(*comm_, tokens, seqs);
    if (kind == lockstep::PlanKind::stop) return;
    if (kind == lockstep::PlanKind::step) transformer_.forward(tokens, seqs, kv_);
  }
}

void Engine::send_plan(lockstep::PlanKind kind) {
  if (!leads()) return;
  std::unique_lock lock(busy_, std::try_to_lock);
  if (!lock.owns_lock()) return;  // a step is running: the followers are busy anyway
  lockstep::send(*comm_, kind, {}, {});
}

}  // namespace gptoss
