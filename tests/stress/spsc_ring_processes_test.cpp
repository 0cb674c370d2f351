// SpscRing between two processes: the parent creates the segment and
// consumes; a forked child opens it by name (ShmSegment::open +
// SpscRing::attach) and produces. 10,000,000 messages by default
// (RINGWIRE_STRESS_MESSAGES overrides), every one verified. Both sides switch
// between batch, zero-copy and blocking (cross-process futex) APIs.
// Skipped under TSan: it cannot see the other process's accesses.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "common/shm_fixture.hpp"
#include "common/test_support.hpp"
#include "ringwire/core/clock.hpp"
#include "ringwire/queue/blocking.hpp"
#include "ringwire/queue/spsc_ring.hpp"
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
using ringwire::queue::wake_producer;
using ringwire::shm::PeerRole;
using ringwire::test::Child;
using ringwire::test::Idle;
using ringwire::test::make_msg;
using ringwire::test::Msg;
using ringwire::test::Verifier;
using Ring = SpscRing<Msg>;

constexpr std::uint64_t kDefaultMessages = 10'000'000;
constexpr std::uint64_t kCap = 1024;
constexpr std::uint64_t kChunk = 50'000;  // messages per API mode before switching

WaitOptions blocking_options() {
  WaitOptions o;
  o.policy = WaitPolicy::spin_then_sleep;
  o.spin_rounds = 1024;
  o.deadline = Deadline::after(30s);
  o.liveness_interval_ns = 5'000'000;
  return o;
}

// Child process body. Exit codes: 0 done, 10+ setup failures, 20+ run failures.
int produce(const std::string& name, std::uint64_t n) {
  auto seg = ShmSegment::open(name, ringwire::test::ring_spec<Ring>(kCap));
  if (!seg) return 10;
  auto ring = Ring::attach(seg->payload(), seg->payload_size());
  if (!ring) return 11;
  seg->register_peer(PeerRole::producer);
  auto consumer_alive = [&] { return seg->peer_alive(PeerRole::consumer); };
  std::vector<Msg> batch(64);
  Idle idle;
  std::uint64_t seq = 0;
  std::size_t round = 0;
  while (seq < n) {
    const std::uint64_t mode = (seq / kChunk) % 3;
    std::size_t pushed = 0;
    const std::size_t want =
        static_cast<std::size_t>(std::min<std::uint64_t>(1 + round++ % 64, n - seq));
    if (mode == 0) {
      for (std::size_t i = 0; i < want; ++i)
        batch[i] = make_msg(seq + i);
      pushed = ring->push_n(batch.data(), want);
      if (pushed > 0) wake_consumer(*ring);
    } else if (mode == 1) {
      auto span = ring->claim_write(want);
      for (std::size_t i = 0; i < span.size(); ++i)
        span[i] = make_msg(seq + i);
      ring->commit_write(span.size());
      pushed = span.size();
      if (pushed > 0) wake_consumer(*ring);
    } else {
      const WaitResult r = push_wait(*ring, make_msg(seq), blocking_options(), consumer_alive);
      if (r != WaitResult::ok) return 20 + static_cast<int>(r);
      pushed = 1;
    }
    seq += pushed;
    if (pushed > 0) {
      idle.reset();
    } else {
      idle();
      if (idle.should_check() && !consumer_alive()) return 30;
    }
  }
  return 0;
}

class SpscRingProcessesStress : public ringwire::test::ShmTest {};

TEST_F(SpscRingProcessesStress, ChildProducerParentConsumerOverANamedSegment) {
  if (ringwire::test::running_under_tsan()) {
    GTEST_SKIP() << "cross-process accesses are invisible to ThreadSanitizer";
  }
  const std::uint64_t n = ringwire::test::stress_messages(kDefaultMessages);
  const std::string name = ringwire::test::unique_name("procstress");
  auto spec = ringwire::test::ring_spec<Ring>(kCap);
  auto seg = ShmSegment::create(name, spec);
  ASSERT_TRUE(seg.has_value()) << seg.status().to_string();
  auto ring = Ring::create_in(seg->payload(), seg->payload_size(), kCap);
  ASSERT_TRUE(ring.has_value()) << ring.status().to_string();
  seg->register_peer(PeerRole::consumer);
  seg->mark_ready();

  const auto t0 = now_ns();
  Child child = Child::spawn([&] { return produce(name, n); });
  ASSERT_TRUE(ringwire::test::eventually(
      [&] { return seg->peer(PeerRole::producer).pid == child.pid(); }, 10s))
      << "producer never registered; child exit code " << child.exit_code();
  auto producer_alive = [&] { return seg->peer_alive(PeerRole::producer); };

  Verifier v;
  std::vector<Msg> out(64);
  Idle idle;
  std::string failure;
  for (std::size_t round = 0; v.received < n && failure.empty(); ++round) {
    const std::uint64_t mode = (v.received / (kChunk + 7919)) % 3;  // out of phase with the child
    std::size_t got = 0;
    const std::size_t want = 1 + round % 64;
    if (mode == 0) {
      got = ring->pop_n(out.data(), want);
      for (std::size_t i = 0; i < got; ++i)
        v.check(out[i]);
      if (got > 0) wake_producer(*ring);
    } else if (mode == 1) {
      auto span = ring->claim_read(want);
      for (const Msg& m : span)
        v.check(m);
      ring->commit_read(span.size());
      got = span.size();
      if (got > 0) wake_producer(*ring);
    } else {
      Msg m;
      WaitResult r = pop_wait(*ring, m, blocking_options(), producer_alive);
      // A producer that published its last items and exited reads as dead.
      if (r == WaitResult::peer_dead && ring->try_pop(m)) r = WaitResult::ok;
      if (r != WaitResult::ok) {
        failure = "pop_wait returned " + std::to_string(static_cast<int>(r));
        break;
      }
      v.check(m);
      got = 1;
    }
    if (got > 0) {
      idle.reset();
    } else {
      idle();
      if (idle.should_check() && !producer_alive()) failure = "producer died";
    }
  }
  const double s = ringwire::test::seconds_since(t0);
  std::printf("[ stress   ] 2 processes: %llu messages in %.2f s (%.2f M/s), wakeups %llu\n",
              static_cast<unsigned long long>(v.received), s,
              static_cast<double>(v.received) / s / 1e6,
              static_cast<unsigned long long>(ring->control().wait.wakeups.load()));
  EXPECT_TRUE(failure.empty()) << failure << " after " << v.received << " messages";
  ASSERT_TRUE(child.wait_for(30s)) << "producer did not finish";
  EXPECT_EQ(child.exit_code(), 0);
  EXPECT_EQ(v.received, n);
  EXPECT_EQ(v.out_of_sequence, 0u) << v.first_error;
  EXPECT_EQ(v.corrupt, 0u) << v.first_error;
  EXPECT_EQ(ring->control().tail.load(), n);
  EXPECT_EQ(ring->size_approx(), 0u);
}

}  // namespace
