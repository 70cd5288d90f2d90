// kv_cache.cuh — addressing in the paged KV pool (KvLayer): block b holds K then V, each
// [kv_heads][block_size][head_dim] elements of kv.type (fp32, bf16 raw bits, or e4m3 codes with a scale
// per row in kv.scales); AttnSeq.blocks maps position / block_size to b. Loads widen to fp32 and stores
// round to nearest even (core/bf16.h's and core/fp8.h's rounding), so the ops above compute in fp32
// whatever the pool holds. An fp8 row is stored whole (kv_store.cu), since its scale depends on all of it.
#pragma once

#include "../../core/fp8.h"
#include "../../cpu/ops.h"
#include "common.cuh"

namespace gptoss::cuda::GPTOSS_CUDA_NS {

// Element index of (pos, head) in the pool: K, or V with `value`.
__device__ __forceinline__ int64_t kv_index(const KvLayer& kv, const AttnSeq& s, int pos, int head, bool value) {
  const int64_t block = s.blocks[pos / kv.block_size];
  const int slot = pos % kv.block_size;
  const int64_t half = static_cast<int64_t>(kv.kv_heads) * kv.block_size * kv.head_dim;
  return block * 2 * half + (value ? half : 0) + (static_cast<int64_t>(head) * kv.block_size + slot) * kv.head_dim;
}

// fp32 and bf16 pools.
__device__ __forceinline__ float kv_load(const KvLayer& kv, int64_t i) {
  return kv.type == KvType::BF16 ? bf16_bits_to_f32(static_cast<const uint16_t*>(kv.pool)[i]) : static_cast<const float*>(kv.pool)[i];
}

// An fp8 pool's row scale (row_at: the row's first element index), read once per row so the
// per-element load (kv_load_fp8) stays a code conversion and a multiply.
__device__ __forceinline__ float kv_row_scale(const KvLayer& kv, int64_t row_at) { return kv.scales[row_at / kv.head_dim]; }

__device__ __forceinline__ float kv_load_fp8(const KvLayer& kv, int64_t i, float row_scale) {
  return e4m3_to_f32(static_cast<const uint8_t*>(kv.pool)[i]) * row_scale;
}

// Round-to-nearest-even, NaN kept quiet: the same bits as core/bf16.h's f32_to_bf16.
__device__ __forceinline__ uint16_t f32_to_bf16_bits(float f) {
  uint32_t bits = __float_as_uint(f);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}

// fp32 and bf16 pools only: an fp8 row is stored whole.
__device__ __forceinline__ void kv_put(const KvLayer& kv, int64_t i, float x) {
  if (kv.type == KvType::BF16) static_cast<uint16_t*>(kv.pool)[i] = f32_to_bf16_bits(x);
  else static_cast<float*>(kv.pool)[i] = x;
}

}  // namespace gptoss::cuda::GPTOSS_CUDA_NS
