// MutexQueue between a producer thread and a consumer thread: blocking
// push_wait/pop_wait and batch push_n/pop_n, every message verified.
// 2,000,000 messages per variant by default (the mutex is slower),
// RINGWIRE_STRESS_MESSAGES overrides, 10x fewer under TSan.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <thread>
#include <vector>

#include "common/test_support.hpp"
#include "ringwire/core/clock.hpp"
#include "ringwire/queue/mutex_queue.hpp"

namespace {

using namespace std::chrono_literals;
using ringwire::MutexQueue;
using ringwire::core::Deadline;
using ringwire::core::now_ns;
using ringwire::test::Idle;
using ringwire::test::make_msg;
using ringwire::test::Msg;
using ringwire::test::Verifier;
using Queue = MutexQueue<Msg>;

constexpr std::uint64_t kDefaultMessages = 2'000'000;
constexpr std::uint64_t kWatchdogNs = 240'000'000'000ull;

void report(const char* what, const Verifier& v, std::uint64_t t0) {
  const double s = ringwire::test::seconds_since(t0);
  std::printf("[ stress   ] %s: %llu messages in %.2f s (%.2f M/s)\n", what,
              static_cast<unsigned long long>(v.received), s,
              static_cast<double>(v.received) / s / 1e6);
}

void expect_clean(const Verifier& v, std::uint64_t n, Queue& q) {
  EXPECT_EQ(v.received, n) << "messages lost";
  EXPECT_EQ(v.out_of_sequence, 0u) << v.first_error;
  EXPECT_EQ(v.corrupt, 0u) << v.first_error;
  EXPECT_EQ(q.size(), 0u);
  EXPECT_EQ(q.drops(), 0u);
}

TEST(MutexQueueThreadsStress, BlockingPushWaitPopWait) {
  const std::uint64_t n = ringwire::test::stress_messages(kDefaultMessages);
  Queue q(64);
  std::atomic<bool> producer_failed{false};
  const auto t0 = now_ns();
  std::thread producer([&] {
    for (std::uint64_t seq = 0; seq < n; ++seq) {
      if (!q.push_wait(make_msg(seq), Deadline::after(20s))) {
        producer_failed = true;
        return;
      }
    }
  });
  Verifier v;
  Msg m;
  while (v.received < n) {
    if (!q.pop_wait(m, Deadline::after(20s))) {
      ADD_FAILURE() << "pop_wait timed out after " << v.received << " messages";
      break;
    }
    v.check(m);
  }
  producer.join();
  report("MutexQueue push_wait/pop_wait", v, t0);
  EXPECT_FALSE(producer_failed.load()) << "push_wait timed out";
  expect_clean(v, n, q);
}

TEST(MutexQueueThreadsStress, BatchPushNPopN) {
  const std::uint64_t n = ringwire::test::stress_messages(kDefaultMessages);
  Queue q(256);
  std::atomic<bool> stop{false};
  const auto t0 = now_ns();
  std::thread producer([&] {
    std::vector<Msg> batch(61);
    Idle idle;
    std::uint64_t seq = 0;
    for (std::size_t round = 0; seq < n && !stop.load(std::memory_order_relaxed); ++round) {
      const std::size_t want =
          static_cast<std::size_t>(std::min<std::uint64_t>(1 + round % 61, n - seq));
      for (std::size_t i = 0; i < want; ++i)
        batch[i] = make_msg(seq + i);
      std::size_t done = 0;
      while (done < want && !stop.load(std::memory_order_relaxed)) {
        const std::size_t k = q.push_n(batch.data() + done, want - done);
        done += k;
        if (k == 0) {
          idle();
        } else {
          idle.reset();
        }
      }
      seq += want;
    }
  });
  Verifier v;
  std::vector<Msg> out(83);
  Idle idle;
  for (std::size_t round = 0; v.received < n; ++round) {
    const std::size_t k = q.pop_n(out.data(), 1 + round % 83);
    for (std::size_t i = 0; i < k; ++i)
      v.check(out[i]);
    if (k > 0) {
      idle.reset();
      continue;
    }
    idle();
    if (idle.should_check() && now_ns() - t0 > kWatchdogNs) {
      ADD_FAILURE() << "watchdog: stuck after " << v.received << " messages";
      break;
    }
  }
  stop = true;
  producer.join();
  report("MutexQueue push_n/pop_n", v, t0);
  expect_clean(v, n, q);
}

}  // namespace
