// tensor.h — typed views of weight matrices as the ops read them: bf16 row-major, 8-bit with block scales,
// and MXFP4 packed.
// Views only: they own nothing (the memory-mapped checkpoint does) and know nothing of layers or shards,
// so cpu/ and cuda/ ops can take them without including model/ or loader/.
#pragma once

#include <cstdint>

#include "bf16.h"
#include "host_device.h"

namespace gptoss {

// How a bf16 matrix's elements lie.
//  Rows: row-major — element (r, c) at data[r·ld + c].
//  Rows16: the CPU serving kernels' (cpu/matmul_bf16x2.cpp), made at load by place_weights for resident
//    dense weights — rows in groups of 16 (the last one padded with zeros), and within a group, column
//    pair by column pair, the 16 rows' pairs (elements 2p and 2p + 1, 4 bytes) side by side, so that one
//    64-byte load gives each row's 32-bit lane the same two elements (what one vdpbf16ps lane multiplies).
//    An odd last column is paired with a zero. Same elements as Rows (plus the padding), other order.
enum class BF16Layout : uint8_t { Rows, Rows16 };

// A bf16 matrix view laid out as `layout` says (ld: Rows only; place_weights sets it to cols otherwise).
struct MatrixBF16 {
  const bf16_t* data = nullptr;
  int64_t rows = 0, cols = 0, ld = 0;
  BF16Layout layout = BF16Layout::Rows;
};

// Column pairs of a row, and where row r's pair p lies (in bf16 elements from data) in a Rows16 matrix.
GPTOSS_HOST_DEVICE int64_t bf16_pairs(int64_t cols) { return (cols + 1) / 2; }
GPTOSS_HOST_DEVICE int64_t bf16_rows16_offset(int64_t cols, int64_t r, int64_t p) {
  return ((r / 16 * bf16_pairs(cols) + p) * 16 + r % 16) * 2;
}

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

// How a q8 matrix's codes and scales lie.
//  Runs: as converted — element (r, c)'s code at codes[r·cols + q8_code_offset(cols, c)], its block's scale
//    at scales[r·(cols/32) + c/32].
//  Rows16: the CPU serving kernel's (cpu/matmul_q8_rows16.cpp), made at load by place_weights for resident
//    weights — rows in groups of 16 (the last one padded with code 128 and scale 0), and within a group,
//    block by block, the 16 rows' 4-code pieces side by side: piece i (codes 4i..4i+3 of the block) of
//    every row, then piece i + 1 (q8_rows16_piece_offset), so that one 64-byte load gives each row's 32-bit
//    lane the same four elements (what one vpdpbusd lane multiplies); the group's 16 scales of a block side
//    by side the same way (rows16_scale_offset). Same codes as Runs (plus the padding), other order.
enum class Q8Layout : uint8_t { Runs, Rows16 };

// 8-bit matrix with one fp32 scale per 32-element block (the opt-in q8 dense-weight mode, converted from
// bf16 at load): element (r, c) = (code − 128) · scale, laid out as `layout` says. Codes carry a +128
// offset so that VNNI's unsigned operand takes them as they are; cols % 32 == 0.
struct MatrixQ8 {
  const uint8_t* codes = nullptr;
  const float* scales = nullptr;
  int64_t rows = 0, cols = 0;
  Q8Layout layout = Q8Layout::Runs;
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

// How an MXFP4 matrix's bytes lie.
//  Rows: the checkpoint's — row r's block b (16 bytes, element 2j in the low nibble of byte j) at
//    blocks[(r·nb + b)·16], its scale at scales[r·nb + b] (nb = cols / 32).
//  Rows16: the CPU serving kernel's (cpu/moe_mxfp4_q8_rows16.cpp), made at load by place_weights — rows in
//    groups of 16 (the last one padded with code 0 and scale 0), and within a group, block by block, the
//    16 rows' 4-byte pieces side by side: piece i (bytes 4i..4i+3 of the block) of every row, then piece
//    i + 1, so that one 64-byte load gives each row's 32-bit lane eight codes of the same elements and a
//    dot product's partial sums build up row per lane, needing no horizontal sum. The group's 16 scales
//    of a block lie side by side the same way. Same bytes as Rows (plus the padding), other order.
enum class MxFp4Layout : uint8_t { Rows, Rows16 };

// Where piece i of row r's block b lies in a Rows16 matrix of nb blocks per row, and that block's scale.
GPTOSS_HOST_DEVICE int64_t rows16_piece_offset(int64_t nb, int64_t r, int64_t b, int i) {
  return ((r / 16 * nb + b) * 4 + i) * 64 + r % 16 * 4;
}
GPTOSS_HOST_DEVICE int64_t rows16_scale_offset(int64_t nb, int64_t r, int64_t b) { return (r / 16 * nb + b) * 16 + r % 16; }
// Where piece i (0–7) of row r's block b lies in a Rows16 q8 matrix of nb blocks per row.
GPTOSS_HOST_DEVICE int64_t q8_rows16_piece_offset(int64_t nb, int64_t r, int64_t b, int i) {
  return ((r / 16 * nb + b) * 8 + i) * 64 + r % 16 * 4;
}
// Rows a Rows16 matrix (MXFP4 or bf16) holds room for (rows rounded up to a whole group).
GPTOSS_HOST_DEVICE int64_t rows16_padded_rows(int64_t rows) { return (rows + 15) / 16 * 16; }

// One expert projection in MXFP4: rows × (cols/32) blocks of 16 bytes + one E8M0 scale per block, laid out
// as `layout` says.
struct MxFp4Matrix {
  const uint8_t* blocks = nullptr;
  const uint8_t* scales = nullptr;
  int64_t rows = 0, cols = 0;
  MxFp4Layout layout = MxFp4Layout::Rows;
};

// One expert projection with its bias, as the MoE ops find a local expert's by slot.
struct ExpertProj {
  MxFp4Matrix w;
  const float* bias = nullptr;  // may be null
};

}  // namespace gptoss
