// tensor.h — typed views of weight matrices as the ops read them: bf16 row-major, 8-bit with block scales,
// and MXFP4 packed.
// Views only: they own nothing (the memory-mapped checkpoint does) and know nothing of layers or shards,
// so cpu/ and cuda/ ops can take them without including model/ or loader/.
#pragma once

#include <cstdint>

#include "bf16.h"
#include "host_device.h"

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

// 8-bit matrix with one fp32 scale per 32-element block (the opt-in q8 dense-weight mode, converted from
// bf16 at load): element (r, c) = (codes[r·cols + q8_code_offset(cols, c)] − 128) · scales[r·(cols/32) + c/32].
// Codes carry a +128 offset so that VNNI's unsigned operand takes them as they are; cols % 32 == 0.
struct MatrixQ8 {
  const uint8_t* codes = nullptr;
  const float* scales = nullptr;
  int64_t rows = 0, cols = 0;
};

// A q8 row's codes lie in runs of kQ8RunBlocks blocks: 4-byte piece j (0–7) of every block of the run, then
// piece j + 1, so that one 64-byte load gives each of 16 blocks four codes and a run's 16 integer block
// sums build up in 16 lanes side by side, scaled once per run (cpu/matmul_q8.cpp). The row's last run
// holds its remaining blocks the same way, narrower. Scales stay in block order.
constexpr int64_t kQ8RunBlocks = 16;

GPTOSS_HOST_DEVICE int64_t q8_code_offset(int64_t cols, int64_t c) {
  const int64_t block = c / 32, run = block / kQ8RunBlocks, lane = block % kQ8RunBlocks, k = c % 32;
  const int64_t width = run < cols / 32 / kQ8RunBlocks ? kQ8RunBlocks : cols / 32 % kQ8RunBlocks;  // blocks in this run
  return run * kQ8RunBlocks * 32 + (k / 4) * 4 * width + lane * 4 + k % 4;
}

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
