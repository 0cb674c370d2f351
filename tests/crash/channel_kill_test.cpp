// Channel peers killed with SIGKILL at random moments.
//
// Producer killed: each round the parent creates a channel (consumer), a
// forked child opens it as producer and streams random-size verified
// messages (single publishes and batches of commits), and after a random
// 0-20 ms the parent kills it mid-stream. The consumer must receive every
// message the producer fully published, intact and in order (the ring ends
// empty: tail == head), and then get Errc::peer_dead within 2 s of the kill.
//
// Consumer killed: the parent produces into a small ring that a slow child
// consumer drains; a thread kills the child at a random moment; the
// producer, blocked on the full ring, must get Errc::peer_dead within 2 s.
//
// Every round uses a fresh name, removed at the end of the round; an alarm
// watchdog turns a hang into a failure (and removes the name, kills the
// child) instead of a ctest timeout.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "common/channel_support.hpp"
#include "common/shm_fixture.hpp"
#include "common/test_support.hpp"
#include "ringwire/core/clock.hpp"
#include "ringwire/ipc/channel.hpp"
#include "ringwire/shm/shm_segment.hpp"

namespace {

using namespace std::chrono_literals;
using ringwire::Channel;
using ringwire::core::Deadline;
using ringwire::core::Errc;
using ringwire::core::now_ns;
using ringwire::ipc::ChannelOpenOptions;
using ringwire::ipc::ChannelOptions;
using ringwire::ipc::ChannelRole;
using ringwire::shm::PeerRole;
using ringwire::test::Child;
using ringwire::test::fill_message;
using ringwire::test::message_ok;
using ringwire::test::msg_type;
using ringwire::test::SizeStream;

constexpr std::uint64_t kLivenessNs = 2'000'000;
constexpr double kMaxDetectMs = 2000.0;

ChannelOptions options(std::uint64_t capacity) {
  ChannelOptions o;
  o.capacity = capacity;
  o.liveness_interval_ns = kLivenessNs;
  o.spin_rounds = 512;
  return o;
}
ChannelOpenOptions open_options() {
  ChannelOpenOptions o;
  o.liveness_interval_ns = kLivenessNs;
  o.spin_rounds = 512;
  return o;
}

// Producer child: streams until killed. Alternates single publishes and
// batches of up to 40 commits per publish, so kills land mid-batch too.
int stream_forever(const std::string& name, std::uint64_t seed) {
  auto p = Channel::open(name, ChannelRole::producer, open_options());
  if (!p) return 10;
  SizeStream sizes(seed, p->max_message());
  std::uint32_t pending = 0;
  for (std::uint64_t seq = 0;; ++seq) {
    const std::size_t sz = sizes.next();
    auto span = p->loan(sz, Deadline::after(30s));
    if (!span) return 20 + static_cast<int>(span.status().code());
    fill_message(span->data(), sz, seq);
    p->commit(sz, msg_type(seq));
    const bool batch = (seq / 500) % 2 == 1;
    if (!batch || ++pending == 1 + seq % 40) {
      p->publish();
      pending = 0;
    }
  }
}

// Consumer side of one round: verifies in order.
struct Verify {
  explicit Verify(std::uint64_t seed, std::uint64_t max) : sizes(seed, max) {}
  SizeStream sizes;
  std::uint64_t next = 0;
  std::string error;
  bool check(const ringwire::ipc::RecordView& v) {
    const std::size_t want = sizes.next();
    if (v.data.size() != want || v.type != msg_type(next) ||
        !message_ok(v.data.data(), want, next)) {
      error = ringwire::test::describe_mismatch(v.data.data(), v.data.size(), next, want);
      return false;
    }
    ++next;
    return true;
  }
};

class ChannelKillCrash : public ringwire::test::ShmTest {
 protected:
  void SetUp() override { ringwire::shm::install_cleanup_handlers(); }
};

TEST_F(ChannelKillCrash, ConsumerGetsEveryPublishedMessageThenPeerDead) {
  const std::uint64_t rounds = ringwire::test::scaled_rounds(30, 10);
  std::mt19937_64 rng(static_cast<std::uint64_t>(::getpid()) * 7919u + now_ns());
  ringwire::test::AlarmWatchdog dog("channel producer kill", 120);
  std::vector<double> detect_ms;
  std::uint64_t total = 0;
  const auto t0 = now_ns();
  for (std::uint64_t round = 0; round < rounds; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    const auto name = ringwire::test::unique_name("prodkill");
    dog.forget_names();
    dog.watch_name(name);
    const std::uint64_t seed = rng();
    {
      auto created =
          Channel::create(name, ChannelRole::consumer, options(round % 2 == 0 ? 4096 : 1 << 16));
      ASSERT_TRUE(created.has_value()) << created.status().to_string();
      Channel& c = created.value();
      Child child = Child::spawn([&] { return stream_forever(name, seed); });
      dog.watch_pid(child.pid());
      ASSERT_TRUE(ringwire::test::eventually(
          [&] { return c.segment().peer(PeerRole::producer).pid == child.pid(); }, 10s))
          << "producer never registered (exit " << child.exit_code() << ")";

      Verify v(seed, c.max_message());
      // Stream for a random 0-20 ms, then kill mid-stream.
      const std::uint64_t kill_at = now_ns() + rng() % 20'000'000;
      for (;;) {
        auto r = c.receive(Deadline::at(kill_at));
        if (!r) {
          ASSERT_EQ(r.status().code(), Errc::timed_out)
              << r.status().to_string() << " (child exit " << child.exit_code() << ")";
          break;
        }
        ASSERT_TRUE(v.check(*r)) << v.error;
        c.release();
      }
      child.kill(SIGKILL);
      const auto killed_at = now_ns();
      // Drain: everything published comes out intact, then peer_dead.
      double ms = -1;
      for (;;) {
        auto r = c.receive(Deadline::at(killed_at + 10'000'000'000ull));
        if (r) {
          ASSERT_TRUE(v.check(*r)) << v.error;
          c.release();
          continue;
        }
        ms = static_cast<double>(now_ns() - killed_at) / 1e6;
        ASSERT_EQ(r.status().code(), Errc::peer_dead)
            << r.status().to_string() << " after " << ms << " ms";
        break;
      }
      EXPECT_LT(ms, kMaxDetectMs) << "death noticed too late";
      detect_ms.push_back(ms);
      EXPECT_EQ(child.exit_code(), -SIGKILL) << "producer exited on its own";
      dog.forget_pid(child.pid());
      // Every published byte was consumed: nothing published was lost.
      const auto st = c.stats();
      EXPECT_EQ(st.used_bytes, 0u) << "published messages left unread";
      EXPECT_EQ(c.ring().control().head.load(), c.ring().control().tail.load());
      EXPECT_GE(st.messages, v.next);
      total += v.next;
      // peer_dead is sticky.
      auto again = c.try_receive();
      EXPECT_FALSE(again.has_value());
      EXPECT_EQ(c.check().code(), Errc::peer_dead);
    }
    EXPECT_FALSE(ringwire::test::shm_name_exists(name)) << "segment left after the round";
  }
  std::sort(detect_ms.begin(), detect_ms.end());
  std::printf(
      "[ crash    ] %llu producer kills, %llu messages verified in %.1f s; detection median "
      "%.1f ms, max %.1f ms\n",
      static_cast<unsigned long long>(rounds), static_cast<unsigned long long>(total),
      ringwire::test::seconds_since(t0), detect_ms[detect_ms.size() / 2], detect_ms.back());
}

TEST_F(ChannelKillCrash, BlockedProducerGetsPeerDeadWhenTheConsumerIsKilled) {
  const std::uint64_t rounds = ringwire::test::scaled_rounds(30, 10);
  std::mt19937_64 rng(static_cast<std::uint64_t>(::getpid()) * 104729u + now_ns());
  ringwire::test::AlarmWatchdog dog("channel consumer kill", 120);
  std::vector<double> detect_ms;
  const auto t0 = now_ns();
  for (std::uint64_t round = 0; round < rounds; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    const auto name = ringwire::test::unique_name("conskill");
    dog.forget_names();
    dog.watch_name(name);
    const std::uint64_t seed = rng();
    {
      auto created = Channel::create(name, ChannelRole::producer, options(4096));
      ASSERT_TRUE(created.has_value()) << created.status().to_string();
      Channel& p = created.value();
      const std::uint64_t max = p.max_message();
      // A slow consumer that verifies everything: the ring is mostly full.
      Child child = Child::spawn([&] {
        auto c = Channel::open(name, ChannelRole::consumer, open_options());
        if (!c) return 10;
        Verify v(seed, max);
        for (;;) {
          auto r = c->receive(Deadline::after(30s));
          if (!r) return 20 + static_cast<int>(r.status().code());
          if (!v.check(*r)) return 30;
          c->release();
          std::this_thread::sleep_for(50us);
        }
      });
      dog.watch_pid(child.pid());
      ASSERT_TRUE(ringwire::test::eventually(
          [&] { return p.segment().peer(PeerRole::consumer).pid == child.pid(); }, 10s))
          << "consumer never registered (exit " << child.exit_code() << ")";
      std::atomic<std::uint64_t> killed_at{0};
      const auto delay = std::chrono::microseconds(rng() % 20'000);
      std::thread killer([&] {
        std::this_thread::sleep_for(delay);
        killed_at.store(now_ns());  // before: the death cannot be seen earlier
        child.kill(SIGKILL);
      });
      SizeStream sizes(seed, max);
      ringwire::core::Status failure;
      std::size_t last_size = 0;
      for (std::uint64_t seq = 0;; ++seq) {
        last_size = sizes.next();
        auto span = p.loan(last_size, Deadline::after(10s));
        if (!span) {
          failure = span.status();
          break;
        }
        fill_message(span->data(), last_size, seq);
        p.commit(last_size, msg_type(seq));
        p.publish();
      }
      const auto failed_at = now_ns();
      killer.join();
      const std::uint64_t k = killed_at.load();
      ASSERT_NE(k, 0u);
      ASSERT_EQ(failure.code(), Errc::peer_dead) << failure.to_string();
      ASSERT_GE(failed_at, k) << "peer_dead reported before the kill";
      const double ms = static_cast<double>(failed_at - k) / 1e6;
      EXPECT_LT(ms, kMaxDetectMs) << "death noticed too late";
      detect_ms.push_back(ms);
      EXPECT_FALSE(p.ring().writable(last_size)) << "producer was not blocked on a full ring";
      EXPECT_EQ(child.exit_code(), -SIGKILL) << "consumer exited on its own";
      dog.forget_pid(child.pid());
    }
    EXPECT_FALSE(ringwire::test::shm_name_exists(name)) << "segment left after the round";
  }
  std::sort(detect_ms.begin(), detect_ms.end());
  std::printf("[ crash    ] %llu consumer kills in %.1f s; detection median %.1f ms, max %.1f ms\n",
              static_cast<unsigned long long>(rounds), ringwire::test::seconds_since(t0),
              detect_ms[detect_ms.size() / 2], detect_ms.back());
}

}  // namespace
