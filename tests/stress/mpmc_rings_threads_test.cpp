// Multi-producer / multi-consumer stress between threads for MpmcRing (FIFO,
// padded and packed cells) and MpmcUnorderedRing (Pawl, no order). Each ring
// type moves 10,000,000 items per run by default, split over 2x2, 4x1 and 1x4
// producer x consumer runs (RINGWIRE_STRESS_MESSAGES overrides the per-type
// total; TSan runs 10x fewer). The machine may have two cores: the threads
// are oversubscribed on purpose, preemption at arbitrary points is part of
// the test.
//
// Every item is (producer, seq). A shared ledger records each item once
// (exchange on one byte per item): a duplicate is caught when it arrives, a
// loss at the end. MpmcRing hands out tickets in one total order, so each
// consumer must see every producer's items in increasing seq order (FIFO per
// producer per consumer); the Pawl ring promises no order, only exactly once.
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
#include "ringwire/queue/mpmc_ring.hpp"
#include "ringwire/queue/mpmc_unordered_ring.hpp"

namespace {

using namespace std::chrono_literals;
using ringwire::MpmcRing;
using ringwire::MpmcUnorderedRing;
using ringwire::core::now_ns;
using ringwire::test::encode_item;
using ringwire::test::Idle;
using ringwire::test::Ledger;
using ringwire::test::OrderTracker;
using ringwire::test::Seen;
using ringwire::test::StallWatchdog;

constexpr std::uint64_t kDefaultPerType = 10'000'000;
constexpr auto kStall = 20s;

struct Shape {
  std::uint32_t producers;
  std::uint32_t consumers;
  std::uint64_t total;
};

// 2x2, 4x1, 1x4 sharing the per-type total 40/30/30.
std::vector<Shape> shapes() {
  const std::uint64_t n = ringwire::test::stress_messages(kDefaultPerType);
  const std::uint64_t a = n * 4 / 10, b = n * 3 / 10;
  return {{2, 2, a}, {4, 1, b}, {1, 4, n - a - b}};
}

struct ConsumerResult {
  std::uint64_t received = 0;
  std::uint64_t duplicates = 0;
  std::uint64_t out_of_range = 0;
  std::uint64_t empty = 0;
  std::uint64_t order_violations = 0;
  std::string first_error;
};

// Runs `produce(p, per)` on np threads and `consume(c, result, done)` on nc
// threads, where consumers stop once `done` (items consumed by all) reaches
// the total. Checks the ledger and the per-consumer results.
template <class Produce, class Consume>
void run(const std::string& what, const Shape& shape, Produce produce, Consume consume) {
  const std::uint32_t np = shape.producers, nc = shape.consumers;
  const std::uint64_t per = shape.total / np;
  const std::uint64_t total = per * np;
  Ledger ledger(np, per);
  std::atomic<std::uint64_t> done{0};
  std::vector<ConsumerResult> results(nc);
  StallWatchdog dog(what, done, kStall, [&] {
    return "consumed " + std::to_string(done.load()) + " of " + std::to_string(total);
  });
  const auto t0 = now_ns();
  std::vector<std::thread> threads;
  for (std::uint32_t c = 0; c < nc; ++c)
    threads.emplace_back([&, c] { consume(c, ledger, results[c], done, total); });
  for (std::uint32_t p = 0; p < np; ++p)
    threads.emplace_back([&, p] { produce(p, per); });
  for (auto& t : threads)
    t.join();
  const double s = ringwire::test::seconds_since(t0);

  ConsumerResult sum;
  std::string per_consumer;
  for (const auto& r : results) {
    sum.received += r.received;
    sum.duplicates += r.duplicates;
    sum.out_of_range += r.out_of_range;
    sum.empty += r.empty;
    sum.order_violations += r.order_violations;
    if (sum.first_error.empty()) sum.first_error = r.first_error;
    if (!per_consumer.empty()) per_consumer += '/';
    per_consumer += std::to_string(r.received) + "(" + std::to_string(r.empty) + ")";
  }
  std::printf(
      "[ stress   ] %s %ux%u: %llu items in %.2f s (%.2f M/s), per consumer received(empty) %s, "
      "empty pops %llu\n",
      what.c_str(), np, nc, static_cast<unsigned long long>(sum.received), s,
      static_cast<double>(sum.received) / s / 1e6, per_consumer.c_str(),
      static_cast<unsigned long long>(sum.empty));
  EXPECT_EQ(sum.received, total);
  EXPECT_EQ(sum.duplicates, 0u) << "items delivered twice";
  EXPECT_EQ(sum.out_of_range, 0u) << "items that were never pushed";
  EXPECT_EQ(sum.order_violations, 0u) << sum.first_error;
  for (std::uint32_t p = 0; p < np; ++p) {
    std::uint64_t first = 0;
    const std::uint64_t missing = ledger.missing(p, per, &first);
    EXPECT_EQ(missing, 0u) << "producer " << p << " lost " << missing << " items, first seq "
                           << first;
  }
}

void record(Ledger& ledger, ConsumerResult& r, std::uint64_t id) {
  switch (ledger.record(id)) {
    case Seen::first:
      break;
    case Seen::duplicate:
      ++r.duplicates;
      break;
    case Seen::out_of_range:
      ++r.out_of_range;
      break;
  }
}

// ---- MpmcRing ------------------------------------------------------------------------

template <class Ring>
void mpmc_ring_run(const char* layout, const Shape& shape, std::uint64_t capacity) {
  Ring ring(capacity);
  run(
      std::string("MpmcRing<") + layout + ">", shape,
      [&](std::uint32_t p, std::uint64_t per) {
        Idle idle;
        for (std::uint64_t s = 0; s < per; ++s) {
          while (!ring.try_push(encode_item(p, s)))
            idle();
          idle.reset();
        }
      },
      [&](std::uint32_t, Ledger& ledger, ConsumerResult& r, std::atomic<std::uint64_t>& done,
          std::uint64_t total) {
        OrderTracker order(shape.producers, /*strictly_next=*/false);
        Idle idle;
        while (done.load(std::memory_order_relaxed) < total) {
          std::uint64_t id = 0;
          if (!ring.try_pop(id)) {
            ++r.empty;
            idle();
            continue;
          }
          idle.reset();
          ++r.received;
          record(ledger, r, id);
          order.check(id);
          done.fetch_add(1, std::memory_order_relaxed);
        }
        r.order_violations = order.violations();
        r.first_error = order.first_error();
      });
  std::uint64_t v = 0;
  EXPECT_FALSE(ring.try_pop(v)) << "item left in the ring";
  EXPECT_EQ(ring.size_approx(), 0u);
}

TEST(MpmcRingsThreadsStress, FifoRingPaddedAndPackedCells) {
  const auto all = shapes();
  mpmc_ring_run<MpmcRing<std::uint64_t, true>>("padded", all[0], 1024);
  mpmc_ring_run<MpmcRing<std::uint64_t, true>>("padded", all[1], 256);
  mpmc_ring_run<MpmcRing<std::uint64_t, false>>("packed", all[2], 64);
}

// ---- MpmcUnorderedRing (Pawl) -------------------------------------------------------------

void pawl_run(const Shape& shape, std::uint64_t capacity) {
  using Ring = MpmcUnorderedRing<std::uint64_t>;
  Ring ring(capacity);
  std::atomic<std::uint64_t> failed_pushes{0};
  const bool use_stubborn = shape.producers <= shape.consumers;
  run(
      "MpmcUnorderedRing", shape,
      [&](std::uint32_t p, std::uint64_t per) {
        Idle idle;
        std::uint64_t failed = 0;
        for (std::uint64_t s = 0; s < per; ++s) {
          const std::uint64_t id = encode_item(p, s);
          // stubborn_push spins (pause only, never yields): with more
          // spinning producers than cores it starves the consumers for
          // whole time slices (3M items 4x1 take minutes instead of < 1 s
          // on two loaded cores), so it is used only where producers do not
          // outnumber consumers, and for one chunk in five.
          const std::uint64_t phase = (s / 4096) % 5;
          if (phase == 4 && use_stubborn) {
            ring.stubborn_push(id);
          } else if (phase < 2) {
            while (!ring.weak_push(id)) {
              ++failed;
              idle();
            }
          } else {
            while (!ring.push(id)) {
              ++failed;
              idle();
            }
          }
          idle.reset();
        }
        failed_pushes.fetch_add(failed, std::memory_order_relaxed);
      },
      [&](std::uint32_t, Ledger& ledger, ConsumerResult& r, std::atomic<std::uint64_t>& done,
          std::uint64_t total) {
        Idle idle;
        while (done.load(std::memory_order_relaxed) < total) {
          auto v = ring.pop();
          if (!v) {
            ++r.empty;
            idle();
            continue;
          }
          idle.reset();
          ++r.received;
          record(ledger, r, *v);
          done.fetch_add(1, std::memory_order_relaxed);
        }
      });
  std::printf("[ stress   ]   failed weak/bounded pushes (retried): %llu\n",
              static_cast<unsigned long long>(failed_pushes.load()));
  EXPECT_EQ(ring.size_approx(), 0u);
  EXPECT_FALSE(ring.pop().has_value());
  std::uint64_t cursor = 0;
  EXPECT_FALSE(ring.unsafe_scanning_pop(&cursor).has_value()) << "an item was left in a slot";
}

TEST(MpmcRingsThreadsStress, UnorderedPawlRing) {
  const auto all = shapes();
  // Not below 1024 where consumers outnumber producers: consumers that keep
  // passing unwritten slots strand items a lap behind read_front, and on a
  // 64-slot ring a single producer then fails about one weak_push per item
  // (and stubborn_push spins for seconds) while the consumers sweep laps.
  pawl_run(all[0], 1024);
  pawl_run(all[1], 256);
  pawl_run(all[2], 1024);
}

}  // namespace
