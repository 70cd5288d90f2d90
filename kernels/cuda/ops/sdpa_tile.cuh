// sdpa_tile.cuh — what the attention kernels of sdpa_sinks.cu share: a tile of kKeyTile keys of one kv
// head staged in shared memory, and one warp's online-softmax update of up to S query vectors ("slots")
// against it. Lane j scores key j of the tile (a dot product over head_dim, in d order), so a score
// depends on nothing but q and k. Tiles start at multiples of kKeyTile in absolute position, and a key
// outside a slot's range weighs exactly 0 (its tile maximum is -inf, the rescale is exp(0) = 1), so a
// slot's result does not depend on which other slots share the block or which extra tiles it visits.
// Not here: grids, split-K partials and the sink's term (sdpa_sinks.cu).
#pragma once

#include "kv_cache.cuh"

namespace gptoss::cuda::GPTOSS_CUDA_NS {

constexpr int kKeyTile = 32;          // keys per staged tile: one per lane
constexpr int kMaxHeadDim = 128;      // at most 4 dims per lane
constexpr int kKtStride = kKeyTile + 1;  // the K tile is stored transposed; +1 keeps stores and reads conflict-free

struct AttnArgs {
  const float* q;
  int64_t ldq;
  const float* k_new;
  const float* v_new;
  int64_t ldkv;
  const AttnSeq* seqs;
  KvLayer kv;
  int q_heads;
  int group;  // q heads per kv head
  const float* sinks;
  float scale;
  int window;
  float* out;
  int64_t ldo;
  float* part_acc;  // decode split-K partials: [seq][q head][split][head_dim]
  float* part_ml;   // and their (m, l): [seq][q head][split][2]
};

// The first key a query at `pos` sees (sliding: the last `window` positions).
__device__ __forceinline__ int first_key(int pos, int window) { return window > 0 && pos - window + 1 > 0 ? pos - window + 1 : 0; }

// A block's share of the heads of one kv head: blockIdx.y = kv head · head_blocks + i serves q heads
// [first, first + count), at most `per_block` of them.
struct HeadBlock {
  int kvh, first, count;
};
__device__ __forceinline__ HeadBlock head_block(const AttnArgs& a, int per_block) {
  const int blocks = (a.group + per_block - 1) / per_block;
  const int kvh = blockIdx.y / blocks, first = (blockIdx.y % blocks) * per_block;
  const int left = a.group - first;
  return {kvh, kvh * a.group + first, left < per_block ? left : per_block};
}

// Shared memory of one block: kt[d · kKtStride + j] = K[key0 + j][d], vt[j · D + d] = V[key0 + j][d],
// then the block's query vectors qs[slot · D + d].
struct Tile {
  float* kt;
  float* vt;
  float* qs;
};
inline size_t tile_smem_bytes(int D, int slots) {
  return sizeof(float) * (static_cast<size_t>(D) * kKtStride + static_cast<size_t>(kKeyTile) * D + static_cast<size_t>(slots) * D);
}
__device__ __forceinline__ Tile tile_views(float* smem, int D) { return {smem, smem + D * kKtStride, smem + D * kKtStride + kKeyTile * D}; }

// Stages keys [key0, key0 + kKeyTile) ∩ [lo, hi] of kv head `kvh`, the rest as zeros: a freed block or a
// row past the step must not be read, and a zero keeps p · v at 0 where the mask makes p = 0. A warp takes
// one key at a time, its lanes along head_dim: one address computation per key, coalesced loads.
__device__ void stage_tile(const AttnArgs& a, const AttnSeq& s, int kvh, int key0, int lo, int hi, Tile t) {
  const int D = a.kv.head_dim, lane = threadIdx.x % 32, warps = blockDim.x / 32;
  for (int j = threadIdx.x / 32; j < kKeyTile; j += warps) {
    const int pos = key0 + j;
    const bool live = pos >= lo && pos <= hi;
    const bool cached = live && pos < s.pos_begin;
    int64_t k_off = 0, v_off = 0;  // into the pool (cached positions) or k_new / v_new (this step's)
    if (cached) {
      k_off = kv_index(a.kv, s, pos, kvh, false);
      v_off = kv_index(a.kv, s, pos, kvh, true);
    } else if (live) {
      k_off = v_off = static_cast<int64_t>(s.token_begin + pos - s.pos_begin) * a.ldkv + static_cast<int64_t>(kvh) * D;
    }
    if (cached && a.kv.type == KvType::FP8) {  // its own loop: the scales stay out of the other paths' registers
      const float k_scale = kv_row_scale(a.kv, k_off), v_scale = kv_row_scale(a.kv, v_off);
      for (int d = lane; d < D; d += 32) {
        t.kt[d * kKtStride + j] = kv_load_fp8(a.kv, k_off + d, k_scale);
        t.vt[j * D + d] = kv_load_fp8(a.kv, v_off + d, v_scale);
      }
      continue;
    }
    for (int d = lane; d < D; d += 32) {
      t.kt[d * kKtStride + j] = cached ? kv_load(a.kv, k_off + d) : live ? a.k_new[k_off + d] : 0.0f;
      t.vt[j * D + d] = cached ? kv_load(a.kv, v_off + d) : live ? a.v_new[v_off + d] : 0.0f;
    }
  }
}

// Running softmax state of a warp's S slots: lane owns dims lane + 32·c, c < DC.
template <int S, int DC>
struct Slots {
  float m[S], l[S], acc[S][DC];
};

template <int S, int DC>
__device__ __forceinline__ void slots_init(Slots<S, DC>& st, const float* sink) {
  for (int i = 0; i < S; ++i) {
    st.m[i] = sink[i];  // starting at the sink keeps every max finite, so exp never sees -inf − -inf
    st.l[i] = 0.0f;
    for (int c = 0; c < DC; ++c) st.acc[i][c] = 0.0f;
  }
}

// One tile's update of the warp's slots; qs = the warp's S query vectors, slot i sees keys [lo[i], hi[i]].
template <int S, int DC>
__device__ __forceinline__ void attend_tile(const Tile& t, const float* qs, int D, int key0, const int* lo, const int* hi, float scale,
                            Slots<S, DC>& st, int lane) {
  float sc[S], p[S];
  for (int i = 0; i < S; ++i) sc[i] = 0.0f;
  for (int d = 0; d < D; ++d) {
    const float k = t.kt[d * kKtStride + lane];
    for (int i = 0; i < S; ++i) sc[i] += qs[i * D + d] * k;
  }
  const int key = key0 + lane;
  for (int i = 0; i < S; ++i) {
    const bool valid = key >= lo[i] && key <= hi[i];
    const float s = valid ? sc[i] * scale : -INFINITY;
    const float tile_max = warp_max(s);
    const float m = tile_max > st.m[i] ? tile_max : st.m[i];
    const float r = expf(st.m[i] - m);
    p[i] = valid ? expf(s - m) : 0.0f;
    st.l[i] = st.l[i] * r + warp_sum(p[i]);
    for (int c = 0; c < DC; ++c) st.acc[i][c] *= r;
    st.m[i] = m;
  }
  for (int j = 0; j < kKeyTile; ++j) {
    float v[DC];
    for (int c = 0; c < DC; ++c) v[c] = lane + 32 * c < D ? t.vt[j * D + lane + 32 * c] : 0.0f;
    for (int i = 0; i < S; ++i) {
      const float pj = __shfl_sync(kFullWarp, p[i], j);
      for (int c = 0; c < DC; ++c) st.acc[i][c] += pj * v[c];
    }
  }
}

// The block's walk over keys [key_lo, key_hi] of kv head `kvh`, tile by tile; every thread of the block
// calls it (the barriers), each warp for its own slots.
template <int S, int DC>
__device__ __forceinline__ void attend_keys(const AttnArgs& a, const AttnSeq& s, int kvh, int key_lo, int key_hi, const Tile& t,
                                            const float* qs, const int* lo, const int* hi, Slots<S, DC>& st, int lane) {
  for (int key0 = key_lo - key_lo % kKeyTile; key0 <= key_hi; key0 += kKeyTile) {
    __syncthreads();  // the previous tile is consumed (the first time: the queries are written)
    stage_tile(a, s, kvh, key0, key_lo, key_hi, t);
    __syncthreads();
    attend_tile(t, qs, a.kv.head_dim, key0, lo, hi, a.scale, st, lane);
  }
}

}  // namespace gptoss::cuda::GPTOSS_CUDA_NS
