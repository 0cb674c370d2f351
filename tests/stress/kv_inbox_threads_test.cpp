// The kv_server Raft loop's Inbox (src/kv/server/inbox.hpp): several poster threads against
// one loop thread that drains and sleeps on the futex between drains, as the real loop does
// with a short tick timeout. Every closure carries (poster, seq): the loop checks each
// poster's closures run exactly once and in post order. A lost wake-up would show as the
// loop sleeping its whole (long) timeout with work queued: the test uses a 1 s timeout and
// fails if the run takes longer than the work could explain.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#include "common/test_support.hpp"
#include "kv/server/inbox.hpp"

namespace {

using ringwire::kv::server::Inbox;

TEST(KvInbox, PostersAgainstSleepingLoop) {
  constexpr int kPosters = 4;
  const std::uint64_t per_poster = ringwire::test::stress_messages(2'000'000) / kPosters;
  Inbox inbox;
  std::vector<std::uint64_t> next(kPosters, 0);  // loop thread only
  std::uint64_t errors = 0;
  std::atomic<bool> posters_done{false};
  std::uint64_t ran = 0;
  std::uint64_t sleeps = 0;

  const auto start = std::chrono::steady_clock::now();
  std::thread loop([&] {
    const std::uint64_t total = per_poster * kPosters;
    while (ran < total) {
      ran += inbox.drain([](Inbox::Fn& fn) { fn(); });
      if (ran < total) {
        inbox.wait(1'000'000'000);  // a lost wake-up costs a full second
        ++sleeps;
      }
    }
  });
  std::vector<std::thread> posters;
  for (int p = 0; p < kPosters; ++p) {
    posters.emplace_back([&, p] {
      for (std::uint64_t i = 0; i < per_poster; ++i) {
        inbox.post([&, p, i] {
          if (next[p] != i) ++errors;
          next[p] = i + 1;
        });
        // Bursts and pauses, so the loop really goes to sleep between them.
        if (i % 4096 == 0) std::this_thread::sleep_for(std::chrono::microseconds(50));
      }
    });
  }
  for (auto& t : posters)
    t.join();
  posters_done = true;
  loop.join();
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(errors, 0u);
  for (int p = 0; p < kPosters; ++p)
    EXPECT_EQ(next[p], per_poster) << "poster " << p;
  std::printf("inbox: %llu closures from %d posters in %.2f s, loop slept %llu times\n",
              static_cast<unsigned long long>(ran), kPosters, secs,
              static_cast<unsigned long long>(sleeps));
  // Generous: the work itself takes well under a second per million closures even under TSan
  // on this machine; several lost wake-ups would add whole seconds each.
  EXPECT_LT(secs, 60.0);
}

// Ping-pong: one closure in flight at a time, so nothing else can cover for a lost wake-up;
// the loop's futex timeout is 2 s, so one lost wake-up shows as a round trip of 2 s.
TEST(KvInbox, NoLostWakeupInPingPong) {
  const std::uint64_t rounds = ringwire::test::stress_messages(200'000) / 10;
  Inbox inbox;
  std::atomic<std::uint64_t> done{0};
  std::atomic<bool> stop{false};
  std::thread loop([&] {
    while (!stop.load()) {
      inbox.drain([](Inbox::Fn& fn) { fn(); });
      if (!stop.load()) inbox.wait(2'000'000'000);
    }
  });
  double worst = 0;
  for (std::uint64_t i = 0; i < rounds; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    inbox.post([&] { done.fetch_add(1); });
    while (done.load() != i + 1)
      std::this_thread::yield();
    const double rt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (rt >= 1.0) {
      ADD_FAILURE() << "round " << i << " took " << rt << " s: a post was slept through";
      break;
    }
    worst = std::max(worst,
                     std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  stop = true;
  inbox.post([] {});
  loop.join();
  std::printf("inbox ping-pong: %llu rounds, worst round trip %.3f ms\n",
              static_cast<unsigned long long>(rounds), worst * 1e3);
  EXPECT_LT(worst, 1.0) << "a post was slept through";
}

}  // namespace
