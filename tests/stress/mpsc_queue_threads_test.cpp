// Multi-producer / single-consumer stress between threads, for every MPSC
// queue: MpscNodeQueue (intrusive, nodes recycled through a per-producer
// window), MpscQueue<T> (node pool) and MpscRing<T> (owner-tagged cells, all
// producers alive). Each queue type moves 10,000,000 items per run by default,
// split over 2- and 4-producer runs (RINGWIRE_STRESS_MESSAGES overrides the
// per-type total, TSan runs 10x fewer). Every item carries (producer, seq):
// the single consumer checks that each producer's items arrive exactly once
// and in push order, and the consumer switches between try_pop and the
// linearizable pop. A watchdog aborts with a message if the consumer stops
// making progress (a livelocked queue), so a bug fails instead of hanging.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/queue_test_support.hpp"
#include "common/test_support.hpp"
#include "ringwire/core/clock.hpp"
#include "ringwire/queue/mpsc_node_queue.hpp"
#include "ringwire/queue/mpsc_queue.hpp"
#include "ringwire/queue/mpsc_ring.hpp"

namespace {

using namespace std::chrono_literals;
using ringwire::MpscNodeQueue;
using ringwire::MpscQueue;
using ringwire::MpscRing;
using ringwire::core::now_ns;
using ringwire::queue::hook_owner;
using ringwire::queue::MpscHook;
using ringwire::queue::PopResult;
using ringwire::queue::PopStatus;
using ringwire::test::encode_item;
using ringwire::test::Idle;
using ringwire::test::item_producer;
using ringwire::test::item_seq;
using ringwire::test::OrderTracker;
using ringwire::test::StallWatchdog;

constexpr std::uint64_t kDefaultPerType = 10'000'000;
constexpr auto kStall = 20s;

std::uint64_t per_type() {
  return ringwire::test::stress_messages(kDefaultPerType);
}

// The two runs of each queue type share its total. In the first, producers
// do a little work between pushes so the queue runs nearly empty and the
// consumer keeps meeting pushes in progress (busy); in the second, four
// producers push flat out and the queue runs nearly full.
struct Split {
  std::uint32_t producers;
  std::uint64_t total;
  bool paced;
};
std::vector<Split> splits() {
  const std::uint64_t n = per_type();
  return {{2, n / 2, true}, {4, n - n / 2, false}};
}

// A few dozen nanoseconds of work, varying per item; returns a value so the
// compiler keeps it.
std::uint64_t pace(bool paced, std::uint64_t s) {
  if (!paced) return 0;
  std::uint64_t x = s;
  for (std::uint64_t i = 0; i < (ringwire::test::mix64(s) & 15); ++i)
    x = ringwire::test::mix64(x);
  return x;
}
std::atomic<std::uint64_t> g_sink{0};

struct Report {
  std::uint64_t received = 0;
  std::uint64_t busy = 0;
  std::uint64_t empty = 0;
  double seconds = 0;
};

void print(const char* what, std::uint32_t producers, const Report& r) {
  std::printf("[ stress   ] %s %ux1: %llu items in %.2f s (%.2f M/s), busy %llu, empty %llu\n",
              what, producers, static_cast<unsigned long long>(r.received), r.seconds,
              static_cast<double>(r.received) / r.seconds / 1e6,
              static_cast<unsigned long long>(r.busy), static_cast<unsigned long long>(r.empty));
}

// Which pop flavour the consumer uses for the next stretch of items.
bool linearizable_phase(std::uint64_t received) {
  return (received / 40'000) % 3 == 2;
}

// ---- MpscNodeQueue ---------------------------------------------------------------------

struct Node {
  std::uint64_t id = 0;
  MpscHook hook;
};

TEST(MpscQueueThreadsStress, IntrusiveNodeQueue) {
  constexpr std::uint64_t kWindow = 512;  // nodes per producer, reused in turn
  for (const Split& split : splits()) {
    SCOPED_TRACE(std::to_string(split.producers) + " producers");
    const std::uint32_t np = split.producers;
    const std::uint64_t per = split.total / np;
    MpscNodeQueue q;
    std::vector<std::unique_ptr<Node[]>> nodes;
    // consumed[p]: items of p the consumer is done with; node s % kWindow may
    // be pushed again for seq s once consumed[p] > s - kWindow.
    std::vector<std::unique_ptr<std::atomic<std::uint64_t>>> consumed;
    for (std::uint32_t p = 0; p < np; ++p) {
      nodes.push_back(std::make_unique<Node[]>(kWindow));
      consumed.push_back(std::make_unique<std::atomic<std::uint64_t>>(0));
    }
    std::atomic<std::uint64_t> progress{0};
    StallWatchdog dog("MpscNodeQueue consumer", progress, kStall);
    const auto t0 = now_ns();
    std::vector<std::thread> producers;
    for (std::uint32_t p = 0; p < np; ++p) {
      producers.emplace_back([&, p] {
        Idle idle;
        std::uint64_t sink = 0;
        for (std::uint64_t s = 0; s < per; ++s) {
          sink += pace(split.paced, s);
          while (s >= kWindow && consumed[p]->load(std::memory_order_acquire) <= s - kWindow)
            idle();
          idle.reset();
          Node& n = nodes[p][s % kWindow];
          n.id = encode_item(p, s);
          q.push(&n.hook);
        }
        g_sink.fetch_add(sink, std::memory_order_relaxed);
      });
    }
    OrderTracker order(np, /*strictly_next=*/true);
    Report rep;
    std::uint64_t misplaced = 0;
    Idle idle;
    const std::uint64_t total = per * np;
    while (rep.received < total) {
      MpscHook* h = nullptr;
      if (linearizable_phase(rep.received)) {
        h = q.pop_linearizable();
        if (h == nullptr) ++rep.empty;
      } else {
        const PopResult r = q.try_pop();
        h = r.node;
        if (r.status == PopStatus::busy) ++rep.busy;
        if (r.status == PopStatus::empty) ++rep.empty;
      }
      if (h == nullptr) {
        idle();
        continue;
      }
      idle.reset();
      Node* n = hook_owner<Node>(h);
      const std::uint64_t id = n->id;
      const std::uint32_t p = item_producer(id);
      if (p >= np || n != &nodes[p][item_seq(id) % kWindow]) ++misplaced;
      order.check(id);
      ++rep.received;
      if (p < np) consumed[p]->fetch_add(1, std::memory_order_release);
      if ((rep.received & 255) == 0) progress.store(rep.received, std::memory_order_relaxed);
    }
    for (auto& t : producers)
      t.join();
    rep.seconds = ringwire::test::seconds_since(t0);
    print("MpscNodeQueue", np, rep);
    EXPECT_EQ(rep.received, total);
    EXPECT_EQ(order.violations(), 0u) << order.first_error();
    EXPECT_EQ(misplaced, 0u) << "a node came back with another node's item";
    EXPECT_EQ(q.try_pop().status, PopStatus::empty);
    EXPECT_TRUE(q.empty_approx());
  }
}

// ---- MpscQueue<T> ----------------------------------------------------------------------

TEST(MpscQueueThreadsStress, PooledQueue) {
  for (const Split& split : splits()) {
    SCOPED_TRACE(std::to_string(split.producers) + " producers");
    const std::uint32_t np = split.producers;
    const std::uint64_t per = split.total / np;
    MpscQueue<std::uint64_t> q(1024);
    std::atomic<std::uint64_t> progress{0};
    StallWatchdog dog("MpscQueue consumer", progress, kStall);
    const auto t0 = now_ns();
    std::vector<std::thread> producers;
    for (std::uint32_t p = 0; p < np; ++p) {
      producers.emplace_back([&, p] {
        Idle idle;
        std::uint64_t sink = 0;
        for (std::uint64_t s = 0; s < per; ++s) {
          sink += pace(split.paced, s);
          while (!q.try_push(encode_item(p, s)))
            idle();
          idle.reset();
        }
        g_sink.fetch_add(sink, std::memory_order_relaxed);
      });
    }
    OrderTracker order(np, /*strictly_next=*/true);
    Report rep;
    Idle idle;
    const std::uint64_t total = per * np;
    while (rep.received < total) {
      std::uint64_t v = 0;
      bool got = false;
      if (linearizable_phase(rep.received)) {
        got = q.pop_linearizable(v);
        if (!got) ++rep.empty;
      } else {
        const PopStatus s = q.try_pop(v);
        got = s == PopStatus::ok;
        if (s == PopStatus::busy) ++rep.busy;
        if (s == PopStatus::empty) ++rep.empty;
      }
      if (!got) {
        idle();
        continue;
      }
      idle.reset();
      order.check(v);
      ++rep.received;
      if ((rep.received & 255) == 0) progress.store(rep.received, std::memory_order_relaxed);
    }
    for (auto& t : producers)
      t.join();
    rep.seconds = ringwire::test::seconds_since(t0);
    print("MpscQueue", np, rep);
    EXPECT_EQ(rep.received, total);
    EXPECT_EQ(order.violations(), 0u) << order.first_error();
    std::uint64_t v = 0;
    EXPECT_EQ(q.try_pop(v), PopStatus::empty);
    // Every pool node is back: the queue takes exactly capacity items again.
    for (std::uint32_t i = 0; i < q.capacity(); ++i)
      ASSERT_TRUE(q.try_push(i)) << "pool node " << i << " leaked";
    EXPECT_FALSE(q.try_push(0));
  }
}

// ---- MpscRing<T> (threads, everyone alive) -----------------------------------------------

TEST(MpscQueueThreadsStress, OwnerTaggedRing) {
  for (const Split& split : splits()) {
    SCOPED_TRACE(std::to_string(split.producers) + " producers");
    const std::uint32_t np = split.producers;
    const std::uint64_t per = split.total / np;
    MpscRing<std::uint64_t> ring(1024);
    std::atomic<std::uint64_t> progress{0};
    StallWatchdog dog("MpscRing consumer", progress, kStall);
    const auto t0 = now_ns();
    std::atomic<std::uint32_t> registration_failures{0};
    std::vector<std::thread> producers;
    for (std::uint32_t p = 0; p < np; ++p) {
      producers.emplace_back([&, p] {
        auto owner = ring.register_producer(p + 1, 42);
        if (!owner) {
          registration_failures.fetch_add(1);
          return;
        }
        Idle idle;
        std::uint64_t sink = 0;
        for (std::uint64_t s = 0; s < per; ++s) {
          sink += pace(split.paced, s);
          while (!ring.try_push(*owner, encode_item(p, s)))
            idle();
          idle.reset();
        }
        g_sink.fetch_add(sink, std::memory_order_relaxed);
        ring.unregister_producer(*owner);
      });
    }
    OrderTracker order(np, /*strictly_next=*/true);
    Report rep;
    Idle idle;
    std::uint64_t oracle_calls = 0;
    auto alive = [&](std::uint64_t a, std::uint64_t b) {
      ++oracle_calls;
      return a >= 1 && a <= np && b == 42;
    };
    const std::uint64_t total = per * np;
    while (rep.received < total && registration_failures.load() == 0) {
      std::uint64_t v = 0;
      const auto s = ring.try_pop(v, alive);
      if (s != MpscRing<std::uint64_t>::PopStatus::ok) {
        if (s == MpscRing<std::uint64_t>::PopStatus::busy) ++rep.busy;
        if (s == MpscRing<std::uint64_t>::PopStatus::empty) ++rep.empty;
        idle();
        continue;
      }
      idle.reset();
      order.check(v);
      ++rep.received;
      if ((rep.received & 255) == 0) progress.store(rep.received, std::memory_order_relaxed);
    }
    for (auto& t : producers)
      t.join();
    rep.seconds = ringwire::test::seconds_since(t0);
    print("MpscRing", np, rep);
    ASSERT_EQ(registration_failures.load(), 0u);
    EXPECT_EQ(rep.received, total);
    EXPECT_EQ(order.violations(), 0u) << order.first_error();
    EXPECT_EQ(ring.control().abandoned.load(), 0u) << "a live producer's cell was abandoned";
    EXPECT_EQ(ring.control().enqueue_pos.load(), total);
    EXPECT_EQ(ring.control().dequeue_pos.load(), total);
    std::uint64_t v = 0;
    EXPECT_EQ(ring.try_pop(v, alive), MpscRing<std::uint64_t>::PopStatus::empty);
    for (const auto& slot : ring.control().producers)
      EXPECT_EQ(slot.state.load(), 0u) << "slot not given back by unregister_producer";
    std::printf("[ stress   ]   (liveness asked %llu times)\n",
                static_cast<unsigned long long>(oracle_calls));
  }
}

}  // namespace
