// quantize_dense.cpp — the q8 dense-weight modes' conversion, once at engine creation: the unembedding
// (and in the q8-attention mode every attention projection, q, k, v, o) becomes 8-bit codes with one fp32
// scale per 32 weights (scale = the block's largest magnitude / 127, code = round-to-nearest-even(w / scale)
// + 128, stored in core/tensor.h's run order), halving the bytes a decode step reads from them. The
// attention projections are left out of the plain q8 mode because their rounding error moves the logits
// beyond the serving tolerance on the golden cases, the unembedding's does not (docs/PERFORMANCE.md). The
// router stays bf16: it is 0.2 % of the bytes, and a routing flip moves a token's output far more than any
// dense rounding. The embedding stays bf16 (one row per token), and so does a matrix whose rows are not
// whole 32-weight blocks.
#include <cmath>
#include <memory>
#include <vector>

#include "../core/error.h"
#include "../model/weights.h"

namespace gptoss {

void quantize_q8_rows(const MatrixBF16& w, uint8_t* codes, float* scales) {
  check(w.cols % 32 == 0, gptoss_status_invalid_argument,
        "quantize_dense: q8 weights need a multiple of 32 columns, got " + std::to_string(w.cols));
  const int64_t nb = w.cols / 32;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < w.rows; ++r)
    for (int64_t b = 0; b < nb; ++b) {
      const bf16_t* src = w.data + r * w.ld + b * 32;
      float amax = 0.0f;
      for (int k = 0; k < 32; ++k) amax = std::fmax(amax, std::fabs(bf16_to_f32(src[k])));
      const float scale = amax / 127.0f, inv = amax > 0.0f ? 127.0f / amax : 0.0f;
      scales[r * nb + b] = scale;
      for (int k = 0; k < 32; ++k) {
        const float q = std::fmin(std::fmax(std::nearbyint(bf16_to_f32(src[k]) * inv), -127.0f), 127.0f);
        codes[r * w.cols + q8_code_offset(w.cols, b * 32 + k)] = static_cast<uint8_t>(static_cast<int>(q) + 128);
      }
    }
}

namespace {

// Owns the converted matrices (and keeps the weights they came from alive for everything else).
struct Q8Store {
  std::shared_ptr<const ModelWeights> source;
  std::vector<std::vector<uint8_t>> codes;
  std::vector<std::vector<float>> scales;

  // A matrix whose rows are not whole blocks (none in gpt-oss; some test shapes) stays bf16.
  MatrixQ8 convert(const MatrixBF16& w) {
    if (w.cols % 32 != 0) return MatrixQ8{};
    codes.emplace_back(static_cast<size_t>(w.rows * w.cols));
    scales.emplace_back(static_cast<size_t>(w.rows * (w.cols / 32)));
    quantize_q8_rows(w, codes.back().data(), scales.back().data());
    return MatrixQ8{codes.back().data(), scales.back().data(), w.rows, w.cols};
  }
};

}  // namespace

std::shared_ptr<const ModelWeights> quantize_dense(std::shared_ptr<const ModelWeights> host, bool attention) {
  auto store = std::make_shared<Q8Store>();
  store->codes.reserve(1 + 4 * host->layers.size());  // views into the vectors stay valid
  store->scales.reserve(1 + 4 * host->layers.size());
  auto w = std::make_shared<ModelWeights>(*host);
  w->lm_head_q8 = store->convert(host->lm_head);
  if (attention)
    for (LayerWeights& l : w->layers)
      for (Linear* p : {&l.attn.q, &l.attn.k, &l.attn.v, &l.attn.o}) p->q8 = store->convert(p->w);
  store->source = std::move(host);
  w->storage = std::shared_ptr<const void>(store, store.get());
  return w;
}

}  // namespace gptoss
