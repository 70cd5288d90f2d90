// kv_store.cu — writes this step's k/v rows into the paged cache: one block per sequence, threads over
// (token, kv head, d), rounding to bf16 where the pool holds bf16. `seqs` (and each block table) is read
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

// launchers
void f32_kv_store(const float* k_new, const float* v_new, int64_t ldkv, const AttnSeq* seqs, int num_seqs, const KvLayer& kv) {
  if (num_seqs <= 0) return;
  EMU_LAUNCH(kv_store_kernel, dim3(num_seqs), dim3(128), 0, emu_stream_t{}, k_new, v_new, ldkv, seqs, kv);
  dev_check_launch("kv_store_kernel");
}

}  // namespace gptoss::cuda::GPTOSS_CUDA_NS
