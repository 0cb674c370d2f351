// core::TscClock: its reading is never behind CLOCK_MONOTONIC (the property the cache's
// staleness check relies on), not far ahead of it, and it calibrates where the kernel keeps
// time with the TSC.
#include "ringwire/core/tsc_clock.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>

namespace {

using ringwire::core::now_ns;
using ringwire::core::TscClock;

TEST(TscClock, NeverBehindTheMonotonicClockAndNeverFarAhead) {
  TscClock clock;
  std::uint64_t calls = 0, calibrated_calls = 0, worst_ahead = 0;
  const std::uint64_t end = now_ns() + 800'000'000;  // long enough to calibrate (200 ms) twice
  for (std::uint64_t t = now_ns(); t < end; t = now_ns()) {
    for (int i = 0; i < 1000; ++i) {
      const std::uint64_t before = now_ns();
      const std::uint64_t est = clock.now_upper();
      const std::uint64_t after = now_ns();
      ++calls;
      if (clock.calibrated()) ++calibrated_calls;
      ASSERT_GE(est, before) << "the estimate fell behind the clock after " << calls << " calls";
      // An upper bound that is far too high would make every read stale: 1 ms is 10,000x the
      // slack the clock adds on purpose.
      if (est > after) worst_ahead = std::max(worst_ahead, est - after);
      ASSERT_LE(est, after + 1'000'000) << "the estimate ran ahead by " << (est - after) << " ns";
    }
  }
  std::printf(
      "[ tsc ] %llu calls, %llu on the TSC path, at most %llu ns ahead, scale %.4f ns/tick\n",
      static_cast<unsigned long long>(calls), static_cast<unsigned long long>(calibrated_calls),
      static_cast<unsigned long long>(worst_ahead),
      static_cast<double>(clock.scale_q32()) / 4294967296.0);
  if (ringwire::core::tsc_is_clocksource()) {
    EXPECT_TRUE(clock.calibrated()) << "the kernel uses the TSC but the clock did not calibrate";
    EXPECT_GT(calibrated_calls, calls / 2);
  } else {
    EXPECT_FALSE(clock.calibrated());
  }
}

TEST(TscClock, ManyClocksAgreeWithTheMonotonicClock) {
  // Fresh clocks (uncalibrated) are the precise clock itself.
  for (int i = 0; i < 1000; ++i) {
    TscClock c;
    const std::uint64_t before = now_ns();
    const std::uint64_t est = c.now_upper();
    const std::uint64_t after = now_ns();
    ASSERT_GE(est, before);
    ASSERT_LE(est, after);
    ASSERT_FALSE(c.calibrated());
  }
}

}  // namespace
