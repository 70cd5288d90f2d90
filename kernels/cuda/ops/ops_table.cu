// ops_table.cu — the CUDA backend's OpSet ("cuda" under nvcc, "cuda-emu" under the emulator): one entry
// per op file in this folder. An entry without a CUDA op must throw "not implemented on cuda yet" (never
// fall back to the CPU, which would read device pointers on the host) and stay out of kReady, which
// cuda_op_ready (and so test_ops) reads. Every entry has one now.
#include <cstring>
#include <string>

#include "../../core/error.h"
#include "common.cuh"
#include "cuda_ops.h"

namespace gptoss::cuda::GPTOSS_CUDA_NS {
void bf16w_embed(const MatrixBF16&, const int32_t*, int, float*);
void f32_rmsnorm(const float*, int, int, const float*, float, float*);
void f32_rope(float*, int, int, int, int64_t, const int32_t*, const float*, float);
void f32_router_topk(const float*, int, int, int, int32_t*, float*);
void f32_swiglu_oai(const float*, int, int, float, float, float*);
void f32_bf16w_matmul(const DenseMatmul*, int);
void bf16x2_bf16w_matmul(const DenseMatmul*, int);
void q8_q8w_matmul(const DenseQ8Matmul*, int);
void f32_mxfp4w_matmul(const ExpertMatmul*, int);
void q8_mxfp4w_matmul(const ExpertMatmul*, int);
void f32_kv_store(const float*, const float*, int64_t, const AttnSeq*, int, const KvLayer&);
void f32_sdpa_sinks(const float*, int64_t, const float*, const float*, int64_t, const AttnSeq*, int, const KvLayer&, int,
                    const float*, float, int, float*, int64_t, float*);
size_t sdpa_workspace_floats(int, int, int);
void* graph_begin();
void graph_end(void*);
void graph_replay(void*);
void graph_release(void*);
void f32_bf16w_unembed(const float*, int, const MatrixBF16&, float*, RowPath);
void f32_add(float*, const float*, int64_t);
void f32_mxfp4w_moe(const MoeMatmul&);
void q8_mxfp4w_moe(const MoeMatmul&);
void* device_alloc(size_t);
void device_release(void*);
void device_copy(void*, const void*, size_t);
void device_zero(void*, size_t);
void moe_route(const int32_t*, const float*, int, int, int, const int32_t*, const uint8_t*, const MoeRoute&);
void f32_scatter_rows(const float*, int, const int32_t*, int, int, float*);
void f32_moe_combine(const float*, int, const int32_t*, const float*, int, int, float*);
void f32_sample(const float*, int, const SamplingParams&, uint64_t, SampleResult*);

namespace {
const char* const kReady[] = {"bf16w_embed", "f32_rmsnorm", "f32_rope", "f32_router_topk", "f32_swiglu_oai",
                              "f32_bf16w_matmul", "bf16x2_bf16w_matmul", "f32_bf16w_unembed", "q8_q8w_matmul", "f32_mxfp4w_matmul", "q8_mxfp4w_matmul",
                              "f32_kv_store", "f32_sdpa_sinks", "f32_add", "moe_route", "f32_scatter_rows",
                              "f32_moe_combine", "f32_mxfp4w_moe", "q8_mxfp4w_moe", "f32_sample"};
}  // namespace

bool cuda_op_ready(const char* entry) {
  for (const char* name : kReady)
    if (std::strcmp(name, entry) == 0) return true;
  return false;
}

const OpSet& cuda_ops() {
  static const OpSet ops{
#if defined(__CUDACC__)
      "cuda",
#else
      "cuda-emu",
#endif
      {false, device_alloc, device_release, device_copy, device_copy, device_zero},
      bf16w_embed,
      f32_rmsnorm,
      f32_bf16w_matmul,
      bf16x2_bf16w_matmul,
      f32_rope,
      f32_sdpa_sinks,
      f32_kv_store,
      f32_router_topk,
      q8_q8w_matmul,
      f32_mxfp4w_matmul,
      q8_mxfp4w_matmul,
      f32_swiglu_oai,
      f32_bf16w_unembed,
      f32_add,
      moe_route,
      f32_scatter_rows,
      f32_moe_combine,
      f32_mxfp4w_moe,
      q8_mxfp4w_moe,
      f32_sample,
      sdpa_workspace_floats,
      {graph_begin, graph_end, graph_replay, graph_release},
  };
  return ops;
}

}  // namespace gptoss::cuda::GPTOSS_CUDA_NS
