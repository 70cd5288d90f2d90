// matmul.cpp — dense linear layers with bf16 weights (QKV, attention out, router, lm_head).
// out[t][n] = Σ_k x[t][k]·w[n][k] + b[n], fp32 accumulation.
// Register-blocked over R weight rows × C tokens: each weight vector is widened from bf16 once and used
// for C tokens, each activation vector once for R rows. Threads split the output rows, so every weight
// row is read once per step for all T tokens. Variants: AVX-512, AVX2, scalar (picked by simd_level()).
#include <immintrin.h>

#include <algorithm>

#include <vector>

#include "bf16_rows16.h"
#include "gemm_f32.h"
#include "ops.h"
#include "simd.h"

namespace gptoss::cpu {

// kernels
namespace {

constexpr int R = 4;  // weight rows per tile
constexpr int C = 6;  // tokens per tile, at most: AVX-512 takes 6 (24 accumulators of its 32 registers;
                      // 4 ran 15–20 % slower at 16 tokens in the kernel lab), AVX2 4 (of 16 registers)

struct Tile {
  const bf16_t* w;  // row r0
  int64_t ld, K;    // ld: elements from one row of the tile to the next
  int64_t next;     // elements from this tile's first row to the next tile's (software prefetch)
  const float* x;  // token t0
  int64_t ldx;
  int nr, nc;  // rows / tokens actually in this tile (≤ R, ≤ C)
  float* acc;  // [R][C]
};

void tile_scalar(const Tile& t) {
  for (int r = 0; r < t.nr; ++r)
    for (int c = 0; c < t.nc; ++c) {
      float s = 0.0f;
      for (int64_t k = 0; k < t.K; ++k) s += bf16_to_f32(t.w[r * t.ld + k]) * t.x[c * t.ldx + k];
      t.acc[r * C + c] = s;
    }
}

__attribute__((target("avx2,fma"))) inline __m256 widen8(const bf16_t* p) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))), 16));
}

__attribute__((target("avx2,fma"))) inline float hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

template <int NR, int NC>
__attribute__((target("avx2,fma"))) void tile_avx2_fixed(const Tile& t) {
  __m256 acc[NR][NC];
  for (int r = 0; r < NR; ++r)
    for (int c = 0; c < NC; ++c) acc[r][c] = _mm256_setzero_ps();
  const int64_t K8 = t.K & ~int64_t{7};
  for (int64_t k = 0; k < K8; k += 8) {
    __m256 w[NR];
    for (int r = 0; r < NR; ++r) w[r] = widen8(t.w + r * t.ld + k);
    for (int c = 0; c < NC; ++c) {
      const __m256 xv = _mm256_loadu_ps(t.x + c * t.ldx + k);
      for (int r = 0; r < NR; ++r) acc[r][c] = _mm256_fmadd_ps(w[r], xv, acc[r][c]);
    }
  }
  for (int r = 0; r < NR; ++r)
    for (int c = 0; c < NC; ++c) {
      float s = hsum8(acc[r][c]);
      for (int64_t k = K8; k < t.K; ++k) s += bf16_to_f32(t.w[r * t.ld + k]) * t.x[c * t.ldx + k];
      t.acc[r * C + c] = s;
    }
}

__attribute__((target("avx512f,avx512bw,avx512vl,fma"))) inline __m512 widen16(const bf16_t* p) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))), 16));
}

__attribute__((target("avx512f,avx512bw,avx512vl,fma"))) inline __m512 widen16_masked(const bf16_t* p, __mmask16 m) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p)), 16));
}

template <int NR, int NC>
__attribute__((target("avx512f,avx512bw,avx512vl,fma"))) void tile_avx512_fixed(const Tile& t) {
  __m512 acc[NR][NC];
  for (int r = 0; r < NR; ++r)
    for (int c = 0; c < NC; ++c) acc[r][c] = _mm512_setzero_ps();
  const int64_t K16 = t.K & ~int64_t{15};
  for (int64_t k = 0; k < K16; k += 16) {
    __m512 w[NR];
    if ((k & 31) == 0)
      for (int r = 0; r < NR; ++r) _mm_prefetch(reinterpret_cast<const char*>(t.w + t.next + r * t.ld + k), _MM_HINT_T0);
    for (int r = 0; r < NR; ++r) w[r] = widen16(t.w + r * t.ld + k);
    for (int c = 0; c < NC; ++c) {
      const __m512 xv = _mm512_loadu_ps(t.x + c * t.ldx + k);
      for (int r = 0; r < NR; ++r) acc[r][c] = _mm512_fmadd_ps(w[r], xv, acc[r][c]);
    }
  }
  if (K16 < t.K) {
    const __mmask16 m = static_cast<__mmask16>((1u << (t.K - K16)) - 1);
    __m512 w[NR];
    for (int r = 0; r < NR; ++r) w[r] = widen16_masked(t.w + r * t.ld + K16, m);
    for (int c = 0; c < NC; ++c) {
      const __m512 xv = _mm512_maskz_loadu_ps(m, t.x + c * t.ldx + K16);
      for (int r = 0; r < NR; ++r) acc[r][c] = _mm512_fmadd_ps(w[r], xv, acc[r][c]);
    }
  }
  for (int r = 0; r < NR; ++r)
    for (int c = 0; c < NC; ++c) t.acc[r * C + c] = _mm512_reduce_add_ps(acc[r][c]);
}

// Full row tiles take the fixed-size path for their token count (1..C); edge rows go one at a time.
template <template <int, int> class K>
void tile_dispatch(const Tile& t) {
  using Fn = void (*)(const Tile&);
  static constexpr Fn full[C + 1] = {nullptr, K<R, 1>::run, K<R, 2>::run, K<R, 3>::run, K<R, 4>::run, K<R, 5>::run, K<R, 6>::run};
  static constexpr Fn one[C + 1] = {nullptr, K<1, 1>::run, K<1, 2>::run, K<1, 3>::run, K<1, 4>::run, K<1, 5>::run, K<1, 6>::run};
  if (t.nr == R) return full[t.nc](t);
  for (int r = 0; r < t.nr; ++r) {
    float a[R * C];
    one[t.nc](Tile{t.w + r * t.ld, t.ld, t.K, t.next, t.x, t.ldx, 1, t.nc, a});
    for (int c = 0; c < t.nc; ++c) t.acc[r * C + c] = a[c];
  }
}

template <int NR, int NC>
struct Avx512Tile {
  static void run(const Tile& t) { tile_avx512_fixed<NR, NC>(t); }
};
template <int NR, int NC>
struct Avx2Tile {
  static void run(const Tile& t) { tile_avx2_fixed<NR, NC>(t); }
};

using TileFn = void (*)(const Tile&);

TileFn pick(Simd s) {
  switch (s) {
    case Simd::Avx512: return tile_dispatch<Avx512Tile>;
    case Simd::Avx2: return tile_dispatch<Avx2Tile>;
    case Simd::Scalar: return tile_scalar;
  }
  return tile_scalar;
}

}  // namespace

// Widens a panel of bf16 rows to fp32 for the packed GEMM.
__attribute__((target("avx512f,avx512bw,avx512vl,fma"))) void pack_bf16_panel(const bf16_t* w, int64_t ld, int rows, int64_t K,
                                                                               float* panel) {
  for (int r = 0; r < rows; ++r) {
    int64_t k = 0;
    for (; k + 16 <= K; k += 16) _mm512_storeu_ps(panel + r * K + k, widen16(w + r * ld + k));
    for (; k < K; ++k) panel[r * K + k] = bf16_to_f32(w[r * ld + k]);
  }
}

// launchers
// Work items of a group: a panel of kPanelRows rows (packed), or R streamed rows a quarter of the matrix
// apart (rows g, g + Q, g + 2Q, g + 3Q: each thread reads R separate sequential streams), then the rows past
// R·Q one at a time; over a Rows16 matrix, a group of 16 rows, unpacked, then streamed R rows at a time.
struct Item {
  int job;
  int nr;
  int64_t r0, stride;
};

namespace {

void list_items(const DenseMatmul* jobs, int num_jobs, Simd simd, std::vector<Item>& items) {
  items.clear();
  for (int j = 0; j < num_jobs; ++j) {
    const int64_t rows = jobs[j].w.rows;
    const bool panel = simd == Simd::Avx512 && jobs[j].path == RowPath::Panel;
    if (panel || jobs[j].w.layout == BF16Layout::Rows16) {
      const int n = panel ? kPanelRows : 16;
      for (int64_t r0 = 0; r0 < rows; r0 += n) items.push_back({j, static_cast<int>(std::min<int64_t>(n, rows - r0)), r0, 1});
      continue;
    }
    const int64_t q = rows / R;
    for (int64_t g = 0; g < q; ++g) items.push_back({j, R, g, q});
    for (int64_t r = R * q; r < rows; ++r) items.push_back({j, 1, r, 1});
  }
}

// Rows r0, r0 + stride, … (nr of them, R at a time) of w (row stride ld) for all of m's tokens.
void stream_rows(TileFn tile, int tokens, const DenseMatmul& m, const bf16_t* w, int64_t ld, int64_t r0, int64_t stride, int nr) {
  const int64_t K = m.w.cols;
  for (int rr = 0; rr < nr; rr += R) {
    const int n = std::min(R, nr - rr);
    const int64_t first = r0 + rr * stride;
    const float* bias = m.bias ? m.bias + first : nullptr;
    for (int t0 = 0; t0 < m.T; t0 += tokens) {
      const int nc = std::min(tokens, m.T - t0);
      float acc[R * C];
      tile(Tile{w + rr * stride * ld, stride * ld, K, ld, m.x + static_cast<int64_t>(t0) * K, K, n, nc, acc});
      for (int r = 0; r < n; ++r)
        for (int c = 0; c < nc; ++c) m.out[(t0 + c) * m.ldo + first + r * stride] = acc[r * C + c] + (bias ? bias[r * stride] : 0.0f);
    }
  }
}

}  // namespace

void f32_bf16w_matmul(const DenseMatmul* jobs, int num_jobs) {
  const Simd simd = simd_level();
  thread_local std::vector<Item> items;
  list_items(jobs, num_jobs, simd, items);
  const TileFn tile = pick(simd);
  const int tokens = simd == Simd::Avx512 ? C : 4;  // per tile
  // Packed path: each job's activations transposed once (xT[k][t]) for the broadcast microkernel.
  thread_local std::vector<std::vector<float>> transposed;
  if (static_cast<int>(transposed.size()) < num_jobs) transposed.resize(num_jobs);
  for (int j = 0; j < num_jobs; ++j) {
    const DenseMatmul& m = jobs[j];
    if (simd != Simd::Avx512 || m.path != RowPath::Panel) continue;
    if (j > 0 && jobs[j - 1].x == m.x && jobs[j - 1].T == m.T && jobs[j - 1].w.cols == m.w.cols) {
      transposed[j] = transposed[j - 1];  // QKV share their input
      continue;
    }
    transposed[j].resize(transposed_size(m.T, m.w.cols));
    transpose_activations(m.x, m.T, m.w.cols, transposed[j].data());
  }
  const auto* xTs = transposed.data();
  const int64_t count = static_cast<int64_t>(items.size());
  const auto* list = items.data();
#pragma omp parallel
  {
    thread_local std::vector<float> panel;
    thread_local std::vector<bf16_t> unpacked;
#pragma omp for schedule(static)
    for (int64_t i = 0; i < count; ++i) {
      const auto [j, nr, r0, stride] = list[i];
      const DenseMatmul& m = jobs[j];
      const int64_t K = m.w.cols;
      if (simd == Simd::Avx512 && m.path == RowPath::Panel) {
        const BF16Rows w = bf16_rows_of(m.w, r0, nr, unpacked);
        panel.resize(static_cast<size_t>(kPanelRows) * K);
        pack_bf16_panel(w.data, w.ld, nr, K, panel.data());
        gemm_panel_avx512(panel.data(), nr, K, xTs[j].data(), m.T, m.out + r0, m.ldo, m.bias ? m.bias + r0 : nullptr);
      } else if (m.w.layout == BF16Layout::Rows16) {
        const BF16Rows w = bf16_rows_of(m.w, r0, nr, unpacked);
        stream_rows(tile, tokens, m, w.data, w.ld, r0, 1, nr);
      } else {
        stream_rows(tile, tokens, m, m.w.data + r0 * m.w.ld, m.w.ld, r0, stride, nr);
      }
    }
  }
}

void f32_bf16w_unembed(const float* x, int T, const MatrixBF16& w, float* logits, RowPath path) {
  const DenseMatmul job{x, T, w, nullptr, logits, w.rows, path};
  f32_bf16w_matmul(&job, 1);
}

}  // namespace gptoss::cpu
