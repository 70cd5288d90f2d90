// tensor.h — typed views of weight matrices as the ops read them: bf16 row-major, 8-bit with block scales,
// and MXFP4 packed.
// Views only: they own nothing (the memory-mapped checkpoint does) and know nothing of layers or shards,
// so cpu/ and cuda/ ops can take them without including model/ or loader/.
#pragma once

#include <cstdint>

#include "bf16.h"

namespace gptoss {

// Row-major bf16 matrix view: element (r, c) at data[r * ld + c].
struct MatrixBF16 {
  const bf16_t* data = nullptr;
  int64_t rows = 0, cols = 0, ld = 0;
};

// A contiguous array of T in some backend's memory (weights' small vectors: gains, biases, sinks).
// A view: ModelWeights owns the storage. Named like std::vector's accessors so uses read the same.
template <class T>
struct Span {
  const T* ptr = nullptr;
  int64_t count = 0;
  const T* data() const { return ptr; }
  size_t size() const { return static_cast<size_t>(count); }
  bool empty() const { return count == 0; }
};

// Row-major 8-bit matrix with one fp32 scale per 32-element block (the opt-in q8 dense-weight mode,
// converted from bf16 at load): element (r, c) = (codes[r·cols + c] − 128) · scales[r·(cols/32) + c/32].
// Codes carry a +128 offset so that VNNI's unsigned operand takes them as they are; cols % 32 == 0.
struct MatrixQ8 {
  const uint8_t* codes = nullptr;
  const float* scales = nullptr;
  int64_t rows = 0, cols = 0;
};

// One expert projection in MXFP4: rows × (cols/32) blocks of 16 bytes + one E8M0 scale per block.
struct MxFp4Matrix {
  const uint8_t* blocks = nullptr;
  const uint8_t* scales = nullptr;
  int64_t rows = 0, cols = 0;
};

// One expert projection with its bias, as the MoE ops find a local expert's by slot.
struct ExpertProj {
  MxFp4Matrix w;
  const float* bias = nullptr;  // may be null
};

}  // namespace gptoss
