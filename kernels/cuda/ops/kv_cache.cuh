// kv_cache.cuh — addressing in the paged KV pool (KvLayer): block b holds K then V, each
// [kv_heads][block_size][head_dim] fp32; AttnSeq.blocks maps position / block_size to b.
#pragma once

#include "../../cpu/ops.h"
#include "common.cuh"

namespace gptoss::cuda::GPTOSS_CUDA_NS {

__device__ __forceinline__ float* kv_slot(const KvLayer& kv, const AttnSeq& s, int pos, int head, bool value) {
  const int64_t block = s.blocks[pos / kv.block_size];
  const int slot = pos % kv.block_size;
  const int64_t half = static_cast<int64_t>(kv.kv_heads) * kv.block_size * kv.head_dim;
  return kv.pool + block * 2 * half + (value ? half : 0) + (static_cast<int64_t>(head) * kv.block_size + slot) * kv.head_dim;
}

}  // namespace gptoss::cuda::GPTOSS_CUDA_NS
