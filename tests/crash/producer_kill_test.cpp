// A producer process is killed with SIGKILL at random points, over and over,
// while the consumer (the segment's creator, this process) reads. Each time
// the consumer must notice the death within a bounded time through
// ShmSegment::peer_alive() in pop_wait's alive() callback, never hang, and
// everything it received must be a verified prefix of what was produced.
// The next producer re-attaches to the same ring and continues the sequence.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "common/shm_fixture.hpp"
#include "common/test_support.hpp"
#include "ringwire/core/clock.hpp"
#include "ringwire/queue/blocking.hpp"
#include "ringwire/queue/spsc_ring.hpp"
#include "ringwire/shm/process_identity.hpp"
#include "ringwire/shm/shm_segment.hpp"

namespace {

using namespace std::chrono_literals;
using ringwire::ShmSegment;
using ringwire::SpscRing;
using ringwire::core::Deadline;
using ringwire::core::now_ns;
using ringwire::queue::pop_wait;
using ringwire::queue::push_wait;
using ringwire::queue::WaitOptions;
using ringwire::queue::WaitPolicy;
using ringwire::queue::WaitResult;
using ringwire::queue::wake_consumer;
using ringwire::shm::PeerRole;
using ringwire::test::Child;
using ringwire::test::make_msg;
using ringwire::test::Msg;
using ringwire::test::Verifier;
using Ring = SpscRing<Msg>;

constexpr std::uint64_t kCap = 4096;
constexpr std::uint64_t kLivenessNs = 2'000'000;
constexpr double kMaxDetectSeconds = 2.0;  // kill -> peer_dead, generous for a loaded box

// Producer process: continues the sequence from the ring's tail, mixing
// batch, zero-copy and blocking pushes, until `limit` messages exist in
// total (UINT64_MAX: until killed) or the consumer dies.
int producer_main(const std::string& name, std::uint64_t limit) {
  auto seg = ShmSegment::open(name, ringwire::test::ring_spec<Ring>(kCap));
  if (!seg) return 10;
  auto ring = Ring::attach(seg->payload(), seg->payload_size());
  if (!ring) return 11;
  seg->register_peer(PeerRole::producer);
  auto consumer_alive = [&] { return seg->peer_alive(PeerRole::consumer); };
  std::uint64_t seq = ring->control().tail.load(std::memory_order_relaxed);
  std::vector<Msg> batch(48);
  std::uint32_t idle = 0;
  for (std::size_t round = 0; seq < limit; ++round) {
    const std::size_t want =
        static_cast<std::size_t>(std::min<std::uint64_t>(1 + round % 48, limit - seq));
    std::size_t pushed = 0;
    switch (round % 3) {
      case 0: {
        for (std::size_t i = 0; i < want; ++i)
          batch[i] = make_msg(seq + i);
        pushed = ring->push_n(batch.data(), want);
        break;
      }
      case 1: {
        auto span = ring->claim_write(want);
        for (std::size_t i = 0; i < span.size(); ++i)
          span[i] = make_msg(seq + i);
        ring->commit_write(span.size());
        pushed = span.size();
        break;
      }
      default: {
        WaitOptions o;
        o.policy = WaitPolicy::spin_then_sleep;
        o.deadline = Deadline::after(1s);
        o.liveness_interval_ns = kLivenessNs;
        const WaitResult r = push_wait(*ring, make_msg(seq), o, consumer_alive);
        if (r == WaitResult::peer_dead) return 30;
        pushed = r == WaitResult::ok ? 1 : 0;
      }
    }
    if (pushed > 0) {
      wake_consumer(*ring);
      seq += pushed;
      idle = 0;
    } else if (++idle % 4096 == 0 && !consumer_alive()) {
      return 31;
    }
  }
  return 0;
}

struct RoundStats {
  std::vector<double> detect_s;
  std::uint64_t fast_kills = 0;
};

class ProducerKillCrash : public ringwire::test::ShmTest {
 protected:
  void SetUp() override {
    name_ = ringwire::test::unique_name("prodkill");
    auto seg = ShmSegment::create(name_, ringwire::test::ring_spec<Ring>(kCap));
    ASSERT_TRUE(seg.has_value()) << seg.status().to_string();
    seg_ = std::make_unique<ShmSegment>(std::move(seg.value()));
    auto ring = Ring::create_in(seg_->payload(), seg_->payload_size(), kCap);
    ASSERT_TRUE(ring.has_value());
    ring_ = std::make_unique<Ring>(std::move(ring.value()));
    seg_->register_peer(PeerRole::consumer);
    seg_->mark_ready();
  }
  void TearDown() override {
    ring_.reset();
    seg_.reset();  // unlinks before the fixture's leak check
    ringwire::test::ShmTest::TearDown();
  }

  WaitOptions consumer_options(Deadline d) const {
    WaitOptions o;
    o.policy = WaitPolicy::spin_then_sleep;
    o.spin_rounds = 512;
    o.deadline = d;
    o.liveness_interval_ns = kLivenessNs;
    return o;
  }
  bool producer_alive() const { return seg_->peer_alive(PeerRole::producer); }
  // Liveness of this round's producer. Until it has registered, the peer
  // slot still names the previous (dead) producer, so a child killed during
  // start-up is judged by its own PID instead.
  bool round_producer_alive(pid_t child) const {
    const auto registered = seg_->peer(PeerRole::producer);
    if (registered.pid == child) return registered.is_alive();
    return ringwire::shm::process_start_time(child) != 0;
  }

  // Consumes until `until`; false if the producer died on its own.
  bool consume_until(std::uint64_t until, Verifier& v) {
    Msg m;
    for (std::uint32_t i = 1;; ++i) {
      if ((i & 255) == 0 && now_ns() >= until) return true;  // the ring may never run dry
      const WaitResult r = pop_wait(*ring_, m, consumer_options(Deadline::at(until)),
                                    [&] { return producer_alive(); });
      if (r == WaitResult::ok) {
        v.check(m);
        continue;
      }
      return r == WaitResult::timed_out;
    }
  }

  // After the kill: drains until pop_wait reports the death. Returns the
  // seconds from `killed_at` to detection, or a negative value on a hang.
  double drain_until_dead(pid_t child, std::uint64_t killed_at, Verifier& v) {
    Msg m;
    const auto give_up = Deadline::at(killed_at + 10'000'000'000ull);
    for (;;) {
      const WaitResult r = pop_wait(*ring_, m, consumer_options(give_up),
                                    [&] { return round_producer_alive(child); });
      if (r == WaitResult::ok) {
        v.check(m);
        continue;
      }
      if (r != WaitResult::peer_dead) return -1.0;
      const double detect = static_cast<double>(now_ns() - killed_at) / 1e9;
      while (ring_->try_pop(m))  // whatever was published right before death
        v.check(m);
      return detect;
    }
  }

  std::string name_;
  std::unique_ptr<ShmSegment> seg_;
  std::unique_ptr<Ring> ring_;
};

TEST_F(ProducerKillCrash, ConsumerDetectsEveryKillAndKeepsAVerifiedPrefix) {
  const std::uint64_t rounds = ringwire::test::scaled_rounds(120, 20);
  std::mt19937_64 rng(static_cast<std::uint64_t>(::getpid()) * 7919u + now_ns());
  Verifier v;
  RoundStats stats;
  const auto t0 = now_ns();
  for (std::uint64_t round = 0; round < rounds; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    Child child = Child::spawn([&] { return producer_main(name_, UINT64_MAX); });
    // Every 8th round the kill lands during start-up (open/attach/register);
    // otherwise after a random stretch of streaming, from microseconds to 40 ms.
    const bool early = round % 8 == 0;
    if (early) {
      ++stats.fast_kills;
      if (rng() & 1) std::this_thread::sleep_for(std::chrono::microseconds(rng() % 2000));
    } else {
      ASSERT_TRUE(ringwire::test::eventually(
          [&] { return seg_->peer(PeerRole::producer).pid == child.pid(); }, 10s))
          << "producer never registered (exit " << child.exit_code() << ")";
      const std::uint64_t delay_us = (rng() % 3 == 0) ? rng() % 500 : rng() % 40'000;
      ASSERT_TRUE(consume_until(now_ns() + delay_us * 1000, v))
          << "producer died before it was killed (exit " << child.exit_code() << ")";
    }
    child.kill(SIGKILL);
    const auto killed_at = now_ns();
    const double detect = drain_until_dead(child.pid(), killed_at, v);
    ASSERT_GE(detect, 0.0) << "consumer did not notice the dead producer within 10 s";
    EXPECT_LT(detect, kMaxDetectSeconds) << "death noticed too late";
    stats.detect_s.push_back(detect);
    EXPECT_EQ(child.exit_code(), -SIGKILL) << "producer exited on its own";
    // Everything published was received, in order and intact; nothing was
    // published after the consumer declared the producer dead.
    ASSERT_EQ(v.received, ring_->control().tail.load()) << "published messages were not received";
    ASSERT_TRUE(v.clean()) << v.first_error;
  }

  // A last producer finishes normally: the ring survived every crash.
  const std::uint64_t target = ring_->control().tail.load() + 20'000;
  Child last = Child::spawn([&] { return producer_main(name_, target); });
  while (v.received < target) {
    Msg m;
    const WaitResult r =
        pop_wait(*ring_, m, consumer_options(Deadline::after(10s)), [] { return true; });
    ASSERT_EQ(r, WaitResult::ok) << "final producer stalled at " << v.received;
    v.check(m);
  }
  EXPECT_EQ(last.exit_code(), 0);
  EXPECT_TRUE(v.clean()) << v.first_error;

  std::sort(stats.detect_s.begin(), stats.detect_s.end());
  std::printf(
      "[ crash    ] %llu kills (%llu during start-up), %llu messages verified in %.1f s; "
      "detection median %.1f ms, max %.1f ms\n",
      static_cast<unsigned long long>(rounds), static_cast<unsigned long long>(stats.fast_kills),
      static_cast<unsigned long long>(v.received), ringwire::test::seconds_since(t0),
      stats.detect_s[stats.detect_s.size() / 2] * 1e3, stats.detect_s.back() * 1e3);
  EXPECT_LT(ringwire::test::seconds_since(t0), 60.0) << "crash test ran too long";
}

}  // namespace
