// Monotonic time in nanoseconds, the one clock every timeout in ringwire uses.
#pragma once

#include <time.h>

#include <chrono>
#include <cstdint>

namespace ringwire::core {

inline std::uint64_t now_ns() noexcept {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ull +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

// A point on the monotonic clock after which a wait gives up. The default
// deadline is "now" (fail fast); `never()` is reserved for callers that also
// check peer liveness while they wait.
class Deadline {
 public:
  static Deadline after(std::chrono::nanoseconds d) noexcept {
    auto n = d.count() < 0 ? 0 : static_cast<std::uint64_t>(d.count());
    return Deadline(now_ns() + n);
  }
  static Deadline never() noexcept { return Deadline(UINT64_MAX); }
  static Deadline at(std::uint64_t ns) noexcept { return Deadline(ns); }

  bool expired(std::uint64_t now) const noexcept { return now >= at_; }
  bool expired() const noexcept { return expired(now_ns()); }
  std::uint64_t remaining_ns(std::uint64_t now) const noexcept {
    return now >= at_ ? 0 : at_ - now;
  }
  std::uint64_t ns() const noexcept { return at_; }

 private:
  explicit Deadline(std::uint64_t at) noexcept : at_(at) {}
  std::uint64_t at_;
};

}  // namespace ringwire::core
