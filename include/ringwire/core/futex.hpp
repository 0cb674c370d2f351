// futex(2) wait/wake on a 32-bit word. The calls are deliberately *not*
// FUTEX_PRIVATE_FLAG: the word may live in a MAP_SHARED segment and the waker
// may be another process, which only the shared futex hash key supports.
#pragma once

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>

namespace ringwire::core {

static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t));
static_assert(std::atomic<std::uint32_t>::is_always_lock_free);

enum class FutexResult { woken, value_changed, timed_out, interrupted };

// Sleeps while `*word == expected`, at most `timeout_ns`. Spurious wake-ups are
// possible; callers re-check their condition in a loop.
inline FutexResult futex_wait(std::atomic<std::uint32_t>* word, std::uint32_t expected,
                              std::uint64_t timeout_ns) noexcept {
  timespec ts;
  ts.tv_sec = static_cast<time_t>(timeout_ns / 1'000'000'000ull);
  ts.tv_nsec = static_cast<long>(timeout_ns % 1'000'000'000ull);
  long rc = ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAIT, expected, &ts,
                      nullptr, 0);
  if (rc == 0) return FutexResult::woken;
  switch (errno) {
    case EAGAIN:
      return FutexResult::value_changed;
    case ETIMEDOUT:
      return FutexResult::timed_out;
    default:
      return FutexResult::interrupted;
  }
}

// Wakes up to `count` waiters; returns how many were woken.
inline int futex_wake(std::atomic<std::uint32_t>* word, int count) noexcept {
  long rc = ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAKE, count, nullptr,
                      nullptr, 0);
  return rc < 0 ? 0 : static_cast<int>(rc);
}

}  // namespace ringwire::core
