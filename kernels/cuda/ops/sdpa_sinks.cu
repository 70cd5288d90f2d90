// sdpa_sinks.cu — attention with sinks over paged KV plus this step's rows (contract: cpu/ops.h). Two
// paths, chosen per sequence on the device (the host never reads `seqs`, which must be device-resident
// under nvcc): every launch covers all sequences and its blocks leave where the sequence is not theirs.
//   decode (num_tokens == 1), split-K: the row's key range is cut into kChunk-key chunks at absolute
//     positions, dealt in contiguous runs to at most kSplits splits; a block (one split, up to
//     kDecodeHeads q heads of one kv head, so K/V are read once per GQA group) writes (m, l, acc)
//     partials, and sdpa_combine_kernel merges them in split order. A row whose range is one split is
//     finished by its block.
//   prefill (num_tokens > 1), flash-attention-2 style: a block takes up to 32 (row, q head) slots of one
//     kv head and walks the key tiles of their union (cached positions from the pages, this step's from
//     k_new / v_new) with an online softmax per slot; causal and sliding masks per slot.
// Both start each running max at the head's sink, and the sink's exp joins the denominator at the end
// (it weighs no value), as on the CPU. The split of a row depends only on its own key range and tiles sit
// at absolute positions (sdpa_tile.cuh), so a row's result does not depend on the other sequences of the
// step. fp32 arithmetic throughout (a bf16 pool is widened as it is staged), no tensor cores. The
// partials go to the caller's workspace (sdpa_workspace_floats), so the launches allocate nothing and a
// graph can capture them.
#include "sdpa_tile.cuh"

namespace gptoss::cuda::GPTOSS_CUDA_NS {

// kernels
constexpr int kDecodeWarps = 4, kDecodeSlots = 2;            // a warp serves 2 q heads
constexpr int kDecodeHeads = kDecodeWarps * kDecodeSlots;    // q heads per block: gpt-oss's GQA group
constexpr int kChunk = 256;                                  // keys per split-K chunk
constexpr int kSplits = 16;                                  // most partials per (row, head)
constexpr int kPrefillWarps = 8, kPrefillSlots = 4;          // 32 (row, head) slots per block
constexpr int kPrefillQueries = kPrefillWarps * kPrefillSlots;
constexpr int kPrefillRowBlocks = 32;                        // grid.z of the prefill kernel (row tiles stride by it)

// Split z of the key range [lo, hi]; count = how many splits the range uses (a function of lo and hi only).
struct KeySplit {
  int begin, end, count;
};
__device__ KeySplit key_split(int lo, int hi, int z) {
  const int c0 = lo / kChunk, chunks = hi / kChunk - c0 + 1;
  const int per = (chunks + kSplits - 1) / kSplits, count = (chunks + per - 1) / per;
  const int b = (c0 + z * per) * kChunk, e = (c0 + (z + 1) * per) * kChunk - 1;
  return {b > lo ? b : lo, e < hi ? e : hi, count};
}

// out[row, h] = acc / (l + exp(sink − m)) for the lane's dims.
template <int DC>
__device__ __forceinline__ void write_final(const AttnArgs& a, float m, float l, const float* acc, float sink, int row, int h, int lane) {
  const int D = a.kv.head_dim;
  const float inv = 1.0f / (l + expf(sink - m));
  float* o = a.out + static_cast<int64_t>(row) * a.ldo + static_cast<int64_t>(h) * D;
  for (int c = 0; c < DC; ++c)
    if (lane + 32 * c < D) o[lane + 32 * c] = acc[c] * inv;
}

// Copies query rows into qs: slot g holds q[row_of(g)] of head first + head_of(g), zeros where row_of(g) < 0.
template <typename RowOf>
__device__ void load_queries(const AttnArgs& a, const HeadBlock& hb, int slots, RowOf row_of, float* qs) {
  const int D = a.kv.head_dim;
  for (int i = threadIdx.x; i < slots * D; i += blockDim.x) {
    const int g = i / D, row = row_of(g);
    qs[i] = row >= 0 ? a.q[static_cast<int64_t>(row) * a.ldq + static_cast<int64_t>(hb.first + g % hb.count) * D + i % D] : 0.0f;
  }
}

template <int DC>
__global__ void __launch_bounds__(kDecodeWarps * 32) sdpa_decode_kernel(AttnArgs a) {
  const AttnSeq s = a.seqs[blockIdx.x];
  if (s.num_tokens != 1) return;  // prefill rows: sdpa_prefill_kernel
  const int z = blockIdx.z, pos = s.pos_begin;
  const KeySplit sp = key_split(first_key(pos, a.window), pos, z);
  if (z >= sp.count) return;
  const HeadBlock hb = head_block(a, kDecodeHeads);
  const int D = a.kv.head_dim, warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  EMU_DYNAMIC_SHARED(float, smem);
  const Tile t = tile_views(smem, D);
  load_queries(a, hb, kDecodeHeads, [&](int g) { return g < hb.count ? s.token_begin : -1; }, t.qs);
  float sink[kDecodeSlots];
  int lo[kDecodeSlots], hi[kDecodeSlots];
  for (int i = 0; i < kDecodeSlots; ++i) {
    const int g = warp * kDecodeSlots + i;
    const bool live = g < hb.count;
    sink[i] = live ? a.sinks[hb.first + g] : 0.0f;
    lo[i] = live ? sp.begin : 1, hi[i] = live ? sp.end : 0;
  }
  Slots<kDecodeSlots, DC> st;
  slots_init(st, sink);
  attend_keys(a, s, hb.kvh, sp.begin, sp.end, t, t.qs + warp * kDecodeSlots * D, lo, hi, st, lane);
  for (int i = 0; i < kDecodeSlots; ++i) {
    const int g = warp * kDecodeSlots + i, h = hb.first + g;
    if (g >= hb.count) continue;
    if (sp.count == 1) {
      write_final<DC>(a, st.m[i], st.l[i], st.acc[i], sink[i], s.token_begin, h, lane);
      continue;
    }
    const int64_t p = (static_cast<int64_t>(blockIdx.x) * a.q_heads + h) * kSplits + z;
    for (int c = 0; c < DC; ++c)
      if (lane + 32 * c < D) a.part_acc[p * D + lane + 32 * c] = st.acc[i][c];
    if (lane == 0) a.part_ml[2 * p] = st.m[i], a.part_ml[2 * p + 1] = st.l[i];
  }
}

// One warp per (decode row, q head) whose range took several splits: merges them in split order.
__global__ void __launch_bounds__(32) sdpa_combine_kernel(AttnArgs a) {
  const AttnSeq s = a.seqs[blockIdx.x];
  if (s.num_tokens != 1) return;
  const int count = key_split(first_key(s.pos_begin, a.window), s.pos_begin, 0).count;
  if (count == 1) return;  // finished by sdpa_decode_kernel
  const int h = blockIdx.y, D = a.kv.head_dim, lane = threadIdx.x;
  const int64_t base = (static_cast<int64_t>(blockIdx.x) * a.q_heads + h) * kSplits;
  const float sink = a.sinks[h];
  float m = sink;  // every split's max started at the sink, so m is the overall max
  for (int z = 0; z < count; ++z) m = a.part_ml[2 * (base + z)] > m ? a.part_ml[2 * (base + z)] : m;
  float l = expf(sink - m);
  for (int z = 0; z < count; ++z) l += a.part_ml[2 * (base + z) + 1] * expf(a.part_ml[2 * (base + z)] - m);
  float* o = a.out + static_cast<int64_t>(s.token_begin) * a.ldo + static_cast<int64_t>(h) * D;
  for (int d = lane; d < D; d += 32) {
    float acc = 0.0f;
    for (int z = 0; z < count; ++z) acc += a.part_acc[(base + z) * D + d] * expf(a.part_ml[2 * (base + z)] - m);
    o[d] = acc / l;
  }
}

// Rows [t0, t0 + rows) of a prefill sequence for the block's heads: slot g = (row g / heads, head g % heads).
template <int DC>
__device__ __forceinline__ void prefill_tile(const AttnArgs& a, const AttnSeq& s, const HeadBlock& hb, int t0, int rows, const Tile& t) {
  const int D = a.kv.head_dim, warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  __syncthreads();  // the previous row tile's queries are consumed
  load_queries(a, hb, kPrefillQueries, [&](int g) { return g / hb.count < rows ? s.token_begin + t0 + g / hb.count : -1; }, t.qs);
  float sink[kPrefillSlots];
  int lo[kPrefillSlots], hi[kPrefillSlots];
  for (int i = 0; i < kPrefillSlots; ++i) {
    const int g = warp * kPrefillSlots + i, pos = s.pos_begin + t0 + g / hb.count;
    const bool live = g / hb.count < rows;
    sink[i] = live ? a.sinks[hb.first + g % hb.count] : 0.0f;
    lo[i] = live ? first_key(pos, a.window) : 1, hi[i] = live ? pos : 0;
  }
  Slots<kPrefillSlots, DC> st;
  slots_init(st, sink);
  const int key_lo = first_key(s.pos_begin + t0, a.window), key_hi = s.pos_begin + t0 + rows - 1;
  attend_keys(a, s, hb.kvh, key_lo, key_hi, t, t.qs + warp * kPrefillSlots * D, lo, hi, st, lane);
  for (int i = 0; i < kPrefillSlots; ++i) {
    const int g = warp * kPrefillSlots + i;
    if (g / hb.count < rows)
      write_final<DC>(a, st.m[i], st.l[i], st.acc[i], sink[i], s.token_begin + t0 + g / hb.count, hb.first + g % hb.count, lane);
  }
}

// Three resident blocks per SM bound ptxas to 85 registers, which the four slots' state fits without spilling.
template <int DC>
__global__ void __launch_bounds__(kPrefillWarps * 32, 3) sdpa_prefill_kernel(AttnArgs a) {
  const AttnSeq s = a.seqs[blockIdx.x];
  if (s.num_tokens < 2) return;  // decode rows: sdpa_decode_kernel
  const HeadBlock hb = head_block(a, kDecodeHeads);
  const int rows = kPrefillQueries / hb.count;
  EMU_DYNAMIC_SHARED(float, smem);
  const Tile t = tile_views(smem, a.kv.head_dim);
  for (int t0 = blockIdx.z * rows; t0 < s.num_tokens; t0 += gridDim.z * rows)
    prefill_tile<DC>(a, s, hb, t0, s.num_tokens - t0 < rows ? s.num_tokens - t0 : rows, t);
}

// launchers
template <typename Kernel>
void allow_smem(Kernel kernel, size_t bytes) {
#if defined(__CUDACC__)
  if (bytes > 48 * 1024)  // above the static limit a kernel must opt in
    dev_check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)),
              "cudaFuncSetAttribute(sdpa)");
#else
  (void)kernel, (void)bytes;
#endif
}

template <int DC>
void launch_attention(const AttnArgs& a, int num_seqs) {
  const int D = a.kv.head_dim, head_blocks = a.kv.kv_heads * ((a.group + kDecodeHeads - 1) / kDecodeHeads);
  const size_t decode_smem = tile_smem_bytes(D, kDecodeHeads), prefill_smem = tile_smem_bytes(D, kPrefillQueries);
  allow_smem(sdpa_decode_kernel<DC>, decode_smem);
  allow_smem(sdpa_prefill_kernel<DC>, prefill_smem);
  EMU_LAUNCH(sdpa_decode_kernel<DC>, dim3(num_seqs, head_blocks, kSplits), dim3(kDecodeWarps * 32), decode_smem, emu_stream_t{}, a);
  dev_check_launch("sdpa_decode_kernel");
  EMU_LAUNCH(sdpa_prefill_kernel<DC>, dim3(num_seqs, head_blocks, kPrefillRowBlocks), dim3(kPrefillWarps * 32), prefill_smem,
             emu_stream_t{}, a);
  dev_check_launch("sdpa_prefill_kernel");
  EMU_LAUNCH(sdpa_combine_kernel, dim3(num_seqs, a.q_heads), dim3(32), 0, emu_stream_t{}, a);
  dev_check_launch("sdpa_combine_kernel");
}

void f32_sdpa_sinks(const float* q, int64_t ldq, const float* k_new, const float* v_new, int64_t ldkv, const AttnSeq* seqs,
                    int num_seqs, const KvLayer& kv, int q_heads, const float* sinks, float scale, int window, float* out,
                    int64_t ldo, float* workspace) {
  check(kv.head_dim > 0 && kv.head_dim <= kMaxHeadDim && kv.kv_heads > 0 && q_heads % kv.kv_heads == 0,
        gptoss_status_invalid_argument, "sdpa_sinks (cuda): needs head_dim in 1..128 and q_heads a multiple of kv_heads");
  if (num_seqs <= 0 || q_heads <= 0) return;
  check(workspace != nullptr, gptoss_status_invalid_argument, "sdpa_sinks (cuda): needs its workspace (sdpa_workspace_floats)");
  const int D = kv.head_dim;
  const size_t partials = static_cast<size_t>(num_seqs) * q_heads * kSplits;
  const AttnArgs a{q, ldq, k_new, v_new, ldkv, seqs, kv, q_heads, q_heads / kv.kv_heads, sinks, scale, window, out, ldo,
                   workspace, workspace + partials * D};
  if (D <= 32) launch_attention<1>(a, num_seqs);
  else if (D <= 64) launch_attention<2>(a, num_seqs);
  else launch_attention<4>(a, num_seqs);
}

// (m, l, acc[D]) per (sequence, q head, split).
size_t sdpa_workspace_floats(int num_seqs, int q_heads, int head_dim) {
  return static_cast<size_t>(num_seqs) * q_heads * kSplits * (head_dim + 2);
}

}  // namespace gptoss::cuda::GPTOSS_CUDA_NS
