// engine.h — one engine: a model shard, its paged KV cache, and the backend that runs its ops. The Engine
// owns what a step is beyond the forward pass: the busy lock (one step at a time), the lockstep plan a
// leader broadcasts to its followers, the finite-logits check, the logits copy and the sampling (on the
// device for device backends). The backend (an OpSet) is chosen once, at creation; nothing else in the
// runtime names a backend. Decode steps replay captured launch graphs where the backend has them
// (decode_graphs.h).
// It knows nothing about the C ABI (runtime/c_api.cpp wraps it) or about scheduling and tokenization.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "../comm/communicator.h"
#include "../model/gpt_oss.h"
#include "decode_graphs.h"
#include "device_sampler.h"
#include "lockstep.h"

namespace gptoss {

enum class DenseWeights { BF16, Q8, Q8Attention };

struct EngineOptions {
  int block_size = 16;
  int num_full_blocks = 0;
  int num_sliding_blocks = 0;
  // "cpu", "cuda:N" (fails with invalid_argument "backend not built" in a build without CUDA or without
  // device N) or "cuda-emu" (the CUDA op set run on the CPU by the emulator).
  std::string backend = "cpu";
  std::shared_ptr<comm::Communicator> comm;  // null: a single rank
  // Decode steps replayed from captured graphs (runtime/decode_graphs.h): 0 = the backend's default
  // (on for cuda:N, off elsewhere), 1 = on where the backend can (cuda:N, cuda-emu), -1 = off. A group of
  // several ranks runs eagerly either way.
  int decode_graphs = 0;
  KvType kv_type = KvType::F32;
  // Q8: the unembedding converted to 8 bits at creation and read so (model/weights.h quantize_dense);
  // Q8Attention: the attention projections too; BF16: as the checkpoint holds them.
  DenseWeights dense = DenseWeights::BF16;
  // CPU backend: copy the weights out of the checkpoint's mapping once, into anonymous memory in 2 MiB
  // huge pages (cpu::resident_memory), instead of reading the page cache's 4 KiB pages. Device backends
  // copy into their own memory either way.
  bool resident_weights = false;
  // The numerics the engine starts in (set_precision changes them). With resident weights on the cpu
  // backend, Serving also places the dense matrices as Rows16 where cpu::resident_dense_layout() and
  // cpu::resident_q8_layout() say so.
  Precision precision = Precision::Exact;
};

// One sequence of a step as the engine runs it.
struct StepSeq {
  SeqChunk chunk;
  bool return_logits = false;
  const SamplingParams* sampling = nullptr;  // null: no token is sampled
  uint64_t counter = 0;                      // index of the token being sampled
};

// The OpSet a backend name stands for; throws invalid_argument for unknown or unbuilt backends.
const OpSet& select_backend(const std::string& backend);

class Engine {
 public:
  Engine(std::shared_ptr<const ModelWeights> weights, const EngineOptions& options);

  const char* backend() const { return ops_.name; }
  const ModelConfig& config() const { return weights_->config; }
  const DecodeGraphs& graphs() const { return graphs_; }
  const KvCache& kv() const { return kv_; }

  // Fails with invalid_state while a step runs. The decode graphs, which captured the old numerics, are
  // dropped.
  void set_precision(Precision p);
  // Leader or single rank. logits receives the return_logits rows, in order (capacity in floats);
  // samples[i] is written for each sequence with sampling (samples may be null when none has).
  void step(const std::vector<int32_t>& tokens, const std::vector<StepSeq>& seqs, float* logits, size_t logits_capacity,
            SampleResult* samples);
  // Followers (rank > 0): run the leader's steps until it sends stop.
  void follow();
  // Leader: a plan with no step (keepalive) or the end of following (stop); a no-op elsewhere, and
  // while a step runs (the followers are busy with it anyway).
  void send_plan(lockstep::PlanKind kind);

 private:
  bool leads() const { return comm_ && comm_->world() > 1 && comm_->rank() == 0; }
  void sample_and_copy(const float* out, const std::vector<StepSeq>& seqs, float* logits, size_t logits_capacity,
                       SampleResult* samples) const;
  void sample_on_device(const float* out, const std::vector<StepSeq>& seqs, float* logits, size_t logits_capacity,
                        SampleResult* samples);

  const OpSet& ops_;  // first: the weights are placed in its memory
  const int device_;  // N of cuda:N (made current on the thread of each step), or -1
  std::shared_ptr<const ModelWeights> weights_;
  std::shared_ptr<comm::Communicator> comm_;
  Transformer transformer_;
  DecodeGraphs graphs_;
  KvCache kv_;
  DeviceSampler sampler_;  // device backends: samples the rows where they are
  std::mutex busy_;  // one step at a time per engine
};

}  // namespace gptoss
