// The segment's creator (the consumer) is killed with SIGKILL. Its segment
// stays in /dev/shm (no destructor ran); open() must refuse it with
// creator_dead, list_segments() must report it as stale, remove_segment()
// must remove it, and a producer blocked on the ring must notice the death.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <random>
#include <string>
#include <thread>

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
using ringwire::core::Errc;
using ringwire::core::errc_name;
using ringwire::core::now_ns;
using ringwire::queue::push_wait;
using ringwire::queue::WaitOptions;
using ringwire::queue::WaitPolicy;
using ringwire::queue::WaitResult;
using ringwire::shm::list_segments;
using ringwire::shm::OpenOptions;
using ringwire::shm::PeerRole;
using ringwire::shm::remove_segment;
using ringwire::shm::SegmentInfo;
using ringwire::test::Child;
using ringwire::test::Pipe;
using ringwire::test::shm_name_exists;
using Ring = SpscRing<std::uint64_t>;

constexpr std::uint64_t kCap = 256;

ringwire::shm::SegmentSpec spec() {
  return ringwire::test::ring_spec<Ring>(kCap);
}

OpenOptions quick() {
  OpenOptions o;
  o.wait_ready_ns = 20'000'000;
  return o;
}

// Child body: creates the segment as the consumer, reports "ready" on the
// pipe, then waits to be killed. Exit codes only on setup failure.
int creator_main(const std::string& name, Pipe& ready) {
  ready.close_read();
  auto seg = ShmSegment::create(name, spec());
  if (!seg) return 10;
  if (!Ring::create_in(seg->payload(), seg->payload_size(), kCap)) return 11;
  seg->register_peer(PeerRole::consumer);
  seg->mark_ready();
  ready.send();
  for (;;)
    ::pause();
}

std::optional<SegmentInfo> find_listed(const std::string& name) {
  for (auto& info : list_segments())
    if (info.name == name) return info;
  return std::nullopt;
}

class CreatorKillCrash : public ringwire::test::ShmTest {
 protected:
  void TearDown() override {
    const auto left = ringwire::test::shm_entries_with_prefix(ringwire::test::name_prefix());
    EXPECT_TRUE(left.empty()) << "stale segments survived the test: " << ringwire::test::join(left);
    ringwire::test::ShmTest::TearDown();
  }
};

TEST_F(CreatorKillCrash, KilledCreatorLeavesAStaleSegmentThatIsRefusedFoundAndRemoved) {
  for (int round = 0; round < 5; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    const auto name = ringwire::test::unique_name("creatorkill");
    Pipe ready;
    Child creator = Child::spawn([&] { return creator_main(name, ready); });
    ready.close_write();
    ASSERT_GE(ready.receive(), 0) << "creator failed: exit " << creator.exit_code();

    auto attached = ShmSegment::open(name, spec());
    ASSERT_TRUE(attached.has_value()) << attached.status().to_string();
    EXPECT_TRUE(attached->creator_alive());
    attached->register_peer(PeerRole::producer);

    creator.kill(SIGKILL);
    // Even before it is reaped (a zombie) the creator must read as dead.
    EXPECT_TRUE(ringwire::test::eventually(
        [&] {
          auto r = ShmSegment::open(name, spec(), quick());
          return !r.has_value() && r.status().code() == Errc::creator_dead;
        },
        2s))
        << "open() kept accepting a killed creator's segment";
    EXPECT_EQ(creator.exit_code(), -SIGKILL);

    auto reopened = ShmSegment::open(name, spec(), quick());
    ASSERT_FALSE(reopened.has_value());
    EXPECT_EQ(reopened.status().code(), Errc::creator_dead) << reopened.status().to_string();
    EXPECT_FALSE(attached->creator_alive());
    EXPECT_FALSE(attached->peer_alive(PeerRole::consumer));
    EXPECT_TRUE(attached->check_session().is_ok()) << "a crash cannot mark the segment closed";

    ASSERT_TRUE(shm_name_exists(name)) << "nothing should have unlinked it";
    auto listed = find_listed(name);
    ASSERT_TRUE(listed.has_value()) << "list_segments() does not show the stale segment";
    EXPECT_TRUE(listed->header_valid) << listed->problem;
    EXPECT_EQ(listed->creator.pid, creator.pid());
    EXPECT_FALSE(listed->creator_alive);
    EXPECT_FALSE(listed->peer_alive[static_cast<int>(PeerRole::consumer)]);
    EXPECT_TRUE(listed->peer_alive[static_cast<int>(PeerRole::producer)]) << "we are alive";

    EXPECT_TRUE(remove_segment(name).is_ok());
    EXPECT_FALSE(shm_name_exists(name));
    EXPECT_FALSE(find_listed(name).has_value());
    auto gone = ShmSegment::open(name, spec(), quick());
    EXPECT_EQ(gone.status().code(), Errc::not_found) << gone.status().to_string();
    // `attached` still maps the removed object; destroying it unlinks nothing.
  }
}

TEST_F(CreatorKillCrash, ProducerBlockedOnAFullRingNoticesTheCreatorsDeath) {
  const auto name = ringwire::test::unique_name("creatorkill_prod");
  Pipe ready;
  Child creator = Child::spawn([&] { return creator_main(name, ready); });
  ready.close_write();
  ASSERT_GE(ready.receive(), 0) << "creator failed: exit " << creator.exit_code();

  Pipe blocked;
  Child producer = Child::spawn([&] {
    blocked.close_read();
    auto seg = ShmSegment::open(name, spec());
    if (!seg) return 10;
    auto ring = Ring::attach(seg->payload(), seg->payload_size());
    if (!ring) return 11;
    seg->register_peer(PeerRole::producer);
    for (std::uint64_t i = 0; i < kCap; ++i)  // the creator never consumes: fill it
      if (!ring->try_push(i)) return 12;
    blocked.send();
    WaitOptions o;
    o.policy = WaitPolicy::spin_then_sleep;
    o.deadline = Deadline::after(20s);
    o.liveness_interval_ns = 2'000'000;
    const WaitResult r =
        push_wait(*ring, std::uint64_t{0}, o, [&] { return seg->peer_alive(PeerRole::consumer); });
    return r == WaitResult::peer_dead ? 0 : 20 + static_cast<int>(r);
  });
  blocked.close_write();
  ASSERT_GE(blocked.receive(), 0) << "producer failed: exit " << producer.exit_code();
  std::this_thread::sleep_for(20ms);  // let it go to sleep in push_wait

  creator.kill(SIGKILL);
  const auto killed_at = now_ns();
  ASSERT_TRUE(producer.wait_for(5s)) << "producer still blocked 5 s after the consumer died";
  const double detect = ringwire::test::seconds_since(killed_at);
  EXPECT_EQ(producer.exit_code(), 0) << "push_wait did not report peer_dead";
  EXPECT_LT(detect, 2.0);
  EXPECT_EQ(creator.exit_code(), -SIGKILL);

  auto r = ShmSegment::open(name, spec(), quick());
  EXPECT_EQ(r.status().code(), Errc::creator_dead) << r.status().to_string();
  EXPECT_TRUE(remove_segment(name).is_ok());
}

// Kills the creator at random points of create(): before shm_open, between
// ftruncate and the header, after the magic, after mark_ready. Whatever is
// left must be refused cleanly (never opened, never a crash) and removable.
TEST_F(CreatorKillCrash, CreatorKilledAtRandomPointsDuringCreation) {
  std::mt19937_64 rng(now_ns());
  int outcomes[4] = {0, 0, 0, 0};  // not_found, not_ready, creator_dead, other
  const int rounds = static_cast<int>(ringwire::test::scaled_rounds(60, 20));
  for (int round = 0; round < rounds; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    const auto name = ringwire::test::unique_name("creatorkill_rand");
    Pipe ready;
    Child creator = Child::spawn([&] { return creator_main(name, ready); });
    ready.close_write();
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 3000));
    creator.kill(SIGKILL);
    creator.wait();

    auto r = ShmSegment::open(name, spec(), quick());
    ASSERT_FALSE(r.has_value()) << "opened a dead creator's segment";
    const Errc code = r.status().code();
    if (code == Errc::not_found) {
      ++outcomes[0];
    } else if (code == Errc::not_ready) {
      ++outcomes[1];
    } else if (code == Errc::creator_dead) {
      ++outcomes[2];
    } else {
      ++outcomes[3];
      ADD_FAILURE() << "unexpected " << errc_name(code) << ": " << r.status().to_string();
    }
    if (shm_name_exists(name)) {
      EXPECT_TRUE(find_listed(name).has_value()) << "list_segments() missed a leftover";
      EXPECT_TRUE(remove_segment(name).is_ok());
    }
    EXPECT_FALSE(shm_name_exists(name));
  }
  std::printf("[ crash    ] %d creator kills: %d not_found, %d not_ready, %d creator_dead\n",
              rounds, outcomes[0], outcomes[1], outcomes[2]);
}

}  // namespace
