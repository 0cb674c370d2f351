// MpscNodeQueue (intrusive Vyukov MPSC) and its pool wrapper MpscQueue<T>:
// empty/full boundaries, node reuse over many refills, hook_owner, and the
// half-done push window.
//
// The half-done push (a producer between its exchange on head_ and its link
// store into the previous node) is produced deterministically, with no test
// hook in the queue: the previous node's memory is made read-only (WriteTrap),
// so the producer's link store faults and parks it in a signal handler right
// after the exchange. While it is parked, try_pop must say busy (not empty)
// and pop_linearizable must not return; once it is let go, both deliver the
// items in order. A racing variant checks the same promises statistically.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <new>
#include <stdexcept>
#include <thread>
#include <vector>

#include "common/queue_test_support.hpp"
#include "common/test_support.hpp"
#include "common/write_trap.hpp"
#include "ringwire/core/clock.hpp"
#include "ringwire/queue/mpsc_node_queue.hpp"
#include "ringwire/queue/mpsc_queue.hpp"

namespace {

using namespace std::chrono_literals;
using ringwire::MpscNodeQueue;
using ringwire::MpscQueue;
using ringwire::core::now_ns;
using ringwire::queue::hook_owner;
using ringwire::queue::MpscHook;
using ringwire::queue::PopResult;
using ringwire::queue::PopStatus;
using ringwire::test::Pages;
using ringwire::test::WriteTrap;

// The hook is deliberately not the first member: hook_owner must subtract its offset.
struct Item {
  std::uint64_t before = 0;
  MpscHook hook;
  std::uint64_t value = 0;
};

Item* owner_of(MpscHook* h) {
  return hook_owner<Item>(h);
}

const char* name_of(PopStatus s) {
  switch (s) {
    case PopStatus::ok:
      return "ok";
    case PopStatus::empty:
      return "empty";
    case PopStatus::busy:
      return "busy";
  }
  return "?";
}

// ---- boundaries ---------------------------------------------------------------------

TEST(MpscNodeQueue, NewQueueIsEmpty) {
  MpscNodeQueue q;
  EXPECT_TRUE(q.empty_approx());
  const PopResult r = q.try_pop();
  EXPECT_EQ(r.status, PopStatus::empty) << name_of(r.status);
  EXPECT_EQ(r.node, nullptr);
  EXPECT_EQ(q.pop_linearizable(), nullptr);
  EXPECT_TRUE(q.empty_approx());
}

TEST(MpscNodeQueue, HookOwnerRecoversTheEmbeddingObject) {
  Item it;
  it.value = 77;
  EXPECT_EQ(owner_of(&it.hook), &it);
  EXPECT_NE(static_cast<void*>(&it.hook), static_cast<void*>(&it))
      << "test needs a non-zero offset";
}

TEST(MpscNodeQueue, SingleItemRoundTripsAndTheNodeCanBeReused) {
  MpscNodeQueue q;
  Item it;
  for (std::uint64_t i = 0; i < 10'000; ++i) {
    it.value = i;
    q.push(&it.hook);
    EXPECT_FALSE(q.empty_approx());
    const PopResult r = (i % 2 == 0) ? q.try_pop() : PopResult{q.pop_linearizable(), PopStatus::ok};
    ASSERT_EQ(r.status, PopStatus::ok) << "round " << i << ": " << name_of(r.status);
    ASSERT_EQ(r.node, &it.hook);
    ASSERT_EQ(owner_of(r.node)->value, i);
    ASSERT_EQ(q.try_pop().status, PopStatus::empty) << "round " << i;
    ASSERT_TRUE(q.empty_approx());
  }
}

TEST(MpscNodeQueue, FifoOrderWithTryPopAndPopLinearizable) {
  MpscNodeQueue q;
  std::vector<Item> items(1000);
  for (std::size_t i = 0; i < items.size(); ++i) {
    items[i].value = i;
    q.push(&items[i].hook);
  }
  for (std::size_t i = 0; i < items.size(); ++i) {
    MpscHook* h = nullptr;
    if (i % 3 == 0) {
      h = q.pop_linearizable();
    } else {
      const PopResult r = q.try_pop();
      ASSERT_EQ(r.status, PopStatus::ok) << "at " << i << ": " << name_of(r.status);
      h = r.node;
    }
    ASSERT_NE(h, nullptr);
    ASSERT_EQ(owner_of(h)->value, i);
  }
  EXPECT_EQ(q.try_pop().status, PopStatus::empty);
  EXPECT_EQ(q.pop_linearizable(), nullptr);
  EXPECT_TRUE(q.empty_approx());
}

// The stub goes in and out of the list whenever the queue runs dry; nodes are
// reused as soon as they are popped. FIFO must hold at every fill level.
TEST(MpscNodeQueue, FifoOverManyRefillsWithRecycledNodes) {
  MpscNodeQueue q;
  std::vector<Item> pool(16);
  std::vector<Item*> free_nodes;
  for (auto& it : pool)
    free_nodes.push_back(&it);
  std::uint64_t pushed = 0, popped = 0;
  for (int step = 0; step < 50'000; ++step) {
    const int to_push = 1 + step % 16;
    const int to_pop = 1 + (step * 7) % 16;
    for (int i = 0; i < to_push && !free_nodes.empty(); ++i) {
      Item* n = free_nodes.back();
      free_nodes.pop_back();
      n->value = pushed++;
      q.push(&n->hook);
    }
    for (int i = 0; i < to_pop; ++i) {
      const PopResult r = q.try_pop();
      if (popped == pushed) {
        ASSERT_EQ(r.status, PopStatus::empty) << "step " << step;
        break;
      }
      ASSERT_EQ(r.status, PopStatus::ok) << "step " << step << ": " << name_of(r.status);
      Item* n = owner_of(r.node);
      ASSERT_EQ(n->value, popped) << "FIFO broken at step " << step;
      ++popped;
      free_nodes.push_back(n);
    }
    ASSERT_EQ(q.empty_approx(), popped == pushed) << "step " << step;
  }
  EXPECT_GT(pushed, 100'000u);
}

TEST(MpscNodeQueue, ManyItemsQueuedAtOnce) {
  MpscNodeQueue q;
  constexpr std::size_t kN = 1'000'000;
  std::vector<Item> items(kN);
  for (std::size_t i = 0; i < kN; ++i) {
    items[i].value = i;
    q.push(&items[i].hook);
  }
  for (std::size_t i = 0; i < kN; ++i) {
    const PopResult r = q.try_pop();
    ASSERT_EQ(r.status, PopStatus::ok) << i;
    ASSERT_EQ(owner_of(r.node)->value, i);
  }
  EXPECT_EQ(q.try_pop().status, PopStatus::empty);
}

// ---- the half-done push, deterministically ---------------------------------------

// A consumer thread that calls pop_linearizable once and records when it returned.
struct LinearizablePopper {
  MpscNodeQueue& q;
  std::atomic<std::uint64_t> returned_at{0};
  MpscHook* got = nullptr;
  std::thread t;
  explicit LinearizablePopper(MpscNodeQueue& queue) : q(queue) {
    t = std::thread([this] {
      got = q.pop_linearizable();
      returned_at.store(now_ns());
    });
  }
  ~LinearizablePopper() {
    if (t.joinable()) t.join();
  }
};

// Item A is fully pushed; B's producer is parked between exchange and link
// (A's page is read-only, so the link store into A->next faults).
TEST(MpscNodeQueueHalfDonePush, BusyNotEmptyAndPopLinearizableWaitsForTheLink) {
  if (!ringwire::test::kWriteTrapUsable) {
    GTEST_SKIP() << "WriteTrap cannot park a thread inside a TSan atomic (runtime lock)";
  }
  Pages pages(2);
  Item* a = new (pages.page(0)) Item{};
  Item* b = new (pages.page(1)) Item{};
  a->value = 1;
  b->value = 2;
  MpscNodeQueue q;
  q.push(&a->hook);
  ASSERT_EQ(a->hook.next.load(), nullptr);

  WriteTrap trap(pages.page(0), Pages::page_size());
  ASSERT_TRUE(trap.armed());
  std::atomic<bool> push_returned{false};
  std::thread producer([&] {
    q.push(&b->hook);
    push_returned = true;
  });
  ASSERT_TRUE(trap.wait_trapped(5s)) << "the producer never reached the link store";
  EXPECT_FALSE(push_returned.load());
  EXPECT_EQ(a->hook.next.load(), nullptr) << "the link is not made yet";

  // head_ already names B, A is not linked to it: the window.
  for (int i = 0; i < 1000; ++i) {
    const PopResult r = q.try_pop();
    ASSERT_EQ(r.status, PopStatus::busy) << "try " << i << ": " << name_of(r.status);
    ASSERT_EQ(r.node, nullptr);
  }
  EXPECT_FALSE(q.empty_approx());

  std::uint64_t released_at = 0;
  {
    LinearizablePopper popper(q);
    std::this_thread::sleep_for(300ms);
    EXPECT_EQ(popper.returned_at.load(), 0u)
        << "pop_linearizable returned while the push was half done";
    released_at = now_ns();
    trap.release();
    producer.join();
    popper.t.join();
    EXPECT_TRUE(push_returned.load());
    EXPECT_GE(popper.returned_at.load(), released_at)
        << "pop_linearizable returned before the link was made";
    EXPECT_EQ(popper.got, &a->hook) << "FIFO: A was pushed first";
  }
  EXPECT_EQ(a->hook.next.load(), &b->hook);
  const PopResult r = q.try_pop();
  ASSERT_EQ(r.status, PopStatus::ok) << name_of(r.status);
  EXPECT_EQ(r.node, &b->hook);
  EXPECT_EQ(q.try_pop().status, PopStatus::empty);
  EXPECT_TRUE(q.empty_approx());
}

// The same window on an empty queue: the previous node is the queue's own
// stub. Its address is learnt from a public node (popping the last item links
// the stub behind it); the queue is then placed so that the stub starts a
// read-only page.
TEST(MpscNodeQueueHalfDonePush, EmptyQueueWithAHalfDonePushIsBusyNotEmpty) {
  if (!ringwire::test::kWriteTrapUsable) {
    GTEST_SKIP() << "WriteTrap cannot park a thread inside a TSan atomic (runtime lock)";
  }
  std::ptrdiff_t stub_offset = 0;
  {
    MpscNodeQueue probe;
    Item x;
    probe.push(&x.hook);
    ASSERT_EQ(probe.try_pop().node, &x.hook);
    stub_offset =
        reinterpret_cast<std::byte*>(x.hook.next.load()) - reinterpret_cast<std::byte*>(&probe);
    ASSERT_GT(stub_offset, 0);
    ASSERT_LT(static_cast<std::size_t>(stub_offset), sizeof(MpscNodeQueue));
  }
  Pages pages(3);
  constexpr std::size_t kAlign = alignof(MpscNodeQueue);
  const auto page1 = reinterpret_cast<std::uintptr_t>(pages.page(1));
  const std::uintptr_t base =
      (page1 - static_cast<std::uintptr_t>(stub_offset) + kAlign - 1) / kAlign * kAlign;
  ASSERT_GE(base + static_cast<std::uintptr_t>(stub_offset), page1);
  ASSERT_LT(base, page1) << "the queue must start on the writable page";
  auto* q = new (reinterpret_cast<void*>(base)) MpscNodeQueue();
  struct Destroy {
    MpscNodeQueue* q;
    ~Destroy() { q->~MpscNodeQueue(); }
  } destroy{q};

  Item b;
  b.value = 9;
  {
    WriteTrap trap(pages.page(1), Pages::page_size());
    ASSERT_TRUE(trap.armed());
    std::thread producer([&] { q->push(&b.hook); });
    ASSERT_TRUE(trap.wait_trapped(5s));
    if (q->empty_approx()) {
      // The producer stopped before its exchange: head_ shares the stub's page.
      trap.release();
      producer.join();
      GTEST_SKIP() << "queue layout puts head_ on the stub's page; cannot isolate the link store";
    }
    for (int i = 0; i < 1000; ++i) {
      const PopResult r = q->try_pop();
      ASSERT_EQ(r.status, PopStatus::busy)
          << "empty queue with a half-done push, try " << i << ": " << name_of(r.status);
    }
    LinearizablePopper popper(*q);
    std::this_thread::sleep_for(200ms);
    EXPECT_EQ(popper.returned_at.load(), 0u) << "pop_linearizable returned during the window";
    const std::uint64_t released_at = now_ns();
    trap.release();
    producer.join();
    popper.t.join();
    EXPECT_GE(popper.returned_at.load(), released_at);
    EXPECT_EQ(popper.got, &b.hook) << "pop_linearizable must return the item, not 'empty'";
  }
  EXPECT_EQ(q->try_pop().status, PopStatus::empty);
  EXPECT_TRUE(q->empty_approx());
}

// ---- the half-done push, racing ------------------------------------------------------

// Two producers race one consumer. Whenever try_pop says busy, a push must
// have been in flight during the call (begun after > ended before), and
// pop_linearizable must then return the next item of some producer in order.
// Whenever it says empty, every push that had ended before the call must
// already have been popped.
TEST(MpscNodeQueueHalfDonePush, RacingBusyMeansAPushInFlightAndTheItemFollows) {
  constexpr std::uint32_t kProducers = 2;
  const std::uint64_t per = ringwire::test::running_under_tsan() ? 100'000 : 1'000'000;
  MpscNodeQueue q;
  std::vector<std::unique_ptr<Item[]>> items;
  for (std::uint32_t p = 0; p < kProducers; ++p)
    items.push_back(std::make_unique<Item[]>(per));
  std::atomic<std::uint64_t> begun{0}, ended{0};
  std::vector<std::thread> producers;
  for (std::uint32_t p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      for (std::uint64_t s = 0; s < per; ++s) {
        items[p][s].value = ringwire::test::encode_item(p, s);
        begun.fetch_add(1);
        q.push(&items[p][s].hook);
        ended.fetch_add(1);
        if (s % 64 == 63) std::this_thread::yield();
      }
    });
  }
  ringwire::test::OrderTracker order(kProducers, /*strictly_next=*/true);
  std::uint64_t busy = 0, empty = 0, popped = 0, bad_busy = 0, bad_empty = 0, null_after_busy = 0;
  const std::uint64_t total = per * kProducers;
  const auto deadline = now_ns() + 120'000'000'000ull;
  while (popped < total && now_ns() < deadline) {
    const std::uint64_t ended_before = ended.load();
    const PopResult r = q.try_pop();
    if (r.status == PopStatus::ok) {
      order.check(owner_of(r.node)->value);
      ++popped;
    } else if (r.status == PopStatus::busy) {
      ++busy;
      if (begun.load() <= ended_before) ++bad_busy;
      MpscHook* h = q.pop_linearizable();
      if (h == nullptr) {
        ++null_after_busy;
      } else {
        order.check(owner_of(h)->value);
        ++popped;
      }
    } else {
      ++empty;
      if (ended_before > popped) ++bad_empty;
    }
  }
  for (auto& t : producers)
    t.join();
  std::printf("[ race     ] %llu items, try_pop busy %llu times, empty %llu times\n",
              static_cast<unsigned long long>(popped), static_cast<unsigned long long>(busy),
              static_cast<unsigned long long>(empty));
  EXPECT_EQ(popped, total);
  EXPECT_EQ(order.violations(), 0u) << order.first_error();
  EXPECT_EQ(bad_busy, 0u) << "busy although no push was in flight";
  EXPECT_EQ(bad_empty, 0u) << "empty although a completed push was not popped";
  EXPECT_EQ(null_after_busy, 0u) << "pop_linearizable said empty right after busy";
  EXPECT_EQ(q.try_pop().status, PopStatus::empty);
}

// ---- MpscQueue<T> (node pool) -----------------------------------------------------------

TEST(MpscQueue, ZeroCapacityIsRejected) {
  EXPECT_THROW(MpscQueue<std::uint64_t>(0), std::invalid_argument);
}

TEST(MpscQueue, NewQueueIsEmptyAndAFailedPopLeavesTheOutputAlone) {
  MpscQueue<std::uint64_t> q(4);
  EXPECT_EQ(q.capacity(), 4u);
  std::uint64_t v = 42;
  EXPECT_EQ(q.try_pop(v), PopStatus::empty);
  EXPECT_FALSE(q.pop_linearizable(v));
  EXPECT_EQ(v, 42u);
}

TEST(MpscQueue, HoldsExactlyCapacityItems) {
  for (std::uint32_t cap : {1u, 2u, 3u, 8u, 1000u, 65536u}) {
    SCOPED_TRACE("capacity " + std::to_string(cap));
    MpscQueue<std::uint64_t> q(cap);
    for (std::uint32_t i = 0; i < cap; ++i)
      ASSERT_TRUE(q.try_push(i * 5)) << "item " << i << " refused";
    EXPECT_FALSE(q.try_push(999)) << "one item more than capacity was accepted";
    for (std::uint32_t i = 0; i < cap; ++i) {
      std::uint64_t v = 0;
      if (i % 2 == 0) {
        ASSERT_EQ(q.try_pop(v), PopStatus::ok);
      } else {
        ASSERT_TRUE(q.pop_linearizable(v));
      }
      ASSERT_EQ(v, std::uint64_t{i} * 5);
    }
    std::uint64_t v = 0;
    EXPECT_EQ(q.try_pop(v), PopStatus::empty);
    // Every node went back to the pool.
    for (std::uint32_t i = 0; i < cap; ++i)
      ASSERT_TRUE(q.try_push(i));
    EXPECT_FALSE(q.try_push(0));
  }
}

TEST(MpscQueue, CapacityOneAlternatesForManyLaps) {
  MpscQueue<std::uint64_t> q(1);
  for (std::uint64_t i = 0; i < 100'000; ++i) {
    ASSERT_TRUE(q.try_push(i));
    ASSERT_FALSE(q.try_push(i + 1));
    std::uint64_t v = 0;
    ASSERT_EQ(q.try_pop(v), PopStatus::ok);
    ASSERT_EQ(v, i);
    ASSERT_EQ(q.try_pop(v), PopStatus::empty);
  }
}

TEST(MpscQueue, FifoOverManyLapsAtEveryFillLevel) {
  MpscQueue<std::uint64_t> q(8);
  std::uint64_t pushed = 0, popped = 0;
  for (int step = 0; step < 20'000; ++step) {
    const int to_push = 1 + step % 9;
    const int to_pop = 1 + (step * 5) % 9;
    for (int i = 0; i < to_push; ++i) {
      const bool ok = q.try_push(pushed);
      ASSERT_EQ(ok, pushed - popped < 8) << "step " << step;
      if (!ok) break;
      ++pushed;
    }
    for (int i = 0; i < to_pop; ++i) {
      std::uint64_t v = 0;
      const PopStatus s = q.try_pop(v);
      if (popped == pushed) {
        ASSERT_EQ(s, PopStatus::empty);
        break;
      }
      ASSERT_EQ(s, PopStatus::ok);
      ASSERT_EQ(v, popped) << "FIFO broken at step " << step;
      ++popped;
    }
  }
  EXPECT_GT(pushed / 8, 1000u) << "fewer than 1000 laps of the pool";
}

struct Pair {
  std::uint32_t a;
  std::uint32_t b;
};

TEST(MpscQueue, CopiesStructValues) {
  MpscQueue<Pair> q(3);
  ASSERT_TRUE(q.try_push(Pair{1, 2}));
  ASSERT_TRUE(q.try_push(Pair{3, 4}));
  Pair p{};
  ASSERT_EQ(q.try_pop(p), PopStatus::ok);
  EXPECT_EQ(p.a, 1u);
  EXPECT_EQ(p.b, 2u);
  ASSERT_TRUE(q.pop_linearizable(p));
  EXPECT_EQ(p.a, 3u);
  EXPECT_EQ(p.b, 4u);
}

}  // namespace
