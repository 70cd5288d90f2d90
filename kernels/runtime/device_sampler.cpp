// device_sampler.cpp — see device_sampler.h. The op calls are queued on the backend's stream one after
// another (they share one scratch row); the single download of the results waits for all of them.
#include "device_sampler.h"

namespace gptoss {

namespace {

void append(std::vector<int32_t>& to, const int32_t* from, int n) {
  if (n > 0) to.insert(to.end(), from, from + n);
}

}  // namespace

DeviceSampler::DeviceSampler(const OpSet& ops)
    : ops_(ops), ids_(ops.memory), values_(ops.memory), masks_(ops.memory), scratch_(ops.memory), results_(ops.memory) {}

const std::vector<SampleResult>& DeviceSampler::sample(int V, const std::vector<SampleRequest>& requests) {
  const size_t words = mask_words(V);
  host_ids_.clear();
  host_values_.clear();
  host_masks_.clear();
  for (const SampleRequest& r : requests) {
    const SamplingParams& p = *r.params;
    append(host_ids_, p.bias_ids, p.num_bias);
    append(host_ids_, p.prompt, p.num_prompt);
    append(host_ids_, p.output, p.num_output);
    if (p.num_bias > 0) host_values_.insert(host_values_.end(), p.bias_values, p.bias_values + p.num_bias);
    if (p.allowed != nullptr) host_masks_.insert(host_masks_.end(), p.allowed, p.allowed + words);
  }
  const int32_t* ids = ids_.assign(host_ids_);
  const float* values = values_.assign(host_values_);
  // A slot for every request, so the array grows with the largest batch only, not with how many masks
  // a step happens to carry; the masks fill its first slots. Steps without masks leave it alone.
  uint32_t* masks = nullptr;
  if (!host_masks_.empty()) {
    masks = masks_.reserve(requests.size() * words);
    ops_.memory.upload(masks, host_masks_.data(), host_masks_.size() * sizeof(uint32_t));
  }
  void* scratch = scratch_.reserve(sample_scratch_bytes(V));
  SampleResult* results = results_.reserve(requests.size());
  size_t at = 0, value_at = 0, mask_at = 0;
  for (size_t k = 0; k < requests.size(); ++k) {
    SamplingParams p = *requests[k].params;  // the same settings, pointing into the workspace
    p.bias_ids = ids + at, p.bias_values = values + value_at;
    at += p.num_bias > 0 ? p.num_bias : 0, value_at += p.num_bias > 0 ? p.num_bias : 0;
    p.prompt = ids + at;
    at += p.num_prompt > 0 ? p.num_prompt : 0;
    p.output = ids + at;
    at += p.num_output > 0 ? p.num_output : 0;
    if (p.allowed != nullptr) p.allowed = masks + mask_at, p.allowed_words = static_cast<int>(words), mask_at += words;
    p.scratch = scratch;
    ops_.f32_sample(requests[k].row, V, p, requests[k].counter, results + k);
  }
  host_results_.resize(requests.size());
  results_.download(host_results_.data(), requests.size());
  return host_results_;
}

}  // namespace gptoss
