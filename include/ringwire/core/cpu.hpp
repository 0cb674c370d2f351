// CPU-level helpers for spin loops.
#pragma once

#include <cstdint>

namespace ringwire::core {

// Tells the core we are spinning: on x86 `pause` lowers power, frees the
// sibling hyper-thread's resources and avoids the memory-order machine clear
// when the awaited line finally changes.
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#else
  asm volatile("" ::: "memory");
#endif
}

// Exponential spin backoff that stays in user space: 1, 2, 4 ... `max_pauses`
// pause instructions per step. Callers decide when spinning has gone on long
// enough to yield or sleep; this type never makes a syscall.
class Backoff {
 public:
  explicit Backoff(std::uint32_t max_pauses = 64) noexcept : max_(max_pauses) {}

  void pause() noexcept {
    for (std::uint32_t i = 0; i < step_; ++i)
      cpu_relax();
    if (step_ < max_) step_ <<= 1;
    ++rounds_;
  }
  void reset() noexcept {
    step_ = 1;
    rounds_ = 0;
  }
  std::uint32_t rounds() const noexcept { return rounds_; }

 private:
  std::uint32_t max_;
  std::uint32_t step_ = 1;
  std::uint32_t rounds_ = 0;
};

}  // namespace ringwire::core
