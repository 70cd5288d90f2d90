// device.h — the memory of the backend an OpSet runs on, and an owning array in it. Every buffer the
// ops read or write (weights, KV pools, activations, step inputs, logits) lives in its backend's memory;
// the host reaches it only through upload and download. On the CPU backend device memory is host memory
// (host_is_device): weights stay in the checkpoint's mapping and nothing is copied, unless the engine asks
// for resident weights (cpu::resident_memory, a host memory that says false so that they are copied). The
// emulated CUDA backend says false, so CI runs every copy a GPU needs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace gptoss {

// Capture and replay of a step's launches (a CUDA graph on a GPU, a recorded launch list under the
// emulator). Backends without it leave every entry null.
struct LaunchGraphs {
  void* (*begin)();              // from now on this thread's launches are captured, not run
  void (*end)(void* graph);      // capture done: the graph can be replayed
  void (*replay)(void* graph);   // runs the captured launches, reading device memory as it is now
  void (*release)(void* graph);  // also ends a capture that failed half-way
};

struct DeviceMemory {
  bool host_is_device;
  void* (*alloc)(size_t bytes);  // throws insufficient_memory; contents undefined
  void (*release)(void* p);
  void (*upload)(void* device_dst, const void* host_src, size_t bytes);
  void (*download)(void* host_dst, const void* device_src, size_t bytes);
  void (*zero)(void* device_dst, size_t bytes);
};

// An array of T in one backend's memory; grows, never shrinks (per-step scratch is reused across steps).
template <class T>
class DeviceArray {
 public:
  explicit DeviceArray(const DeviceMemory& mem) : mem_(&mem) {}
  DeviceArray(const DeviceMemory& mem, size_t n) : mem_(&mem) { reserve(n); }
  DeviceArray(DeviceArray&& o) noexcept : mem_(o.mem_), ptr_(std::exchange(o.ptr_, nullptr)), cap_(std::exchange(o.cap_, 0)) {}
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  // Releases this array's memory and takes o's (o is left empty).
  DeviceArray& operator=(DeviceArray&& o) noexcept {
    if (this != &o) {
      mem_->release(ptr_);
      mem_ = o.mem_;
      ptr_ = std::exchange(o.ptr_, nullptr);
      cap_ = std::exchange(o.cap_, 0);
    }
    return *this;
  }
  ~DeviceArray() { mem_->release(ptr_); }

  // At least n elements; the old contents are not kept when it grows.
  T* reserve(size_t n) {
    if (n > cap_) {
      mem_->release(ptr_);
      ptr_ = nullptr;
      ptr_ = static_cast<T*>(mem_->alloc(n * sizeof(T)));
      cap_ = n;
    }
    return ptr_;
  }
  T* data() const { return ptr_; }
  size_t capacity() const { return cap_; }
  // Replaces the contents with host data (growing as needed); returns the device pointer.
  T* assign(const T* host, size_t n) {
    reserve(n);
    if (n) mem_->upload(ptr_, host, n * sizeof(T));
    return ptr_;
  }
  T* assign(const std::vector<T>& host) { return assign(host.data(), host.size()); }
  void download(T* host, size_t n, size_t offset = 0) const {
    if (n) mem_->download(host, ptr_ + offset, n * sizeof(T));
  }

 private:
  const DeviceMemory* mem_;
  T* ptr_ = nullptr;
  size_t cap_ = 0;
};

}  // namespace gptoss
