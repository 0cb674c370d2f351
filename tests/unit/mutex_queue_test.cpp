// MutexQueue: the same boundaries as SpscRing, plus the condition-variable
// waits (timeouts and wake-ups) and the drop-and-count policy.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <stdexcept>
#include <thread>
#include <vector>

#include "ringwire/core/clock.hpp"
#include "ringwire/queue/mutex_queue.hpp"
#include "ringwire/queue/ring_storage.hpp"

namespace {

using namespace std::chrono_literals;
using ringwire::MutexQueue;
using ringwire::core::Deadline;
using ringwire::core::Errc;
using ringwire::core::now_ns;
using ringwire::queue::MutexQueueControl;
using ringwire::queue::OwnedBytes;
using Queue = MutexQueue<std::uint64_t>;

double ms_since(std::uint64_t t0) {
  return static_cast<double>(now_ns() - t0) / 1e6;
}

void advance_empty(Queue& q, std::uint64_t pos) {
  std::uint64_t v = 0;
  for (std::uint64_t i = 0; i < pos; ++i) {
    ASSERT_TRUE(q.try_push(i));
    ASSERT_TRUE(q.try_pop(v));
  }
}

// ---- boundaries ---------------------------------------------------------------------

TEST(MutexQueueBoundaries, NewQueueIsEmpty) {
  Queue q(8);
  EXPECT_EQ(q.capacity(), 8u);
  EXPECT_EQ(q.size(), 0u);
  std::uint64_t v = 42;
  EXPECT_FALSE(q.try_pop(v));
  EXPECT_EQ(v, 42u);
  EXPECT_EQ(q.drops(), 0u);
}

TEST(MutexQueueBoundaries, ExactCapacityIsUsableWithNoWastedSlot) {
  for (std::uint64_t cap : {1u, 2u, 8u, 256u}) {
    SCOPED_TRACE("capacity " + std::to_string(cap));
    Queue q(cap);
    for (std::uint64_t i = 0; i < cap; ++i)
      ASSERT_TRUE(q.try_push(i + 1));
    EXPECT_FALSE(q.try_push(0));
    EXPECT_EQ(q.size(), cap);
    for (std::uint64_t i = 0; i < cap; ++i) {
      std::uint64_t v = 0;
      ASSERT_TRUE(q.try_pop(v));
      EXPECT_EQ(v, i + 1);
    }
    std::uint64_t v = 0;
    EXPECT_FALSE(q.try_pop(v));
  }
}

TEST(MutexQueueBoundaries, FifoOrderHoldsOverManyLaps) {
  Queue q(8);
  std::uint64_t pushed = 0, popped = 0;
  for (int step = 0; step < 20000; ++step) {
    for (int i = 0; i < 1 + step % 8 && q.try_push(pushed); ++i)
      ++pushed;
    for (int i = 0; i < 1 + (step * 3) % 8; ++i) {
      std::uint64_t v = 0;
      if (!q.try_pop(v)) break;
      ASSERT_EQ(v, popped++);
    }
    ASSERT_EQ(q.size(), pushed - popped);
  }
  EXPECT_GT(pushed / 8, 1000u);
  EXPECT_EQ(q.control().tail, pushed);
}

TEST(MutexQueueBoundaries, BatchesSplitAcrossTheWrapAndStopAtTheBoundaries) {
  Queue q(8);
  advance_empty(q, 5);
  std::vector<std::uint64_t> in(12);
  std::iota(in.begin(), in.end(), 100);
  EXPECT_EQ(q.push_n(in.data(), in.size()), 8u) << "only 8 slots exist";
  std::vector<std::uint64_t> out(12, 0);
  EXPECT_EQ(q.pop_n(out.data(), 3), 3u);
  EXPECT_EQ(q.pop_n(out.data() + 3, 9), 5u);
  for (std::size_t i = 0; i < 8; ++i)
    EXPECT_EQ(out[i], 100 + i);
  EXPECT_EQ(out[8], 0u);
  EXPECT_EQ(q.push_n(in.data(), 0), 0u);
  EXPECT_EQ(q.pop_n(out.data(), 4), 0u);
}

TEST(MutexQueueBoundaries, CapacityOneAndALargeCapacity) {
  Queue one(1);
  for (std::uint64_t i = 0; i < 100; ++i) {
    ASSERT_TRUE(one.try_push(i));
    ASSERT_FALSE(one.try_push(i));
    std::uint64_t v = 0;
    ASSERT_TRUE(one.try_pop(v));
    ASSERT_EQ(v, i);
  }
  constexpr std::uint64_t kBig = std::uint64_t{1} << 20;
  Queue big(kBig);
  std::vector<std::uint64_t> in(kBig);
  std::iota(in.begin(), in.end(), 0);
  EXPECT_EQ(big.push_n(in.data(), kBig), kBig);
  EXPECT_FALSE(big.try_push(0));
  std::vector<std::uint64_t> out(kBig);
  EXPECT_EQ(big.pop_n(out.data(), kBig), kBig);
  EXPECT_EQ(out, in);
}

// ---- construction ----------------------------------------------------------------------

const std::uint64_t kInvalidCapacities[] = {
    0, 3, 100, (std::uint64_t{1} << 32) + 1, std::uint64_t{1} << 33, UINT64_MAX};

TEST(MutexQueueConstruction, RejectsInvalidCapacities) {
  OwnedBytes mem(Queue::bytes_for(16));
  for (std::uint64_t cap : kInvalidCapacities) {
    EXPECT_THROW(Queue{cap}, std::invalid_argument) << "capacity " << cap;
    auto r = Queue::create_in(mem.get(), mem.size(), cap);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.status().code(), Errc::invalid_argument) << "capacity " << cap;
  }
  auto small = Queue::create_in(mem.get(), mem.size(), 32);
  ASSERT_FALSE(small.has_value());
  EXPECT_EQ(small.status().code(), Errc::geometry_mismatch);
}

TEST(MutexQueueConstruction, AttachSharesStateAndRejectsBadGeometry) {
  OwnedBytes mem(Queue::bytes_for(16));
  auto created = Queue::create_in(mem.get(), mem.size(), 16);
  ASSERT_TRUE(created.has_value()) << created.status().to_string();
  ASSERT_TRUE(created->try_push(5));
  auto attached = Queue::attach(mem.get(), mem.size());
  ASSERT_TRUE(attached.has_value()) << attached.status().to_string();
  std::uint64_t v = 0;
  ASSERT_TRUE(attached->try_pop(v));
  EXPECT_EQ(v, 5u);
  EXPECT_EQ(created->size(), 0u);

  auto wrong_type = MutexQueue<std::uint32_t>::attach(mem.get(), mem.size());
  ASSERT_FALSE(wrong_type.has_value());
  EXPECT_EQ(wrong_type.status().code(), Errc::geometry_mismatch);
  auto short_region = Queue::attach(mem.get(), mem.size() - 1);
  ASSERT_FALSE(short_region.has_value());
  EXPECT_EQ(short_region.status().code(), Errc::geometry_mismatch);
  auto* c = static_cast<MutexQueueControl*>(mem.get());
  c->capacity = 12;
  auto bad_cap = Queue::attach(mem.get(), mem.size());
  ASSERT_FALSE(bad_cap.has_value());
  EXPECT_EQ(bad_cap.status().code(), Errc::geometry_mismatch);
  c->capacity = 16;
}

// ---- waits --------------------------------------------------------------------------------

TEST(MutexQueueWait, PopWaitTimesOutOnAnEmptyQueueAtTheDeadline) {
  Queue q(4);
  std::uint64_t v = 0;
  const auto t0 = now_ns();
  EXPECT_FALSE(q.pop_wait(v, Deadline::after(50ms)));
  const double ms = ms_since(t0);
  EXPECT_GE(ms, 49.0) << "returned before the deadline";
  EXPECT_LT(ms, 1000.0) << "overslept the deadline";
}

TEST(MutexQueueWait, PushWaitTimesOutOnAFullQueueAtTheDeadline) {
  Queue q(2);
  ASSERT_TRUE(q.try_push(1));
  ASSERT_TRUE(q.try_push(2));
  const auto t0 = now_ns();
  EXPECT_FALSE(q.push_wait(3, Deadline::after(50ms)));
  const double ms = ms_since(t0);
  EXPECT_GE(ms, 49.0);
  EXPECT_LT(ms, 1000.0);
  EXPECT_EQ(q.size(), 2u);
}

TEST(MutexQueueWait, ExpiredDeadlineFailsFastButSucceedsWhenPossible) {
  Queue q(1);
  const auto past = Deadline::after(0ns);
  std::uint64_t v = 0;
  EXPECT_FALSE(q.pop_wait(v, past));
  EXPECT_TRUE(q.push_wait(9, past)) << "room available: no wait needed";
  EXPECT_FALSE(q.push_wait(10, past));
  EXPECT_TRUE(q.pop_wait(v, past));
  EXPECT_EQ(v, 9u);
}

TEST(MutexQueueWait, PopWaitIsWokenByAProducerThread) {
  Queue q(4);
  for (std::uint64_t round = 0; round < 200; ++round) {
    std::thread producer([&] {
      std::this_thread::sleep_for(std::chrono::microseconds(round % 3 == 0 ? 500 : 0));
      q.try_push(round);
    });
    std::uint64_t v = ~0ull;
    ASSERT_TRUE(q.pop_wait(v, Deadline::after(5s))) << "round " << round;
    EXPECT_EQ(v, round);
    producer.join();
  }
}

TEST(MutexQueueWait, PushWaitIsWokenWhenAConsumerMakesRoom) {
  Queue q(1);
  ASSERT_TRUE(q.try_push(0));
  for (std::uint64_t round = 1; round <= 200; ++round) {
    std::thread consumer([&] {
      std::this_thread::sleep_for(std::chrono::microseconds(round % 3 == 0 ? 500 : 0));
      std::uint64_t v = 0;
      EXPECT_TRUE(q.pop_wait(v, Deadline::after(5s)));
      EXPECT_EQ(v, round - 1);
    });
    ASSERT_TRUE(q.push_wait(round, Deadline::after(5s))) << "round " << round;
    consumer.join();
  }
}

// ---- drop and count ----------------------------------------------------------------------

TEST(MutexQueueDrop, PushOrDropCountsEveryRefusedItem) {
  Queue q(4);
  for (std::uint64_t i = 0; i < 4; ++i)
    EXPECT_TRUE(q.push_or_drop(i));
  EXPECT_EQ(q.drops(), 0u);
  for (int i = 0; i < 7; ++i)
    EXPECT_FALSE(q.push_or_drop(100));
  EXPECT_EQ(q.drops(), 7u);
  EXPECT_EQ(q.control().drops, 7u);
  std::uint64_t v = 0;
  ASSERT_TRUE(q.try_pop(v));
  EXPECT_EQ(v, 0u) << "dropped items must not displace queued ones";
  EXPECT_TRUE(q.push_or_drop(4));
  EXPECT_EQ(q.drops(), 7u);
  for (std::uint64_t i = 1; i <= 4; ++i) {
    ASSERT_TRUE(q.try_pop(v));
    EXPECT_EQ(v, i);
  }
}

// ---- corrupt indices -----------------------------------------------------------------------

TEST(MutexQueueCorruptIndices, TailBehindHeadReadsAsEmpty) {
  Queue q(8);
  advance_empty(q, 5);
  q.control().tail = 2;
  EXPECT_EQ(q.size(), 0u);
  std::uint64_t out[16];
  EXPECT_EQ(q.pop_n(out, 16), 0u);
}

TEST(MutexQueueCorruptIndices, TailFarAheadHandsOutAtMostCapacity) {
  Queue q(8);
  advance_empty(q, 3);
  q.control().tail = 3 + 1000 * 8;
  EXPECT_EQ(q.size(), 8u);
  std::vector<std::uint64_t> out(64);
  EXPECT_LE(q.pop_n(out.data(), out.size()), 8u);
}

}  // namespace
