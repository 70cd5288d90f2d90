// moe_experts.cpp — MoeMatmul on the CPU: the routing groups are host memory here, so the products are
// the grouped expert launchers (moe_mxfp4_matmul.cpp / moe_mxfp4_q8_matmul.cpp), one job per group and
// path, run as one parallel region; SwiGLU follows over the routed rows.
#include <vector>

#include "../core/error.h"
#include "ops.h"

namespace gptoss::cpu {

void f32_mxfp4w_matmul(const ExpertMatmul* jobs, int num_jobs);
void q8_mxfp4w_matmul(const ExpertMatmul* jobs, int num_jobs);
void f32_swiglu_oai(const float* u, int n, int I, float limit, float alpha, float* z);

// kernels
static void moe(const MoeMatmul& p, void (*products)(const ExpertMatmul*, int)) {
  const int num_groups = p.totals[0], rows = p.totals[1];
  thread_local std::vector<ExpertMatmul> jobs;
  // The [2I] products of a SwiGLU projection land in p.wide before they are folded to [I].
  float* out = p.swiglu ? p.wide : p.out;
  check(out != nullptr, gptoss_status_invalid_argument, "mxfp4 moe: swiglu needs its wide scratch");
  jobs.clear();
  for (int g = 0; g < num_groups; ++g) {
    const ExpertRows& r = p.groups[g];
    const ExpertProj& e = p.experts[r.slot];
    const int counts[2] = {r.streamed, r.n - r.streamed};
    for (int part = 0, begin = r.begin; part < 2; begin += counts[part], ++part) {
      if (counts[part] == 0) continue;
      jobs.push_back({p.x + begin * p.cols, counts[part], e.w, e.bias, out + begin * p.rows, part ? RowPath::Panel : RowPath::Stream});
    }
  }
  products(jobs.data(), static_cast<int>(jobs.size()));
  if (p.swiglu) f32_swiglu_oai(p.wide, rows, static_cast<int>(p.rows / 2), p.limit, p.alpha, p.out);
}

// launchers
void f32_mxfp4w_moe(const MoeMatmul& p) { moe(p, f32_mxfp4w_matmul); }
void q8_mxfp4w_moe(const MoeMatmul& p) { moe(p, q8_mxfp4w_matmul); }

}  // namespace gptoss::cpu
