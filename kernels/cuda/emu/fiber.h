// fiber.h — the emulator's fibers: one per emulated CUDA thread, on a stack that is mapped once and
// reused by every block and launch after it. The stack has a PROT_NONE guard page below it, so a
// kernel whose locals overflow it faults at once instead of corrupting the neighbouring fiber.
// On x86-64 a switch saves the callee-saved registers and the FP control words and swaps stack
// pointers; elsewhere, or with EMU_FIBER_UCONTEXT defined (sanitizers understand swapcontext; so do
// shadow-stack processes), it is ucontext's makecontext/swapcontext, whose signal-mask system call
// makes every switch ~40× dearer (docs/PERFORMANCE.md, "CUDA emulator").
// Not here: who runs when (block.h).
#pragma once

#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#if defined(__x86_64__) && !defined(EMU_FIBER_UCONTEXT)
#define EMU_FIBER_FAST_SWITCH 1
#endif

namespace emu::detail {

// Where a suspended fiber (or the launching thread) resumes.
struct Context {
#if defined(EMU_FIBER_FAST_SWITCH)
  void* sp = nullptr;
#else
  ucontext_t uc{};
#endif
};

#if defined(EMU_FIBER_FAST_SWITCH)
// Pushes rbp, rbx, r12–r15 and MXCSR / x87 control word, stores rsp in *save_sp, loads load_sp and
// pops the same from there. The System V ABI lets every other register be clobbered by a call.
__attribute__((naked, noinline)) inline void fiber_switch(void** /*save_sp: rdi*/, void* /*load_sp: rsi*/) {
  asm("pushq %rbp\n\t"
      "pushq %rbx\n\t"
      "pushq %r12\n\t"
      "pushq %r13\n\t"
      "pushq %r14\n\t"
      "pushq %r15\n\t"
      "subq $8, %rsp\n\t"
      "stmxcsr (%rsp)\n\t"
      "fnstcw 4(%rsp)\n\t"
      "movq %rsp, (%rdi)\n\t"
      "movq %rsi, %rsp\n\t"
      "ldmxcsr (%rsp)\n\t"
      "fldcw 4(%rsp)\n\t"
      "addq $8, %rsp\n\t"
      "popq %r15\n\t"
      "popq %r14\n\t"
      "popq %r13\n\t"
      "popq %r12\n\t"
      "popq %rbx\n\t"
      "popq %rbp\n\t"
      "ret\n\t");
}
#endif

inline void switch_context(Context& from, Context& to) {
#if defined(EMU_FIBER_FAST_SWITCH)
  fiber_switch(&from.sp, to.sp);
#else
  swapcontext(&from.uc, &to.uc);
#endif
}

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
#if !defined(EMU_FIBER_FAST_SWITCH)
    getcontext(&ctx_.uc);  // once: makecontext needs an initialised context, later blocks only re-make it
#endif
  }
  ~Fiber() { munmap(mem_, bytes_ + page_); }
  Fiber(const Fiber&) = delete;
  Fiber& operator=(const Fiber&) = delete;

  // Makes the next switch into this fiber start `entry` on an empty stack. `entry` must never
  // return: it switches away when its thread exits.
  void start(void (*entry)()) {
#if defined(EMU_FIBER_FAST_SWITCH)
    // From the top: a zero return address (ends unwinding), `entry` for fiber_switch's ret (leaving
    // rsp ≡ 8 mod 16 as after a call), six zeroed registers, the current FP control words.
    auto* top = reinterpret_cast<uint64_t*>(reinterpret_cast<uintptr_t>(mem_ + page_ + bytes_) & ~uintptr_t{15});
    top[-1] = 0;
    top[-2] = reinterpret_cast<uint64_t>(entry);
    for (int r = 3; r <= 8; ++r) top[-r] = 0;
    uint32_t mxcsr;
    uint16_t fpucw;
    asm volatile("stmxcsr %0\n\tfnstcw %1" : "=m"(mxcsr), "=m"(fpucw));
    top[-9] = mxcsr | static_cast<uint64_t>(fpucw) << 32;
    ctx_.sp = top - 9;
#else
    ctx_.uc.uc_stack.ss_sp = mem_ + page_;
    ctx_.uc.uc_stack.ss_size = bytes_;
    ctx_.uc.uc_link = nullptr;
    makecontext(&ctx_.uc, entry, 0);
#endif
  }
  Context& context() { return ctx_; }

 private:
  size_t page_, bytes_;
  char* mem_ = nullptr;
  Context ctx_{};
};

}  // namespace emu::detail
