// safetensors.cpp — see safetensors.h. The JSON header is parsed with nlohmann::json without exceptions
// and walked defensively; the mapping stays read-only, so no tensor view can be written through.
#include "safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>

#include "../core/error.h"

namespace gptoss {

namespace {

struct DTypeEntry {
  const char* name;
  DType dtype;
  size_t size;
};

constexpr DTypeEntry kDTypes[] = {
    {"BOOL", DType::BOOL, 1}, {"U8", DType::U8, 1},           {"I8", DType::I8, 1},
    {"I16", DType::I16, 2},   {"U16", DType::U16, 2},         {"F16", DType::F16, 2},
    {"BF16", DType::BF16, 2}, {"I32", DType::I32, 4},         {"U32", DType::U32, 4},
    {"F32", DType::F32, 4},   {"F64", DType::F64, 8},         {"I64", DType::I64, 8},
    {"U64", DType::U64, 8},   {"F8_E5M2", DType::F8_E5M2, 1}, {"F8_E4M3", DType::F8_E4M3, 1},
    {"F8_E8M0", DType::F8_E8M0, 1},
};

[[noreturn]] void bad(const std::string& file, const std::string& tensor, const std::string& what) {
  fail(gptoss_status_invalid_checkpoint,
       file + (tensor.empty() ? "" : ": tensor '" + tensor + "'") + ": " + what);
}

}  // namespace

const char* dtype_name(DType d) {
  for (const auto& e : kDTypes)
    if (e.dtype == d) return e.name;
  return "?";
}

size_t dtype_size(DType d) {
  for (const auto& e : kDTypes)
    if (e.dtype == d) return e.size;
  return 0;
}

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::map<std::string, TensorInfo> parse_safetensors_header(const char* text, size_t json_bytes, uint64_t data_bytes,
                                                           const std::string& file) {
  using nlohmann::json;
  const json header = json::parse(text, text + json_bytes, nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded()) bad(file, "", "header is not valid JSON");
  if (!header.is_object()) bad(file, "", "header is not a JSON object");

  std::map<std::string, TensorInfo> out;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) bad(file, "", "__metadata__ is not an object");
      continue;
    }
    if (!entry.is_object()) bad(file, name, "entry is not an object");
    const auto dt = entry.find("dtype");
    const auto sh = entry.find("shape");
    const auto off = entry.find("data_offsets");
    if (dt == entry.end() || !dt->is_string()) bad(file, name, "missing or non-string dtype");
    if (sh == entry.end() || !sh->is_array()) bad(file, name, "missing or non-array shape");
    if (off == entry.end() || !off->is_array() || off->size() != 2) bad(file, name, "data_offsets must be [begin, end]");

    TensorInfo t;
    t.name = name;
    const std::string dts = dt->get<std::string>();
    size_t esize = 0;
    for (const auto& e : kDTypes) {
      if (dts == e.name) {
        t.dtype = e.dtype;
        esize = e.size;
      }
    }
    if (esize == 0) bad(file, name, "unknown dtype '" + dts + "'");

    // numel with overflow checks; every dimension a non-negative integer.
    unsigned __int128 numel = 1;
    for (const auto& d : *sh) {
      if (!d.is_number_unsigned()) bad(file, name, "shape has a negative or non-integer dimension");
      const uint64_t v = d.get<uint64_t>();
      if (v > (1ull << 48)) bad(file, name, "shape dimension too large");
      numel *= v;
      if (numel > (static_cast<unsigned __int128>(1) << 62)) bad(file, name, "shape is too large");
      t.shape.push_back(static_cast<int64_t>(v));
    }
    for (const auto& o : *off)
      if (!o.is_number_unsigned()) bad(file, name, "data_offsets must be non-negative integers");
    t.begin = (*off)[0].get<uint64_t>();
    t.end = (*off)[1].get<uint64_t>();
    if (t.begin > t.end) bad(file, name, "data_offsets begin > end");
    if (t.end > data_bytes) {
      bad(file, name, "data_offsets [" + std::to_string(t.begin) + ", " + std::to_string(t.end) +
                          ") run past the end of the data (" + std::to_string(data_bytes) + " bytes); truncated file?");
    }
    const unsigned __int128 expect = numel * esize;
    if (expect != t.end - t.begin) {
      bad(file, name, "byte length " + std::to_string(t.end - t.begin) + " does not match shape × " + dts + " size (" +
                          std::to_string(static_cast<uint64_t>(expect)) + ")");
    }
    out.emplace(name, std::move(t));
  }

  // Tensors must not overlap (zero-length tensors are exempt).
  std::vector<const TensorInfo*> by_offset;
  for (const auto& [_, t] : out)
    if (t.end > t.begin) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(), [](auto* a, auto* b) { return a->begin < b->begin; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    if (by_offset[i]->begin < by_offset[i - 1]->end) bad(file, by_offset[i]->name, "overlaps tensor '" + by_offset[i - 1]->name + "'");
  }
  return out;
}

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(gptoss_status_io_error, path + ": cannot open: " + std::strerror(errno));
  struct stat st{};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    fail(gptoss_status_io_error, path + ": cannot stat: " + std::strerror(errno));
  }
  size_ = static_cast<uint64_t>(st.st_size);
  if (size_ < 8) {
    ::close(fd);
    bad(path, "", "file is " + std::to_string(size_) + " bytes, shorter than the 8-byte header length");
  }
  void* m = ::mmap(nullptr, size_, PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  if (m == MAP_FAILED) fail(gptoss_status_io_error, path + ": mmap failed: " + std::strerror(errno));
  base_ = static_cast<const uint8_t*>(m);
  try {
    uint64_t n = 0;
    std::memcpy(&n, base_, 8);  // little-endian host (x86-64, aarch64)
    if (n > kMaxHeaderBytes) bad(path, "", "header length " + std::to_string(n) + " exceeds the 100 MB limit");
    if (n > size_ - 8) bad(path, "", "header length " + std::to_string(n) + " runs past the end of the file; truncated?");
    data_ = base_ + 8 + n;
    tensors_ = parse_safetensors_header(reinterpret_cast<const char*>(base_ + 8), n, size_ - 8 - n, path);
  } catch (...) {
    ::munmap(const_cast<uint8_t*>(base_), size_);
    base_ = nullptr;
    throw;
  }
}

SafetensorsFile::SafetensorsFile(SafetensorsFile&& o) noexcept
    : path_(std::move(o.path_)), base_(o.base_), data_(o.data_), size_(o.size_), tensors_(std::move(o.tensors_)) {
  o.base_ = nullptr;
  o.data_ = nullptr;
  o.size_ = 0;
}

SafetensorsFile::~SafetensorsFile() {
  if (base_ != nullptr) ::munmap(const_cast<uint8_t*>(base_), size_);
}

void SafetensorsFile::populate(const uint8_t* data, uint64_t bytes) {
#ifdef MADV_POPULATE_READ
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t begin = reinterpret_cast<uintptr_t>(data) & ~(page - 1);
  const uintptr_t end = reinterpret_cast<uintptr_t>(data) + bytes;
  if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_POPULATE_READ);
#else
  (void)data;
  (void)bytes;
#endif
}

const TensorInfo* SafetensorsFile::find(const std::string& name) const {
  const auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

}  // namespace gptoss
