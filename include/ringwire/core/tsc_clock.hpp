// TscClock: an upper bound of now_ns() read from the TSC, for a hot path that compares an age
// with a bound and must never underestimate it (the KV cache's staleness check, where
// clock_gettime is a quarter of a hit on a VM).
//
// How: now ~= ref_ns + (rdtsc - ref_tsc) * scale, where
//   * (ref_tsc, ref_ns) is re-read every ~10 ms: ref_tsc by rdtsc *before* clock_gettime, so
//     ref_ns >= the monotonic time at ref_tsc;
//   * scale (ns per tick) is an upper bound of the true rate: from two bracketed samples
//     (t1, ns, t2) A and B at least 200 ms apart, (ns_B - ns_A) / (t1_B - t2_A), since the
//     clock cannot have advanced less than the ticks strictly between the brackets, raised by
//     2^-10 against NTP slewing the clock later;
// so each term is at least its true value and the sum is never behind now_ns(). Until the
// scale is known (the first 200 ms), or on a machine whose kernel does not keep time with a
// stable, synchronised TSC (clocksource other than "tsc", or not x86-64), now_upper() is
// now_ns() itself. A TSC read lower than the reference (a migration to a CPU a few ticks
// behind) takes the precise path too.
//
// Not thread-safe: one per thread (as the CacheReader that owns it).
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstring>

#include "ringwire/core/clock.hpp"

#if defined(__x86_64__)
#include <x86intrin.h>
#endif

namespace ringwire::core {

namespace detail {
__extension__ typedef unsigned __int128 u128;  // a GCC/Clang extension, said so to -Wpedantic
}  // namespace detail

// True if the kernel's clocksource is the TSC (it checked the TSC is invariant and in sync
// across CPUs before choosing it). Read once per process.
inline bool tsc_is_clocksource() noexcept {
#if defined(__x86_64__)
  static const bool yes = [] {
    std::FILE* f =
        std::fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "r");
    if (f == nullptr) return false;
    char buf[32] = {};
    const bool ok = std::fgets(buf, sizeof buf, f) != nullptr && std::strncmp(buf, "tsc\n", 4) == 0;
    std::fclose(f);
    return ok;
  }();
  return yes;
#else
  return false;
#endif
}

class TscClock {
 public:
  TscClock() noexcept : enabled_(tsc_is_clocksource()) {}

  std::uint64_t now_upper() noexcept {
#if defined(__x86_64__)
    if (scale_q32_ != 0) {
      const std::uint64_t t = __rdtsc();
      if (t >= ref_tsc_ && t - ref_tsc_ < refresh_ticks_) {
        const auto elapsed = static_cast<std::uint64_t>(
            (static_cast<detail::u128>(t - ref_tsc_) * scale_q32_) >> 32);
        return ref_ns_ + elapsed + kSlackNs;
      }
    }
#endif
    return slow_path();
  }

  bool calibrated() const noexcept {
    return scale_q32_ != 0;
  }
  // ns per TSC tick in 32.32 fixed point (0 while uncalibrated), for tests and diagnostics.
  std::uint64_t scale_q32() const noexcept {
    return scale_q32_;
  }

 private:
  struct Sample {
    std::uint64_t t1 = 0, ns = 0, t2 = 0;
  };
  // Covers rdtsc executing a little ahead of the loads that follow it in program order.
  static constexpr std::uint64_t kSlackNs = 1000;
  // The shortest baseline a scale is measured over.
  static constexpr std::uint64_t kCalibrationNs = 200'000'000;

  std::uint64_t slow_path() noexcept;
  bool sample(Sample& s) noexcept;

  bool enabled_;
  bool have_origin_ = false;
  Sample origin_{};
  std::uint64_t scale_baseline_ns_ = 0;  // span the current scale was measured over
  std::uint64_t scale_q32_ = 0;
  std::uint64_t ref_tsc_ = 0, ref_ns_ = 0;
  std::uint64_t refresh_ticks_ = 0;
};

// ---- slow path ---------------------------------------------------------------------------

// One bracketed reading: t1 <= the TSC when ns was read <= t2. Retried when a preemption or
// an interrupt widened the bracket; false if it stayed wide.
inline bool TscClock::sample(Sample& s) noexcept {
#if defined(__x86_64__)
  for (int i = 0; i < 4; ++i) {
    _mm_lfence();
    s.t1 = __rdtsc();
    _mm_lfence();
    s.ns = now_ns();
    _mm_lfence();
    s.t2 = __rdtsc();
    _mm_lfence();
    if (s.t2 >= s.t1 && s.t2 - s.t1 < 100'000) return true;  // ~tens of us at any TSC rate
  }
#else
  (void)s;
#endif
  return false;
}

inline std::uint64_t TscClock::slow_path() noexcept {
  if (!enabled_) return now_ns();
  if (have_origin_ && scale_q32_ == 0) {
    // Calibrating: until the baseline is long enough, a bracketed sample per call would only
    // cost three times a plain read for nothing.
    const std::uint64_t m = now_ns();
    if (m - origin_.ns < kCalibrationNs) return m;
  }
  Sample s;
  if (!sample(s)) return now_ns();
  if (!have_origin_) {
    origin_ = s;
    have_origin_ = true;
  } else {
    const std::uint64_t span_ns = s.ns - origin_.ns;
    // A new scale when there is none yet, or when the baseline has doubled (more precise).
    if (s.t1 > origin_.t2 && span_ns >= kCalibrationNs &&
        (scale_q32_ == 0 || span_ns >= 2 * scale_baseline_ns_)) {
      const auto ticks = static_cast<detail::u128>(s.t1 - origin_.t2);
      detail::u128 q = (static_cast<detail::u128>(span_ns) << 32) / ticks;
      q += q >> 10;  // room for NTP to speed the clock up by up to ~1000 ppm later
      // Plausible TSC rates only (50 MHz .. 20 GHz); anything else: stay on the precise path.
      if (q >= (static_cast<detail::u128>(1) << 32) / 20 &&
          q <= (static_cast<detail::u128>(20) << 32)) {
        scale_q32_ = static_cast<std::uint64_t>(q);
        scale_baseline_ns_ = span_ns;
        // Re-read the reference every ~10 ms of ticks.
        refresh_ticks_ = static_cast<std::uint64_t>((std::uint64_t{10'000'000} << 32) / q);
      }
    }
  }
  ref_tsc_ = s.t1;
  ref_ns_ = s.ns;
  return s.ns;
}

}  // namespace ringwire::core
