// ops_table.cpp — the CPU backend's OpSet: one entry per op file in cpu/.
#include "ops.h"

namespace gptoss {
namespace cpu {
void bf16w_embed(const MatrixBF16&, const int32_t*, int, float*);
void f32_rmsnorm(const float*, int, int, const float*, float, float*);
void f32_bf16w_matmul(const DenseMatmul*, int);
void bf16x2_bf16w_matmul(const DenseMatmul*, int);
void f32_rope(float*, int, int, int, int64_t, const int32_t*, const float*, float);
void f32_sdpa_sinks(const float*, int64_t, const float*, const float*, int64_t, const AttnSeq*, int, const KvLayer&, int,
                    const float*, float, int, float*, int64_t, float*);
void f32_kv_store(const float*, const float*, int64_t, const AttnSeq*, int, const KvLayer&);
void f32_router_topk(const float*, int, int, int, int32_t*, float*);
void q8_q8w_matmul(const DenseQ8Matmul*, int);
void f32_mxfp4w_matmul(const ExpertMatmul*, int);
void q8_mxfp4w_matmul(const ExpertMatmul*, int);
void f32_swiglu_oai(const float*, int, int, float, float, float*);
void f32_bf16w_unembed(const float*, int, const MatrixBF16&, float*, RowPath);
void f32_add(float*, const float*, int64_t);
void f32_mxfp4w_moe(const MoeMatmul&);
void q8_mxfp4w_moe(const MoeMatmul&);
void* host_alloc(size_t);
void host_release(void*);
void host_copy(void*, const void*, size_t);
void host_zero(void*, size_t);
void moe_route(const int32_t*, const float*, int, int, int, const int32_t*, const uint8_t*, const MoeRoute&);
void f32_scatter_rows(const float*, int, const int32_t*, int, int, float*);
void f32_moe_combine(const float*, int, const int32_t*, const float*, int, int, float*);
void f32_sample(const float*, int, const SamplingParams&, uint64_t, SampleResult*);
size_t no_workspace(int, int, int) { return 0; }
}  // namespace cpu

const OpSet& cpu_ops() {
  static const OpSet ops{
      "cpu",
      {true, cpu::host_alloc, cpu::host_release, cpu::host_copy, cpu::host_copy, cpu::host_zero},
      cpu::bf16w_embed,
      cpu::f32_rmsnorm,
      cpu::f32_bf16w_matmul,
      cpu::bf16x2_bf16w_matmul,
      cpu::f32_rope,
      cpu::f32_sdpa_sinks,
      cpu::f32_kv_store,
      cpu::f32_router_topk,
      cpu::q8_q8w_matmul,
      cpu::f32_mxfp4w_matmul,
      cpu::q8_mxfp4w_matmul,
      cpu::f32_swiglu_oai,
      cpu::f32_bf16w_unembed,
      cpu::f32_add,
      cpu::moe_route,
      cpu::f32_scatter_rows,
      cpu::f32_moe_combine,
      cpu::f32_mxfp4w_moe,
      cpu::q8_mxfp4w_moe,
      cpu::f32_sample,
      cpu::no_workspace,
      {nullptr, nullptr, nullptr, nullptr},
  };
  return ops;
}

}  // namespace gptoss
