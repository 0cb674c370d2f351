// MpscRing in a shared-memory segment with several producer processes that
// the consumer (this process, the segment's creator) kills with SIGKILL at
// random points, over and over, restarting each victim as a new producer
// "incarnation". Every eighth kill lands during start-up (open / attach /
// register_producer). The consumer judges claims with a ProcessIdentity
// (pid + start time) liveness check and recycles owner slots with
// check_producers().
//
// Checked:
//  * the consumer never hangs: try_pop is bounded, and the run fails with a
//    diagnosis if no item arrives for kStallNs while producers run;
//  * every incarnation's items arrive exactly once, in push order, as a
//    contiguous prefix 0..k-1 of what it pushed, where k is what it recorded
//    as pushed or one more (killed after try_push returned, before recording);
//  * abandoned claims never exceed the kills, and the positions add up:
//    enqueue_pos == dequeue_pos == delivered + abandoned;
//  * owner slots are reaped and reused: far more than 64 incarnations
//    register, none is refused;
//  * after a clean finish, nothing is left in /dev/shm.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <new>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/queue_test_support.hpp"
#include "common/shm_fixture.hpp"
#include "common/test_support.hpp"
#include "ringwire/core/clock.hpp"
#include "ringwire/queue/mpsc_ring.hpp"
#include "ringwire/queue/ring_storage.hpp"
#include "ringwire/shm/process_identity.hpp"
#include "ringwire/shm/shm_segment.hpp"

namespace {

using namespace std::chrono_literals;
using ringwire::MpscRing;
using ringwire::ShmSegment;
using ringwire::core::now_ns;
using ringwire::queue::align_up;
using ringwire::shm::ProcessIdentity;
using ringwire::test::Child;
using ringwire::test::encode_item;
using ringwire::test::item_producer;
using ringwire::test::item_seq;
using ringwire::test::mix64;

// 1 KiB items: copying one into its cell takes long enough that kills often
// land between a producer's claim and its "ready" store, the window the ring
// is designed to survive. Every word is derived from the id, so a torn or
// half-written cell that got delivered would show.
struct BigItem {
  std::uint64_t id;
  std::uint64_t words[127];
};
BigItem make_big(std::uint32_t inc, std::uint64_t seq) {
  BigItem b;
  b.id = encode_item(inc, seq);
  std::uint64_t x = mix64(b.id);
  for (auto& w : b.words) {
    w = x;
    x += 0x9e3779b97f4a7c15ull;
  }
  return b;
}
bool big_ok(const BigItem& b) {
  std::uint64_t x = mix64(b.id);
  for (const auto& w : b.words) {
    if (w != x) return false;
    x += 0x9e3779b97f4a7c15ull;
  }
  return true;
}
using Ring = MpscRing<BigItem>;

constexpr std::uint64_t kCap = 256;
constexpr std::uint32_t kLive = 3;                // producer processes running at any time
constexpr std::uint32_t kMaxIncarnations = 4096;  // item ids hold 16 bits of incarnation
constexpr std::uint64_t kStallNs = 5'000'000'000ull;
constexpr std::uint64_t kBudgetNs = 35'000'000'000ull;  // stop killing after this
constexpr std::uint64_t kTag = 0xc4a5;

// What an incarnation tells the consumer through shared memory.
struct Incarnation {
  std::atomic<std::uint64_t> pushed{0};   // items try_push accepted (seq of the next one)
  std::atomic<std::int32_t> owner{-1};    // owner slot once registered
  std::atomic<std::uint32_t> refused{0};  // register_producer said no
};

struct Shared {
  std::atomic<std::uint32_t> stop{0};  // finish cleanly: unregister and exit
  Incarnation inc[kMaxIncarnations];
};

std::size_t shared_offset() {
  return align_up(Ring::bytes_for(kCap), 4096);
}
std::size_t payload_bytes() {
  return shared_offset() + sizeof(Shared);
}

ringwire::shm::SegmentSpec spec(std::size_t payload) {
  ringwire::shm::SegmentSpec s;
  s.kind = ringwire::shm::SegmentKind::raw;
  s.layout_hash =
      ringwire::shm::layout_fingerprint(ringwire::test::kTestLayoutHash, kTag, sizeof(BigItem));
  s.capacity = kCap;
  s.element_size = sizeof(BigItem);
  s.payload_size = payload;
  return s;
}

bool identity_alive(std::uint64_t a, std::uint64_t b) {
  ProcessIdentity id;
  id.pid = static_cast<std::int32_t>(a);
  id.start_time = b;
  return id.is_alive();
}

// Producer process: registers under its identity, then pushes (i, 0), (i, 1),
// ... recording each accepted item, until told to stop (or killed).
int producer_main(const std::string& name, std::uint32_t i) {
  auto seg = ShmSegment::open(name, spec(0));
  if (!seg) return 10;
  if (seg->payload_size() < payload_bytes()) return 11;
  auto ring = Ring::attach(seg->payload(), Ring::bytes_for(kCap));
  if (!ring) return 12;
  auto* shared =
      reinterpret_cast<Shared*>(static_cast<std::byte*>(seg->payload()) + shared_offset());
  Incarnation& me = shared->inc[i];
  const ProcessIdentity self = ProcessIdentity::self();
  const auto owner = ring->register_producer(static_cast<std::uint64_t>(self.pid), self.start_time);
  if (!owner) {
    me.refused.store(1);
    return 13;
  }
  me.owner.store(static_cast<std::int32_t>(*owner));
  ringwire::test::Idle idle;
  std::uint64_t work = i;
  for (std::uint64_t seq = 0;;) {
    if (shared->stop.load(std::memory_order_acquire) != 0) break;
    // Odd incarnations pace themselves, so the ring often runs nearly empty
    // and the consumer sits right behind the claims being written; even ones
    // push flat out and keep it full.
    if (i % 2 == 1) {
      for (std::uint64_t k = work & 63; k > 0; --k)
        work = ringwire::test::mix64(work + k);
    }
    if (ring->try_push(*owner, make_big(i, seq))) {
      me.pushed.store(++seq, std::memory_order_release);
      idle.reset();
    } else {
      idle();
      if (idle.should_check() && ::getppid() == 1) return 14;
    }
  }
  ring->unregister_producer(*owner);
  return work == 42 ? 1 : 0;  // keeps the pacing work alive
}

class MpscRingProducerKillCrash : public ringwire::test::ShmTest {
 protected:
  void SetUp() override {
    name_ = ringwire::test::unique_name("mpsckill");
    auto seg = ShmSegment::create(name_, spec(payload_bytes()));
    ASSERT_TRUE(seg.has_value()) << seg.status().to_string();
    seg_ = std::make_unique<ShmSegment>(std::move(seg.value()));
    auto ring = Ring::create_in(seg_->payload(), Ring::bytes_for(kCap), kCap);
    ASSERT_TRUE(ring.has_value()) << ring.status().to_string();
    ring_ = std::make_unique<Ring>(std::move(ring.value()));
    shared_ = new (static_cast<std::byte*>(seg_->payload()) + shared_offset()) Shared();
    seg_->mark_ready();
  }
  void TearDown() override {
    for (auto& c : live_)
      c.child.kill();
    live_.clear();
    ring_.reset();
    seg_.reset();  // unlinks before the fixture's leak check
    ringwire::test::ShmTest::TearDown();
  }

  struct Running {
    std::uint32_t inc;
    Child child;
  };

  // Starts incarnation number next_inc_ in slot `at` of live_.
  void spawn(std::size_t at) {
    ASSERT_LT(next_inc_, kMaxIncarnations);
    const std::uint32_t i = next_inc_++;
    Running r{i, Child::spawn([this, i] { return producer_main(name_, i); })};
    if (at < live_.size()) {
      live_[at] = std::move(r);
    } else {
      live_.push_back(std::move(r));
    }
  }

  // Consumes for about `budget_ns`; with 0, until the ring answers empty or
  // busy. Checks each item as it arrives.
  void consume_for(std::uint64_t budget_ns) {
    const auto until = now_ns() + budget_ns;
    ringwire::test::Idle idle;
    for (std::uint32_t n = 1;; ++n) {
      BigItem it{};
      const auto st = ring_->try_pop(it, identity_alive);
      if (st == Ring::PopStatus::ok) {
        idle.reset();
        take(it);
        if (budget_ns != 0 && n % 64 == 0 && now_ns() >= until) return;
        continue;
      }
      if (st == Ring::PopStatus::busy) ++busy_;
      if (budget_ns == 0 || now_ns() >= until) return;
      idle();
    }
  }

  void take(const BigItem& it) {
    ++delivered_;
    last_item_at_ = now_ns();
    if (!big_ok(it)) {
      if (corrupt_++ == 0) first_error_ = "corrupt item " + std::to_string(it.id);
      return;
    }
    const std::uint32_t i = item_producer(it.id);
    const std::uint64_t s = item_seq(it.id);
    if (i >= next_inc_) {
      if (bad_++ == 0) first_error_ = "item from incarnation " + std::to_string(i) + " not started";
      return;
    }
    if (s != next_seq_[i]) {
      if (bad_++ == 0) {
        first_error_ = "incarnation " + std::to_string(i) + ": seq " + std::to_string(s) +
                       ", expected " + std::to_string(next_seq_[i]);
      }
    }
    next_seq_[i] = s + 1;
  }

  std::string ring_state() {
    auto& c = ring_->control();
    std::string out = "enqueue_pos " + std::to_string(c.enqueue_pos.load()) + ", dequeue_pos " +
                      std::to_string(c.dequeue_pos.load()) + ", abandoned " +
                      std::to_string(c.abandoned.load());
    const std::uint64_t d = c.dequeue_pos.load();
    auto* cells = reinterpret_cast<Ring::Cell*>(
        reinterpret_cast<std::byte*>(&c) +
        ringwire::queue::slots_offset<ringwire::queue::MpscRingControl, Ring::Cell>());
    const std::uint64_t w = cells[d & (kCap - 1)].word.load();
    out += ", cell at dequeue_pos: pos " + std::to_string(w >> 8) + " state " +
           std::to_string((w >> 6) & 3) + " owner " + std::to_string(w & 63);
    std::uint32_t states[4] = {0, 0, 0, 0};
    for (const auto& s : c.producers)
      ++states[s.state.load() & 3];
    out += "; owner slots free/in use/dead/registering " + std::to_string(states[0]) + "/" +
           std::to_string(states[1]) + "/" + std::to_string(states[2]) + "/" +
           std::to_string(states[3]);
    return out;
  }

  std::string name_;
  std::unique_ptr<ShmSegment> seg_;
  std::unique_ptr<Ring> ring_;
  Shared* shared_ = nullptr;
  std::vector<Running> live_;
  std::uint32_t next_inc_ = 0;
  std::vector<std::uint64_t> next_seq_ = std::vector<std::uint64_t>(kMaxIncarnations, 0);
  std::vector<std::uint32_t> killed_;  // incarnations we killed
  std::uint64_t delivered_ = 0, corrupt_ = 0, bad_ = 0, busy_ = 0;
  std::uint64_t last_item_at_ = 0;
  std::string first_error_;
};

TEST_F(MpscRingProducerKillCrash, KilledProducersLeaveInOrderPrefixesAndSlotsAreReused) {
  const std::uint64_t target_kills = ringwire::test::scaled_rounds(300, 120);
  std::mt19937_64 rng(static_cast<std::uint64_t>(::getpid()) * 7919u + now_ns());
  const auto t0 = now_ns();
  for (std::size_t k = 0; k < kLive; ++k)
    spawn(k);
  last_item_at_ = now_ns();
  std::uint64_t kills = 0, startup_kills = 0, checks = 0;
  std::string failure;

  auto kill_slot = [&](std::size_t k) {
    live_[k].child.kill(SIGKILL);
    const int code = live_[k].child.exit_code();  // reaps: a zombie would read as dead anyway
    if (code != -SIGKILL) {
      failure = "incarnation " + std::to_string(live_[k].inc) + " exited with " +
                std::to_string(code) + " before it was killed";
    }
    killed_.push_back(live_[k].inc);
    ++kills;
  };

  while (kills < target_kills && now_ns() - t0 < kBudgetNs && failure.empty()) {
    // Stream for a random stretch: mostly a few ms, sometimes up to 150 ms.
    const std::uint64_t stretch_us = (rng() % 4 == 0) ? rng() % 150'000 : rng() % 20'000;
    const auto stretch_end = now_ns() + stretch_us * 1000;
    while (now_ns() < stretch_end && failure.empty()) {
      consume_for(2'000'000);
      if (++checks % 8 == 0) ring_->check_producers(identity_alive);
      // A producer that exits on its own is a failure (e.g. refused registration).
      for (auto& r : live_) {
        if (r.child.wait_for(0ms)) {
          failure = "incarnation " + std::to_string(r.inc) + " exited with " +
                    std::to_string(r.child.exit_code()) +
                    (shared_->inc[r.inc].refused.load() ? " (registration refused)" : "");
        }
      }
      if (now_ns() - last_item_at_ > kStallNs) {
        failure =
            "no item for 5 s with " + std::to_string(kLive) + " producers running: " + ring_state();
      }
    }
    if (!failure.empty()) break;
    const std::size_t victim = rng() % kLive;
    kill_slot(victim);
    spawn(victim);
    if (kills % 8 == 0) {
      // Kill the replacement during its start-up.
      std::this_thread::sleep_for(std::chrono::microseconds(rng() % 3000));
      kill_slot(victim);
      ++startup_kills;
      spawn(victim);
    }
  }
  ASSERT_TRUE(failure.empty()) << failure << " (after " << kills << " kills, " << delivered_
                               << " items)";

  // Clean finish: the last producers unregister and exit; drain everything.
  shared_->stop.store(1, std::memory_order_release);
  const auto drain_until = now_ns() + 20'000'000'000ull;
  for (auto& r : live_) {
    while (!r.child.wait_for(0ms) && now_ns() < drain_until)
      consume_for(1'000'000);
    ASSERT_TRUE(r.child.wait_for(0ms))
        << "incarnation " << r.inc << " did not stop: " << ring_state();
    EXPECT_EQ(r.child.exit_code(), 0) << "incarnation " << r.inc;
  }
  for (int i = 0; i < 4; ++i) {
    consume_for(0);
    ring_->check_producers(identity_alive);
  }
  BigItem left{};
  ASSERT_EQ(ring_->try_pop(left, identity_alive), Ring::PopStatus::empty) << ring_state();
  const double secs = ringwire::test::seconds_since(t0);

  // Per incarnation: a contiguous, in-order prefix of what it pushed.
  std::set<std::uint32_t> killed(killed_.begin(), killed_.end());
  std::set<std::int32_t> owners_used;
  std::uint64_t lost_recorded = 0, delivered_unrecorded = 0, never_registered = 0;
  std::string first_prefix_error;
  for (std::uint32_t i = 0; i < next_inc_; ++i) {
    const Incarnation& inc = shared_->inc[i];
    const std::uint64_t pushed = inc.pushed.load();
    const std::uint64_t got = next_seq_[i];
    if (inc.owner.load() >= 0) {
      owners_used.insert(inc.owner.load());
    } else {
      ++never_registered;
    }
    const bool was_killed = killed.count(i) != 0;
    if (got < pushed) {
      ++lost_recorded;
      if (first_prefix_error.empty()) {
        first_prefix_error = "incarnation " + std::to_string(i) + " pushed " +
                             std::to_string(pushed) + ", delivered " + std::to_string(got);
      }
    } else if (got > pushed) {
      ++delivered_unrecorded;
      if (!was_killed || got > pushed + 1) {
        if (first_prefix_error.empty()) {
          first_prefix_error = "incarnation " + std::to_string(i) + " recorded " +
                               std::to_string(pushed) + " pushes, delivered " + std::to_string(got);
        }
      }
    }
  }
  const auto& c = ring_->control();
  const std::uint64_t abandoned = c.abandoned.load();
  std::printf(
      "[ crash    ] %llu kills (%llu during start-up) of %u incarnations in %.1f s; %llu items "
      "delivered, %llu abandoned claims, %llu killed after push before recording, busy %llu; "
      "%zu distinct owner slots used, %llu incarnations killed before registering\n",
      static_cast<unsigned long long>(kills), static_cast<unsigned long long>(startup_kills),
      next_inc_, secs, static_cast<unsigned long long>(delivered_),
      static_cast<unsigned long long>(abandoned),
      static_cast<unsigned long long>(delivered_unrecorded), static_cast<unsigned long long>(busy_),
      owners_used.size(), static_cast<unsigned long long>(never_registered));

  EXPECT_EQ(corrupt_, 0u) << first_error_;
  EXPECT_EQ(bad_, 0u) << "order / duplication: " << first_error_;
  EXPECT_EQ(lost_recorded, 0u) << "a pushed item never arrived: " << first_prefix_error;
  EXPECT_TRUE(first_prefix_error.empty()) << first_prefix_error;
  EXPECT_LE(abandoned, kills) << "at most one claim in flight per killed producer";
  EXPECT_EQ(c.enqueue_pos.load(), c.dequeue_pos.load()) << ring_state();
  EXPECT_EQ(c.dequeue_pos.load(), delivered_ + abandoned)
      << "every claimed position is either delivered or abandoned";
  EXPECT_GE(kills, std::min<std::uint64_t>(target_kills, 100));
  const std::uint64_t registrations = next_inc_ - never_registered;
  EXPECT_GT(registrations, owners_used.size()) << "no owner slot was ever reused";
  EXPECT_GT(registrations, ringwire::queue::kMpscMaxProducers)
      << "fewer registrations than owner slots: reuse was not needed";
  EXPECT_LT(secs, 60.0);
}

}  // namespace
