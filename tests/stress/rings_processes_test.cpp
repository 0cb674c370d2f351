// MpmcRing and MpscRing shared between processes through a named segment.
// The parent creates the segment (ring + a shared exactly-once ledger +
// per-consumer result slots) and consumes; forked children open it by name
// (ShmSegment::open + attach) and produce, or consume alongside the parent.
//
//   MpmcRing<CheckedItem>: 2 producer processes, 2 consumers (the parent and
//     a child), 10,000,000 items; exactly once via the shared ledger, FIFO per
//     producer per consumer, every item's check word intact.
//   MpscRing<CheckedItem>: 3 producer processes registered under their
//     ProcessIdentity (pid + start time), the parent consumes with a
//     ProcessIdentity liveness check, 10,000,000 items; exactly once and in
//     push order per producer, nothing abandoned, every slot given back.
// RINGWIRE_STRESS_MESSAGES overrides the per-ring count. Skipped under TSan,
// which cannot see the other processes' accesses.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <new>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/queue_test_support.hpp"
#include "common/shm_fixture.hpp"
#include "common/test_support.hpp"
#include "ringwire/core/clock.hpp"
#include "ringwire/queue/mpmc_ring.hpp"
#include "ringwire/queue/mpsc_ring.hpp"
#include "ringwire/queue/ring_storage.hpp"
#include "ringwire/shm/process_identity.hpp"
#include "ringwire/shm/shm_segment.hpp"

namespace {

using namespace std::chrono_literals;
using ringwire::MpmcRing;
using ringwire::MpscRing;
using ringwire::ShmSegment;
using ringwire::core::now_ns;
using ringwire::queue::align_up;
using ringwire::shm::ProcessIdentity;
using ringwire::test::checked_ok;
using ringwire::test::CheckedItem;
using ringwire::test::Child;
using ringwire::test::Idle;
using ringwire::test::LedgerView;
using ringwire::test::make_checked;
using ringwire::test::OrderTracker;
using ringwire::test::Seen;

constexpr std::uint64_t kDefaultPerRing = 10'000'000;
constexpr std::uint64_t kCapacity = 1024;
constexpr std::uint32_t kMaxConsumers = 4;
constexpr std::uint64_t kStallNs = 20'000'000'000ull;

// What each consumer reports, in shared memory.
struct ConsumerSlot {
  std::atomic<std::uint64_t> received{0};
  std::atomic<std::uint64_t> duplicates{0};
  std::atomic<std::uint64_t> out_of_range{0};
  std::atomic<std::uint64_t> corrupt{0};
  std::atomic<std::uint64_t> order_violations{0};
  std::atomic<std::uint32_t> finished{0};
};

// Lives after the ring in the payload; the ledger bytes follow it.
struct Shared {
  std::atomic<std::uint32_t> go{0};
  std::atomic<std::uint64_t> consumed{0};  // by all consumers together
  ConsumerSlot consumers[kMaxConsumers];
};

// Payload = [ring][Shared][ledger bytes].
template <class Ring>
struct Layout {
  std::uint32_t producers;
  std::uint64_t per;
  std::size_t ring_bytes() const { return Ring::bytes_for(kCapacity); }
  std::size_t shared_offset() const { return align_up(ring_bytes(), 4096); }
  std::size_t ledger_offset() const { return align_up(shared_offset() + sizeof(Shared), 128); }
  std::size_t total() const { return ledger_offset() + LedgerView::bytes_for(producers, per); }
};

ringwire::shm::SegmentSpec spec_for(std::size_t payload, std::uint64_t tag) {
  ringwire::shm::SegmentSpec s;
  s.kind = ringwire::shm::SegmentKind::raw;
  s.layout_hash =
      ringwire::shm::layout_fingerprint(ringwire::test::kTestLayoutHash, tag, sizeof(CheckedItem));
  s.capacity = kCapacity;
  s.element_size = sizeof(CheckedItem);
  s.payload_size = payload;
  return s;
}

// A child's view of the segment: opened by name, everything attached.
template <class Ring>
struct Attached {
  ShmSegment seg;
  Ring ring;
  Shared* shared;
  LedgerView ledger;
};

template <class Ring>
std::optional<Attached<Ring>> attach_child(const std::string& name, std::uint64_t tag,
                                           const Layout<Ring>& lay) {
  auto seg = ShmSegment::open(name, spec_for(0, tag));
  if (!seg) return std::nullopt;
  if (seg->payload_size() < lay.total()) return std::nullopt;
  auto ring = Ring::attach(seg->payload(), lay.ring_bytes());
  if (!ring) return std::nullopt;
  auto* base = static_cast<std::byte*>(seg->payload());
  auto* shared = reinterpret_cast<Shared*>(base + lay.shared_offset());
  LedgerView ledger(reinterpret_cast<std::atomic<std::uint8_t>*>(base + lay.ledger_offset()),
                    lay.producers, lay.per);
  return Attached<Ring>{std::move(seg.value()), std::move(ring.value()), shared, ledger};
}

bool wait_go(const Shared& s) {
  const auto until = now_ns() + 30'000'000'000ull;
  while (s.go.load(std::memory_order_acquire) == 0) {
    if (now_ns() > until) return false;
    std::this_thread::sleep_for(100us);
  }
  return true;
}

// One consumed item into the ledger, the order tracker and the slot.
void account(const CheckedItem& it, LedgerView& ledger, OrderTracker& order, ConsumerSlot& slot,
             Shared& shared) {
  if (!checked_ok(it)) slot.corrupt.fetch_add(1, std::memory_order_relaxed);
  switch (ledger.record(it.id)) {
    case Seen::first:
      break;
    case Seen::duplicate:
      slot.duplicates.fetch_add(1, std::memory_order_relaxed);
      break;
    case Seen::out_of_range:
      slot.out_of_range.fetch_add(1, std::memory_order_relaxed);
      break;
  }
  if (!order.check(it.id)) slot.order_violations.fetch_add(1, std::memory_order_relaxed);
  slot.received.fetch_add(1, std::memory_order_relaxed);
  shared.consumed.fetch_add(1, std::memory_order_relaxed);
}

class RingsProcessesStress : public ringwire::test::ShmTest {
 protected:
  void SetUp() override {
    if (ringwire::test::running_under_tsan()) {
      GTEST_SKIP() << "cross-process accesses are invisible to ThreadSanitizer";
    }
  }
};

// ---- MpmcRing -----------------------------------------------------------------------------

using Mpmc = MpmcRing<CheckedItem>;
constexpr std::uint64_t kMpmcTag = 0x3303;

int mpmc_producer(const std::string& name, const Layout<Mpmc>& lay, std::uint32_t p) {
  auto a = attach_child<Mpmc>(name, kMpmcTag, lay);
  if (!a) return 10;
  if (!wait_go(*a->shared)) return 11;
  Idle idle;
  for (std::uint64_t s = 0; s < lay.per; ++s) {
    const CheckedItem it = make_checked(p, s);
    while (!a->ring.try_push(it)) {
      idle();
      if (idle.should_check() && ::getppid() == 1) return 12;
    }
    idle.reset();
  }
  return 0;
}

int mpmc_consumer(const std::string& name, const Layout<Mpmc>& lay, std::uint32_t c,
                  std::uint64_t total) {
  auto a = attach_child<Mpmc>(name, kMpmcTag, lay);
  if (!a) return 10;
  if (!wait_go(*a->shared)) return 11;
  OrderTracker order(lay.producers, /*strictly_next=*/false);
  ConsumerSlot& slot = a->shared->consumers[c];
  Idle idle;
  while (a->shared->consumed.load(std::memory_order_relaxed) < total) {
    CheckedItem it{};
    if (!a->ring.try_pop(it)) {
      idle();
      continue;
    }
    idle.reset();
    account(it, a->ledger, order, slot, *a->shared);
  }
  slot.finished.store(1, std::memory_order_release);
  return 0;
}

TEST_F(RingsProcessesStress, MpmcRingTwoProducerProcessesTwoConsumerProcesses) {
  constexpr std::uint32_t kProducers = 2;
  const std::uint64_t n = ringwire::test::stress_messages(kDefaultPerRing);
  const Layout<Mpmc> lay{kProducers, (n + kProducers - 1) / kProducers};
  const std::uint64_t total = lay.per * kProducers;
  const std::string name = ringwire::test::unique_name("mpmcproc");
  auto seg = ShmSegment::create(name, spec_for(lay.total(), kMpmcTag));
  ASSERT_TRUE(seg.has_value()) << seg.status().to_string();
  auto ring = Mpmc::create_in(seg->payload(), lay.ring_bytes(), kCapacity);
  ASSERT_TRUE(ring.has_value()) << ring.status().to_string();
  auto* base = static_cast<std::byte*>(seg->payload());
  auto* shared = new (base + lay.shared_offset()) Shared();
  LedgerView ledger(reinterpret_cast<std::atomic<std::uint8_t>*>(base + lay.ledger_offset()),
                    lay.producers, lay.per);  // the mapping is zero-filled
  seg->mark_ready();

  std::vector<Child> children;
  for (std::uint32_t p = 0; p < kProducers; ++p)
    children.push_back(Child::spawn([&, p] { return mpmc_producer(name, lay, p); }));
  children.push_back(Child::spawn([&] { return mpmc_consumer(name, lay, 1, total); }));
  shared->go.store(1, std::memory_order_release);

  // The parent is consumer 0.
  const auto t0 = now_ns();
  OrderTracker order(kProducers, /*strictly_next=*/false);
  Idle idle;
  std::uint64_t last_seen = 0;
  auto last_progress = now_ns();
  std::string failure;
  while (shared->consumed.load(std::memory_order_relaxed) < total) {
    CheckedItem it{};
    if (ring->try_pop(it)) {
      idle.reset();
      account(it, ledger, order, shared->consumers[0], *shared);
      continue;
    }
    idle();
    if (idle.should_check()) {
      const std::uint64_t now_consumed = shared->consumed.load();
      if (now_consumed != last_seen) {
        last_seen = now_consumed;
        last_progress = now_ns();
      } else if (now_ns() - last_progress > kStallNs) {
        failure = "no progress for 20 s at " + std::to_string(now_consumed) + " of " +
                  std::to_string(total);
        break;
      }
    }
  }
  const double s = ringwire::test::seconds_since(t0);
  ASSERT_TRUE(failure.empty()) << failure;
  for (std::size_t i = 0; i < children.size(); ++i) {
    ASSERT_TRUE(children[i].wait_for(30s)) << "child " << i << " did not finish";
    EXPECT_EQ(children[i].exit_code(), 0) << "child " << i;
  }
  const std::uint64_t r0 = shared->consumers[0].received.load();
  const std::uint64_t r1 = shared->consumers[1].received.load();
  std::printf(
      "[ stress   ] MpmcRing, 2 producer + 2 consumer processes: %llu items in %.2f s "
      "(%.2f M/s), parent %llu / child %llu\n",
      static_cast<unsigned long long>(r0 + r1), s, static_cast<double>(r0 + r1) / s / 1e6,
      static_cast<unsigned long long>(r0), static_cast<unsigned long long>(r1));
  EXPECT_EQ(r0 + r1, total);
  for (std::uint32_t c = 0; c < 2; ++c) {
    const ConsumerSlot& slot = shared->consumers[c];
    EXPECT_EQ(slot.duplicates.load(), 0u) << "consumer " << c;
    EXPECT_EQ(slot.out_of_range.load(), 0u) << "consumer " << c;
    EXPECT_EQ(slot.corrupt.load(), 0u) << "consumer " << c;
    EXPECT_EQ(slot.order_violations.load(), 0u) << "consumer " << c << " saw a producer's items "
                                                << "out of order";
  }
  EXPECT_EQ(shared->consumers[1].finished.load(), 1u);
  EXPECT_EQ(order.violations(), 0u) << order.first_error();
  for (std::uint32_t p = 0; p < kProducers; ++p) {
    std::uint64_t first = 0;
    EXPECT_EQ(ledger.missing(p, lay.per, &first), 0u) << "producer " << p << ", first " << first;
  }
  CheckedItem left{};
  EXPECT_FALSE(ring->try_pop(left));
}

// ---- MpscRing -----------------------------------------------------------------------------

using Mpsc = MpscRing<CheckedItem>;
constexpr std::uint64_t kMpscTag = 0x5305;

int mpsc_producer(const std::string& name, const Layout<Mpsc>& lay, std::uint32_t p) {
  auto a = attach_child<Mpsc>(name, kMpscTag, lay);
  if (!a) return 10;
  const ProcessIdentity me = ProcessIdentity::self();
  auto owner = a->ring.register_producer(static_cast<std::uint64_t>(me.pid), me.start_time);
  if (!owner) return 13;
  if (!wait_go(*a->shared)) return 11;
  Idle idle;
  for (std::uint64_t s = 0; s < lay.per; ++s) {
    const CheckedItem it = make_checked(p, s);
    while (!a->ring.try_push(*owner, it)) {
      idle();
      if (idle.should_check() && ::getppid() == 1) return 12;
    }
    idle.reset();
  }
  a->ring.unregister_producer(*owner);
  return 0;
}

TEST_F(RingsProcessesStress, MpscRingThreeProducerProcessesWithIdentityLiveness) {
  constexpr std::uint32_t kProducers = 3;
  const std::uint64_t n = ringwire::test::stress_messages(kDefaultPerRing);
  const Layout<Mpsc> lay{kProducers, (n + kProducers - 1) / kProducers};
  const std::uint64_t total = lay.per * kProducers;
  const std::string name = ringwire::test::unique_name("mpscproc");
  auto seg = ShmSegment::create(name, spec_for(lay.total(), kMpscTag));
  ASSERT_TRUE(seg.has_value()) << seg.status().to_string();
  auto ring = Mpsc::create_in(seg->payload(), lay.ring_bytes(), kCapacity);
  ASSERT_TRUE(ring.has_value()) << ring.status().to_string();
  auto* base = static_cast<std::byte*>(seg->payload());
  auto* shared = new (base + lay.shared_offset()) Shared();
  LedgerView ledger(reinterpret_cast<std::atomic<std::uint8_t>*>(base + lay.ledger_offset()),
                    lay.producers, lay.per);
  seg->mark_ready();

  std::vector<Child> children;
  for (std::uint32_t p = 0; p < kProducers; ++p)
    children.push_back(Child::spawn([&, p] { return mpsc_producer(name, lay, p); }));
  shared->go.store(1, std::memory_order_release);

  const auto t0 = now_ns();
  std::uint64_t liveness_checks = 0, busy = 0;
  auto alive = [&](std::uint64_t a, std::uint64_t b) {
    ++liveness_checks;
    ProcessIdentity id;
    id.pid = static_cast<std::int32_t>(a);
    id.start_time = b;
    return id.is_alive();
  };
  OrderTracker order(kProducers, /*strictly_next=*/true);
  Idle idle;
  std::uint64_t last_seen = 0;
  auto last_progress = now_ns();
  std::string failure;
  ConsumerSlot& slot = shared->consumers[0];
  while (slot.received.load(std::memory_order_relaxed) < total) {
    CheckedItem it{};
    const auto st = ring->try_pop(it, alive);
    if (st == Mpsc::PopStatus::ok) {
      idle.reset();
      account(it, ledger, order, slot, *shared);
      continue;
    }
    if (st == Mpsc::PopStatus::busy) ++busy;
    idle();
    if (idle.should_check()) {
      const std::uint64_t got = slot.received.load();
      if (got != last_seen) {
        last_seen = got;
        last_progress = now_ns();
      } else if (now_ns() - last_progress > kStallNs) {
        failure = "no progress for 20 s at " + std::to_string(got) + " of " + std::to_string(total);
        break;
      }
    }
  }
  const double s = ringwire::test::seconds_since(t0);
  ASSERT_TRUE(failure.empty()) << failure;
  for (std::size_t i = 0; i < children.size(); ++i) {
    ASSERT_TRUE(children[i].wait_for(30s)) << "producer " << i << " did not finish";
    EXPECT_EQ(children[i].exit_code(), 0) << "producer " << i;
  }
  std::printf(
      "[ stress   ] MpscRing, 3 producer processes: %llu items in %.2f s (%.2f M/s), "
      "busy %llu, liveness checks %llu\n",
      static_cast<unsigned long long>(slot.received.load()), s,
      static_cast<double>(slot.received.load()) / s / 1e6, static_cast<unsigned long long>(busy),
      static_cast<unsigned long long>(liveness_checks));
  EXPECT_EQ(slot.received.load(), total);
  EXPECT_EQ(slot.duplicates.load(), 0u);
  EXPECT_EQ(slot.out_of_range.load(), 0u);
  EXPECT_EQ(slot.corrupt.load(), 0u);
  EXPECT_EQ(order.violations(), 0u) << order.first_error();
  for (std::uint32_t p = 0; p < kProducers; ++p) {
    std::uint64_t first = 0;
    EXPECT_EQ(ledger.missing(p, lay.per, &first), 0u) << "producer " << p << ", first " << first;
  }
  EXPECT_EQ(ring->control().abandoned.load(), 0u) << "a live producer's claim was abandoned";
  EXPECT_EQ(ring->control().enqueue_pos.load(), total);
  EXPECT_EQ(ring->control().dequeue_pos.load(), total);
  for (const auto& ps : ring->control().producers)
    EXPECT_EQ(ps.state.load(), 0u) << "owner slot not given back";
  CheckedItem left{};
  EXPECT_EQ(ring->try_pop(left, alive), Mpsc::PopStatus::empty);
}

}  // namespace
