// fiber.h — the emulator's fibers: one ucontext per emulated CUDA thread, on a stack that is mapped
// once and reused by every block and launch after it. The stack has a PROT_NONE guard page below it,
// so a kernel whose locals overflow it faults at once instead of corrupting the neighbouring fiber.
// Not here: who runs when (block.h).
#pragma once

#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <cstddef>
#include <cstdio>
#include <cstdlib>

namespace emu::detail {

// Emulated threads keep their locals (register arrays, fragments) on these stacks. EMU_STACK_KB
// overrides the default for kernels with large local arrays; pages are only committed when touched.
inline size_t fiber_stack_bytes() {
  static const size_t bytes = [] {
    const char* env = std::getenv("EMU_STACK_KB");
    const long kb = env ? std::atol(env) : 0;
    return static_cast<size_t>(kb >= 16 ? kb : 256) * 1024;
  }();
  return bytes;
}

class Fiber {
 public:
  Fiber() : page_(static_cast<size_t>(sysconf(_SC_PAGESIZE))), bytes_(fiber_stack_bytes()) {
    void* mem = mmap(nullptr, bytes_ + page_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mem == MAP_FAILED) {
      std::fprintf(stderr, "emu: cannot map a %zu KiB fiber stack\n", bytes_ / 1024);
      std::abort();
    }
    mprotect(mem, page_, PROT_NONE);
    mem_ = static_cast<char*>(mem);
    getcontext(&ctx_);  // once: makecontext needs an initialised context, later blocks only re-make it
  }
  ~Fiber() { munmap(mem_, bytes_ + page_); }
  Fiber(const Fiber&) = delete;
  Fiber& operator=(const Fiber&) = delete;

  // Makes the next switch into this fiber start `entry` on a fresh stack. `entry` must never return:
  // it switches away when its thread exits (uc_link is unused).
  void start(void (*entry)()) {
    ctx_.uc_stack.ss_sp = mem_ + page_;
    ctx_.uc_stack.ss_size = bytes_;
    ctx_.uc_link = nullptr;
    makecontext(&ctx_, entry, 0);
  }
  ucontext_t* context() { return &ctx_; }

 private:
  size_t page_, bytes_;
  char* mem_ = nullptr;
  ucontext_t ctx_{};
};

}  // namespace emu::detail
