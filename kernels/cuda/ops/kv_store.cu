// kv_store.cu — writes this step's k/v rows into the paged cache: one block per sequence, threads over
// (token, kv head, d), rounding to bf16 where the pool holds bf16; for an fp8 pool one warp per row
// (its amax sets the scale, core/fp8.h), so codes and scales are the CPU op's bit for bit. `seqs` (and each block table) is read
// by the kernel: under nvcc it must be device-resident (a later step copies the step's AttnSeq array up);
// the KvLayer is passed by value.
#include "kv_cache.cuh"

namespace gptoss::cuda::GPTOSS_CUDA_NS {

// kernels
__global__ void kv_store_kernel(const float* __restrict__ k_new, const float* __restrict__ v_new, int64_t ldkv,
                                const AttnSeq* __restrict__ seqs, KvLayer kv) {
  const AttnSeq s = seqs[blockIdx.x];
  const int D = kv.head_dim;
  const int64_t per_token = static_cast<int64_t>(kv.kv_heads) * D;
  for (int64_t i = threadIdx.x; i < s.num_tokens * per_token; i += blockDim.x) {
    const int t = static_cast<int>(i / per_token), h = static_cast<int>(i % per_token) / D, d = static_cast<int>(i % D);
    const int64_t src = static_cast<int64_t>(s.token_begin + t) * ldkv + static_cast<int64_t>(h) * D + d;
    kv_put(kv, kv_index(kv, s, s.pos_begin + t, h, false) + d, k_new[src]);
    kv_put(kv, kv_index(kv, s, s.pos_begin + t, h, true) + d, v_new[src]);
  }
}

// One warp per cached row (token, kv head, K or V): the row's amax, then its codes and scale.
__global__ void kv_store_fp8_kernel(const float* __restrict__ k_new, const float* __restrict__ v_new, int64_t ldkv,
                                    const AttnSeq* __restrict__ seqs, KvLayer kv) {
  const AttnSeq s = seqs[blockIdx.x];
  const int D = kv.head_dim, lane = threadIdx.x % 32, warps = blockDim.x / 32;
  const int64_t rows = static_cast<int64_t>(s.num_tokens) * kv.kv_heads * 2;
  for (int64_t r = threadIdx.x / 32; r < rows; r += warps) {
    const bool value = r % 2 == 1;
    const int h = static_cast<int>(r / 2 % kv.kv_heads), t = static_cast<int>(r / 2 / kv.kv_heads);
    const float* x = (value ? v_new : k_new) + static_cast<int64_t>(s.token_begin + t) * ldkv + static_cast<int64_t>(h) * D;
    float amax = 0.0f;
    for (int d = lane; d < D; d += 32) {
      const float a = fabsf(x[d]);
      amax = a > amax ? a : amax;  // a NaN element stays out of the scale, as on the CPU
    }
    const float scale = fp8_row_scale(warp_max(amax));
    const int64_t at = kv_index(kv, s, s.pos_begin + t, h, value);
    for (int d = lane; d < D; d += 32) static_cast<uint8_t*>(kv.pool)[at + d] = fp8_encode(x[d], scale);
    if (lane == 0) kv.scales[at / D] = scale;
  }
}

// launchers
void f32_kv_store(const float* k_new, const float* v_new, int64_t ldkv, const AttnSeq* seqs, int num_seqs, const KvLayer& kv) {
  if (num_seqs <= 0) return;
  if (kv.type == KvType::FP8) {
    EMU_LAUNCH(kv_store_fp8_kernel, dim3(num_seqs), dim3(128), 0, emu_stream_t{}, k_new, v_new, ldkv, seqs, kv);
    dev_check_launch("kv_store_fp8_kernel");
    return;
  }
  EMU_LAUNCH(kv_store_kernel, dim3(num_seqs), dim3(128), 0, emu_stream_t{}, k_new, v_new, ldkv, seqs, kv);
  dev_check_launch("kv_store_kernel");
}

}  // namespace gptoss::cuda::GPTOSS_CUDA_NS
