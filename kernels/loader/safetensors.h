// safetensors.h — a hostile-input-safe reader of the safetensors container (spec §2.2).
// The file is memory-mapped read-only; tensors are views into the mapping. Every header field is
// validated before use: header length ≤ 100 MB and inside the file, known dtypes, non-negative shapes
// without overflow, offsets inside the data area, byte length = numel × dtype size, no overlaps.
// Any violation throws gptoss::Error(invalid_checkpoint) naming the file and the tensor.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace gptoss {

enum class DType { BOOL, U8, I8, I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64, F8_E5M2, F8_E4M3, F8_E8M0 };

const char* dtype_name(DType d);
size_t dtype_size(DType d);

struct TensorInfo {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // relative to the data area
  uint64_t end = 0;
  int64_t numel() const;
};

class SafetensorsFile {
 public:
  static constexpr uint64_t kMaxHeaderBytes = 100ull * 1000 * 1000;

  explicit SafetensorsFile(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;
  SafetensorsFile(SafetensorsFile&& other) noexcept;

  const std::string& path() const { return path_; }
  const std::map<std::string, TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find(const std::string& name) const;
  const uint8_t* data(const TensorInfo& t) const { return data_ + t.begin; }
  uint64_t file_size() const { return size_; }
  // Maps the pages of [data, data + bytes) now (MADV_POPULATE_READ), so the first forward pass does
  // not take millions of page faults. Best effort: older kernels just fault lazily.
  static void populate(const uint8_t* data, uint64_t bytes);

 private:
  std::string path_;
  const uint8_t* base_ = nullptr;
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
  std::map<std::string, TensorInfo> tensors_;
};

// Validates a header buffer against a data area of data_bytes (used by the file reader and the fuzzer).
std::map<std::string, TensorInfo> parse_safetensors_header(const char* json, size_t json_bytes, uint64_t data_bytes,
                                                           const std::string& file_for_errors);

}  // namespace gptoss
