// device_sampler.h — sampling where the logits are, for device backends (cuda:N, cuda-emu): each
// sampled sequence's SamplingParams arrays (bias ids and values, prompt, output, allowed-token mask) go
// up into a workspace this class owns (grown as needed, reused across steps), the backend's f32_sample
// draws from the row where the forward pass left it, and only the SampleResults come back. Masks are
// checked by the caller (allowed_tokens): the device op cannot fail on their contents.
#pragma once

#include <cstdint>
#include <vector>

#include "../cpu/ops.h"

namespace gptoss {

// One row to sample: a device pointer to its logits and the host-side settings.
struct SampleRequest {
  const float* row;
  const SamplingParams* params;
  uint64_t counter;
};

class DeviceSampler {
 public:
  explicit DeviceSampler(const OpSet& ops);

  // One result per request, in order (valid until the next call). A result with non_finite ≥ 0 names
  // the row's first NaN or ±Inf; the caller fails the step.
  const std::vector<SampleResult>& sample(int V, const std::vector<SampleRequest>& requests);

 private:
  const OpSet& ops_;
  DeviceArray<int32_t> ids_;      // per request: bias ids, prompt, output, one after another
  DeviceArray<float> values_;     // per request: bias values
  DeviceArray<uint32_t> masks_;   // mask_words(V) per request slot, sized for the batch (not per mask)
  DeviceArray<uint8_t> scratch_;  // the op's scratch row, sample_scratch_bytes(V), reused by every call
  DeviceArray<SampleResult> results_;
  std::vector<int32_t> host_ids_;
  std::vector<float> host_values_;
  std::vector<uint32_t> host_masks_;
  std::vector<SampleResult> host_results_;
};

}  // namespace gptoss
