// Channel: create / open by name and every error the API documents
// (not_found, kind_mismatch, already_exists, invalid_argument, would_block,
// timed_out, closed, peer_dead, session_changed), the full policies, every
// wait strategy between two processes, and the futex wake-up economy.
//
// Children are forked with test::Child (they die with this process and are
// reaped on scope exit) and leave through _exit, so they never run the
// parent's destructors; every name is "rwtest.<pid>..." and the ShmTest
// fixture checks that nothing is left in /dev/shm after each test.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <optional>
#include <stdexcept>
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
using ringwire::core::errc_name;
using ringwire::core::now_ns;
using ringwire::ipc::ChannelOpenOptions;
using ringwire::ipc::ChannelOptions;
using ringwire::ipc::ChannelRole;
using ringwire::ipc::FullPolicy;
using ringwire::ipc::WaitStrategy;
using ringwire::test::Child;
using ringwire::test::fill_message;
using ringwire::test::message_ok;
using ringwire::test::Pipe;
using ringwire::test::unique_name;

constexpr std::uint64_t kLivenessNs = 2'000'000;

ChannelOptions small_options(std::uint64_t capacity = 4096) {
  ChannelOptions o;
  o.capacity = capacity;
  o.liveness_interval_ns = kLivenessNs;
  o.name_check_interval_ns = 20'000'000;
  return o;
}
ChannelOpenOptions open_options() {
  ChannelOpenOptions o;
  o.liveness_interval_ns = kLivenessNs;
  o.name_check_interval_ns = 20'000'000;
  return o;
}

// These throw on failure: GoogleTest reports the exception as a failure of
// the running test, and the destructors of everything already built run
// (so no name is left behind), which ASSERT_* inside a helper cannot do.
Channel must_create(const std::string& name, ChannelRole role, const ChannelOptions& o) {
  auto r = Channel::create(name, role, o);
  if (!r) throw std::runtime_error("create " + name + ": " + r.status().to_string());
  return std::move(r.value());
}
Channel must_open(const std::string& name, ChannelRole role,
                  const ChannelOpenOptions& o = open_options()) {
  auto r = Channel::open(name, role, o);
  if (!r) throw std::runtime_error("open " + name + ": " + r.status().to_string());
  return std::move(r.value());
}

// Sends message `seq` of n bytes (loan, fill, commit, publish).
ringwire::core::Status send_msg(Channel& ch, std::size_t n, std::uint64_t seq,
                                Deadline d = Deadline::after(5s)) {
  auto span = ch.loan(n, d);
  if (!span) return span.status();
  fill_message(span->data(), n, seq);
  ch.commit(n, ringwire::test::msg_type(seq));
  ch.publish();
  return {};
}

// Receives one message and checks it is `seq` of size n; returns the error
// code (ok on success).
Errc expect_msg(Channel& ch, std::size_t n, std::uint64_t seq, Deadline d = Deadline::after(5s)) {
  auto r = ch.receive(d);
  if (!r) return r.status().code();
  EXPECT_EQ(r->data.size(), n) << "seq " << seq;
  EXPECT_EQ(r->type, ringwire::test::msg_type(seq));
  EXPECT_TRUE(r->data.size() == n && message_ok(r->data.data(), n, seq))
      << ringwire::test::describe_mismatch(r->data.data(), r->data.size(), seq, n);
  ch.release();
  return Errc::ok;
}

double ms_since(std::uint64_t t0) {
  return static_cast<double>(now_ns() - t0) / 1e6;
}

class ChannelTest : public ringwire::test::ShmTest {
 protected:
  // SIGINT / SIGTERM / SIGHUP (e.g. ctest being stopped) unlink what we own.
  void SetUp() override { ringwire::shm::install_cleanup_handlers(); }
};

// ---- create / open ----------------------------------------------------------------------

TEST_F(ChannelTest, CreateAndOpenByName) {
  const auto name = unique_name("chan");
  ChannelOptions o = small_options();
  o.wait = WaitStrategy::spin_yield;
  o.full = FullPolicy::fail;
  auto p = must_create(name, ChannelRole::producer, o);
  EXPECT_TRUE(ringwire::test::shm_name_exists(name));
  auto c = must_open(name, ChannelRole::consumer);
  EXPECT_EQ(p.role(), ChannelRole::producer);
  EXPECT_EQ(c.role(), ChannelRole::consumer);
  EXPECT_EQ(c.max_message(), ringwire::ByteRing::max_message_for(4096));
  EXPECT_EQ(c.wait_strategy(), WaitStrategy::spin_yield) << "the opener uses the creator's choice";
  EXPECT_EQ(c.full_policy(), FullPolicy::fail);
  EXPECT_TRUE(p.segment().is_owner());
  EXPECT_FALSE(c.segment().is_owner());
  EXPECT_TRUE(p.check().is_ok()) << p.check().to_string();
  EXPECT_TRUE(c.check().is_ok()) << c.check().to_string();

  for (std::uint64_t s = 0; s < 100; ++s) {
    const std::size_t n = 1 + (s * 97) % c.max_message();
    ASSERT_TRUE(send_msg(p, n, s).is_ok());
    ASSERT_EQ(expect_msg(c, n, s), Errc::ok);
  }
  const auto st = c.stats();
  EXPECT_EQ(st.messages, 100u);
  EXPECT_EQ(st.capacity, 4096u);
  EXPECT_EQ(st.used_bytes, 0u);
  EXPECT_EQ(st.drops, 0u);

  // And with the consumer as creator.
  const auto name2 = unique_name("chan");
  auto c2 = must_create(name2, ChannelRole::consumer, small_options());
  auto p2 = must_open(name2, ChannelRole::producer);
  ASSERT_TRUE(send_msg(p2, 33, 0).is_ok());
  ASSERT_EQ(expect_msg(c2, 33, 0), Errc::ok);
}

TEST_F(ChannelTest, OpenOfAMissingNameIsNotFound) {
  auto r = Channel::open(unique_name("missing"), ChannelRole::consumer);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.status().code(), Errc::not_found) << r.status().to_string();
}

TEST_F(ChannelTest, CreateOfAnExistingNameIsAlreadyExists) {
  const auto name = unique_name("twice");
  auto p = must_create(name, ChannelRole::producer, small_options());
  auto again = Channel::create(name, ChannelRole::consumer, small_options());
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.status().code(), Errc::already_exists) << again.status().to_string();
  // The failed create did not take the name away from its owner.
  auto c = must_open(name, ChannelRole::consumer);
  ASSERT_TRUE(send_msg(p, 10, 0).is_ok());
  EXPECT_EQ(expect_msg(c, 10, 0), Errc::ok);
}

TEST_F(ChannelTest, OpenOfAnotherKindIsKindMismatch) {
  const auto name = unique_name("spsc");
  ringwire::shm::SegmentSpec spec;
  spec.kind = ringwire::shm::SegmentKind::spsc_ring;
  spec.layout_hash = ringwire::test::kTestLayoutHash;
  spec.capacity = 4096;
  spec.element_size = 32;
  spec.payload_size = 8192;
  auto seg = ringwire::ShmSegment::create(name, spec);
  ASSERT_TRUE(seg.has_value()) << seg.status().to_string();
  seg->mark_ready();
  for (auto role : {ChannelRole::producer, ChannelRole::consumer}) {
    auto r = Channel::open(name, role, open_options());
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.status().code(), Errc::kind_mismatch) << r.status().to_string();
  }
}

TEST_F(ChannelTest, SecondLiveHolderOfARoleIsRefused) {
  const auto name = unique_name("dup");
  auto p = must_create(name, ChannelRole::producer, small_options());
  auto p2 = Channel::open(name, ChannelRole::producer, open_options());
  ASSERT_FALSE(p2.has_value());
  EXPECT_EQ(p2.status().code(), Errc::already_exists) << p2.status().to_string();

  std::optional<Channel> c(must_open(name, ChannelRole::consumer));
  auto c2 = Channel::open(name, ChannelRole::consumer, open_options());
  ASSERT_FALSE(c2.has_value());
  EXPECT_EQ(c2.status().code(), Errc::already_exists) << c2.status().to_string();
  // A consumer that left on purpose frees the role.
  c.reset();
  auto c3 = Channel::open(name, ChannelRole::consumer, open_options());
  ASSERT_TRUE(c3.has_value()) << c3.status().to_string();
}

TEST_F(ChannelTest, SecondLiveProducerProcessIsRefusedUntilItDies) {
  const auto name = unique_name("dupproc");
  auto c = must_create(name, ChannelRole::consumer, small_options());
  Pipe ready;
  Child child = Child::spawn([&] {
    auto p = Channel::open(name, ChannelRole::producer, open_options());
    if (!p) return 10;
    ready.send();
    ::pause();
    return 0;
  });
  ready.close_write();
  ASSERT_EQ(ready.receive(), '!') << "child could not open (exit " << child.exit_code() << ")";
  auto p2 = Channel::open(name, ChannelRole::producer, open_options());
  ASSERT_FALSE(p2.has_value());
  EXPECT_EQ(p2.status().code(), Errc::already_exists) << p2.status().to_string();
  child.kill();
  EXPECT_EQ(child.exit_code(), -SIGKILL);
  // A dead producer does not hold the role.
  auto p3 = Channel::open(name, ChannelRole::producer, open_options());
  ASSERT_TRUE(p3.has_value()) << p3.status().to_string();
  ASSERT_TRUE(send_msg(*p3, 20, 0).is_ok());
  EXPECT_EQ(expect_msg(c, 20, 0), Errc::ok);
}

TEST_F(ChannelTest, BadOptionsAreInvalidArgument) {
  struct Case {
    const char* what;
    std::uint64_t capacity, max_message;
  };
  const Case cases[] = {
      {"capacity 100", 100, 0},
      {"capacity 32", 32, 0},
      {"capacity 0", 0, 0},
      {"capacity 2^33", std::uint64_t{1} << 33, 0},
      {"max message above capacity / 2 - 8", 4096, 2041},
      {"max message of the whole ring", 4096, 4096},
  };
  for (const auto& c : cases) {
    const auto name = unique_name("bad");
    ChannelOptions o = small_options(c.capacity);
    o.max_message = c.max_message;
    auto r = Channel::create(name, ChannelRole::producer, o);
    ASSERT_FALSE(r.has_value()) << c.what;
    EXPECT_EQ(r.status().code(), Errc::invalid_argument)
        << c.what << ": " << r.status().to_string();
    EXPECT_FALSE(ringwire::test::shm_name_exists(name)) << c.what << ": name left behind";
  }
  ChannelOptions o = small_options();
  o.wait = static_cast<WaitStrategy>(7);
  auto r = Channel::create(unique_name("bad"), ChannelRole::producer, o);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.status().code(), Errc::invalid_argument);
  o = small_options();
  o.full = static_cast<FullPolicy>(3);
  r = Channel::create(unique_name("bad"), ChannelRole::producer, o);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.status().code(), Errc::invalid_argument);
  // The largest legal max message is accepted.
  o = small_options();
  o.max_message = 2040;
  auto ok = Channel::create(unique_name("good"), ChannelRole::producer, o);
  ASSERT_TRUE(ok.has_value()) << ok.status().to_string();
  EXPECT_EQ(ok->max_message(), 2040u);
}

TEST_F(ChannelTest, LoanOutOfRangeIsInvalidArgument) {
  const auto name = unique_name("range");
  ChannelOptions o = small_options();
  o.max_message = 100;
  auto p = must_create(name, ChannelRole::producer, o);
  for (std::size_t n : {std::size_t{0}, std::size_t{101}, SIZE_MAX}) {
    auto l = p.loan(n, Deadline::after(1s));
    ASSERT_FALSE(l.has_value()) << n;
    EXPECT_EQ(l.status().code(), Errc::invalid_argument) << n;
  }
  const auto st = p.send({}, 0, Deadline::after(1s));
  EXPECT_EQ(st.code(), Errc::invalid_argument);
  EXPECT_EQ(p.stats().messages, 0u);
}

// ---- full policies and timeouts ------------------------------------------------------------

TEST_F(ChannelTest, FailPolicyReturnsWouldBlockAtOnceWhenFull) {
  const auto name = unique_name("fail");
  ChannelOptions o = small_options();
  o.full = FullPolicy::fail;
  auto p = must_create(name, ChannelRole::producer, o);
  auto c = must_open(name, ChannelRole::consumer);
  std::uint64_t sent = 0;
  for (;; ++sent) {
    const auto t0 = now_ns();
    const auto st = send_msg(p, 56, sent, Deadline::after(5s));
    if (!st) {
      EXPECT_EQ(st.code(), Errc::would_block) << st.to_string();
      EXPECT_LT(ms_since(t0), 500.0) << "fail policy waited";
      break;
    }
    ASSERT_LT(sent, 1000u) << "the ring never filled";
  }
  EXPECT_EQ(sent, 4096u / 64u);
  EXPECT_EQ(p.stats().drops, 0u) << "fail policy counted a drop";
  ASSERT_EQ(expect_msg(c, 56, 0), Errc::ok);
  EXPECT_TRUE(send_msg(p, 56, sent).is_ok()) << "no room after a release";
  for (std::uint64_t s = 1; s <= sent; ++s)
    ASSERT_EQ(expect_msg(c, 56, s), Errc::ok);
}

TEST_F(ChannelTest, DropPolicyReturnsWouldBlockAndCountsDrops) {
  const auto name = unique_name("drop");
  ChannelOptions o = small_options();
  o.full = FullPolicy::drop;
  auto p = must_create(name, ChannelRole::producer, o);
  auto c = must_open(name, ChannelRole::consumer);
  std::uint64_t sent = 0, dropped = 0;
  for (int i = 0; i < 200; ++i) {
    const auto t0 = now_ns();
    const auto st = send_msg(p, 56, sent, Deadline::after(5s));
    if (st) {
      ++sent;
    } else {
      EXPECT_EQ(st.code(), Errc::would_block) << st.to_string();
      EXPECT_LT(ms_since(t0), 500.0) << "drop policy waited";
      ++dropped;
    }
  }
  EXPECT_EQ(sent, 64u);
  EXPECT_EQ(dropped, 200u - 64u);
  EXPECT_EQ(p.stats().drops, dropped);
  EXPECT_EQ(c.stats().drops, dropped) << "the consumer sees the shared counter";
  EXPECT_EQ(p.stats().messages, sent);
  for (std::uint64_t s = 0; s < sent; ++s)
    ASSERT_EQ(expect_msg(c, 56, s), Errc::ok);
}

TEST_F(ChannelTest, BlockPolicyTimesOutWhenFull) {
  for (auto w : {WaitStrategy::spin, WaitStrategy::spin_yield, WaitStrategy::spin_futex}) {
    SCOPED_TRACE(ringwire::ipc::wait_strategy_name(w));
    const auto name = unique_name("block");
    ChannelOptions o = small_options();
    o.wait = w;
    auto p = must_create(name, ChannelRole::producer, o);
    auto c = must_open(name, ChannelRole::consumer);
    for (std::uint64_t s = 0; s < 64; ++s)
      ASSERT_TRUE(send_msg(p, 56, s).is_ok());
    const auto t0 = now_ns();
    auto l = p.loan(56, Deadline::after(100ms));
    const double ms = ms_since(t0);
    ASSERT_FALSE(l.has_value());
    EXPECT_EQ(l.status().code(), Errc::timed_out) << l.status().to_string();
    EXPECT_GE(ms, 99.0);
    EXPECT_LT(ms, 2000.0);
  }
}

TEST_F(ChannelTest, ReceiveOnAnEmptyChannelTimesOut) {
  for (auto w : {WaitStrategy::spin, WaitStrategy::spin_yield, WaitStrategy::spin_futex}) {
    SCOPED_TRACE(ringwire::ipc::wait_strategy_name(w));
    const auto name = unique_name("empty");
    ChannelOptions o = small_options();
    o.wait = w;
    auto p = must_create(name, ChannelRole::producer, o);
    auto c = must_open(name, ChannelRole::consumer);
    auto t = c.try_receive();
    ASSERT_FALSE(t.has_value());
    EXPECT_EQ(t.status().code(), Errc::would_block);
    const auto t0 = now_ns();
    auto r = c.receive(Deadline::after(100ms));
    const double ms = ms_since(t0);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.status().code(), Errc::timed_out) << r.status().to_string();
    EXPECT_GE(ms, 99.0);
    EXPECT_LT(ms, 2000.0);
  }
}

// ---- the peer going away ------------------------------------------------------------------

TEST_F(ChannelTest, ConsumerSeesClosedAfterTheProducerChannelIsDestroyed) {
  // In one process, producer = creator: destruction closes and unlinks.
  const auto name = unique_name("close");
  auto c_opt = std::optional<Channel>();
  {
    auto p = must_create(name, ChannelRole::producer, small_options());
    c_opt.emplace(must_open(name, ChannelRole::consumer));
    for (std::uint64_t s = 0; s < 20; ++s)
      ASSERT_TRUE(send_msg(p, 1 + s * 5, s).is_ok());
  }
  EXPECT_FALSE(ringwire::test::shm_name_exists(name)) << "the creator did not unlink";
  Channel& c = *c_opt;
  for (std::uint64_t s = 0; s < 20; ++s)
    ASSERT_EQ(expect_msg(c, 1 + s * 5, s), Errc::ok) << "message " << s << " lost on close";
  const auto t0 = now_ns();
  auto r = c.receive(Deadline::after(5s));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.status().code(), Errc::closed) << r.status().to_string();
  EXPECT_LT(ms_since(t0), 1000.0);
}

TEST_F(ChannelTest, ConsumerSeesClosedWhenAProducerProcessLeavesNormally) {
  const auto name = unique_name("closeproc");
  auto c = must_create(name, ChannelRole::consumer, small_options());
  constexpr std::uint64_t kN = 2000;
  Child child = Child::spawn([&] {
    int rc = 0;
    {
      auto p = Channel::open(name, ChannelRole::producer, open_options());
      if (!p) return 10;
      for (std::uint64_t s = 0; s < kN && rc == 0; ++s)
        if (!send_msg(*p, 1 + s % 300, s)) rc = 11;
    }  // ~Channel: "left on purpose"
    return rc;
  });
  for (std::uint64_t s = 0; s < kN; ++s)
    ASSERT_EQ(expect_msg(c, 1 + s % 300, s), Errc::ok) << "message " << s;
  EXPECT_EQ(child.exit_code(), 0);
  auto r = c.receive(Deadline::after(5s));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.status().code(), Errc::closed) << r.status().to_string();
}

TEST_F(ChannelTest, ProducerSeesClosedWhenTheConsumerLeaves) {
  const auto name = unique_name("consleave");
  auto p = must_create(name, ChannelRole::producer, small_options());
  {
    auto c = must_open(name, ChannelRole::consumer);
    ASSERT_TRUE(send_msg(p, 10, 0).is_ok());
    ASSERT_EQ(expect_msg(c, 10, 0), Errc::ok);
  }
  EXPECT_EQ(p.check().code(), Errc::closed) << p.check().to_string();
  for (std::uint64_t s = 1; s < 64; ++s)
    ASSERT_TRUE(send_msg(p, 56, s).is_ok());
  auto l = p.loan(56, Deadline::after(5s));
  ASSERT_FALSE(l.has_value());
  EXPECT_EQ(l.status().code(), Errc::closed) << l.status().to_string();
}

// The producer dies without leaving (kill -9, or an exit that skips ~Channel).
void peer_dead_after_producer_death(bool use_kill) {
  const auto name = unique_name(use_kill ? "kill" : "exit");
  auto c = must_create(name, ChannelRole::consumer, small_options(1 << 16));
  constexpr std::uint64_t kN = 500;
  Pipe sent;
  Child child = Child::spawn([&] {
    auto p = Channel::open(name, ChannelRole::producer, open_options());
    if (!p) return 10;
    for (std::uint64_t s = 0; s < kN; ++s)
      if (!send_msg(*p, 1 + (s * 31) % 100, s)) return 11;
    sent.send();
    if (use_kill) ::pause();
    ::_exit(0);  // no destructor runs: the segment is not told
  });
  sent.close_write();
  ASSERT_EQ(sent.receive(), '!') << "child failed (exit " << child.exit_code() << ")";
  std::uint64_t gone_at = 0;
  if (use_kill) {
    child.kill(SIGKILL);
    gone_at = now_ns();
    EXPECT_EQ(child.exit_code(), -SIGKILL);
  } else {
    EXPECT_EQ(child.exit_code(), 0);
    gone_at = now_ns();
  }
  // Everything published before the death is delivered first.
  for (std::uint64_t s = 0; s < kN; ++s)
    ASSERT_EQ(expect_msg(c, 1 + (s * 31) % 100, s), Errc::ok) << "message " << s;
  auto r = c.receive(Deadline::after(10s));
  const double ms = ms_since(gone_at);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.status().code(), Errc::peer_dead) << r.status().to_string();
  EXPECT_LT(ms, 2000.0) << "death noticed late";
  EXPECT_EQ(c.check().code(), Errc::peer_dead);
}

TEST_F(ChannelTest, ConsumerSeesPeerDeadWhenTheProducerIsKilled) {
  peer_dead_after_producer_death(true);
}

TEST_F(ChannelTest, ConsumerSeesPeerDeadWhenTheProducerExitsWithoutClosing) {
  peer_dead_after_producer_death(false);
}

// A reader process keeps its mapping of a channel while the name is given
// to a new channel. receive() must report the change within ~1 s.
// mode 0: the creator's Channel is destroyed, then a new one is created.
// mode 1: the creator stays alive but the name is unlinked and re-created
//         (the seed's "ghost slab"): only the name check can tell.
void reader_notices_recreated_segment(int mode) {
  const auto name = unique_name("recreate");
  ringwire::test::AlarmWatchdog dog("segment recreated under a reader", 30);
  dog.watch_name(name);
  std::optional<Channel> p(must_create(name, ChannelRole::producer, small_options()));
  Pipe ready;
  Child child = Child::spawn([&] {
    auto c = Channel::open(name, ChannelRole::consumer, open_options());
    if (!c) return 10;
    std::uint64_t seq = 0;
    ready.send();
    for (;;) {
      auto r = c->receive(Deadline::after(10s));
      if (r) {
        if (!message_ok(r->data.data(), r->data.size(), seq++)) return 11;
        c->release();
        continue;
      }
      switch (r.status().code()) {
        case Errc::session_changed:
          return 0;
        case Errc::closed:
          return 1;
        case Errc::peer_dead:
          return 2;
        case Errc::timed_out:
          return 20;
        default:
          return 21;
      }
    }
  });
  dog.watch_pid(child.pid());
  ready.close_write();
  ASSERT_EQ(ready.receive(), '!') << "reader failed to open (exit " << child.exit_code() << ")";
  for (std::uint64_t s = 0; s < 10; ++s)
    ASSERT_TRUE(send_msg(*p, 64, s).is_ok());
  ASSERT_TRUE(ringwire::test::eventually([&] { return p->stats().used_bytes == 0; }, 5s));

  std::optional<Channel> old;
  if (mode == 0) {
    p.reset();
  } else {
    ASSERT_TRUE(p->segment().unlink().is_ok());
    old = std::move(p);
  }
  const auto t0 = now_ns();
  auto fresh = must_create(name, ChannelRole::producer, small_options());
  ASSERT_TRUE(child.wait_for(1500ms)) << "reader still waiting after 1.5 s";
  const double ms = ms_since(t0);
  const int rc = child.exit_code();
  if (mode == 0) {
    EXPECT_TRUE(rc == 0 || rc == 1) << "reader exit " << rc;
  } else {
    EXPECT_EQ(rc, 0) << "reader exit " << rc << " (0 = session_changed)";
  }
  EXPECT_LT(ms, 1000.0);
  // The old handle going away must not remove the new channel's name.
  old.reset();
  EXPECT_TRUE(ringwire::test::shm_name_exists(name)) << "the old owner unlinked the new channel";
  auto c2 = must_open(name, ChannelRole::consumer);
  ASSERT_TRUE(send_msg(fresh, 12, 0).is_ok());
  EXPECT_EQ(expect_msg(c2, 12, 0), Errc::ok);
}

TEST_F(ChannelTest, ReaderNoticesAChannelRecreatedAfterItsCreatorClosed) {
  reader_notices_recreated_segment(0);
}

TEST_F(ChannelTest, ReaderNoticesAChannelRecreatedUnderALiveCreator) {
  reader_notices_recreated_segment(1);
}

// ---- wait strategies between two processes ---------------------------------------------------

class ChannelStrategyTest : public ringwire::test::ShmTest,
                            public ::testing::WithParamInterface<WaitStrategy> {
 protected:
  void SetUp() override { ringwire::shm::install_cleanup_handlers(); }
};

TEST_P(ChannelStrategyTest, MovesVerifiedMessagesBetweenTwoProcesses) {
  const auto name = unique_name("strategy");
  ringwire::test::AlarmWatchdog dog("wait strategy test", 60);
  dog.watch_name(name);
  ChannelOptions o = small_options(1 << 14);
  o.wait = GetParam();
  o.spin_rounds = 256;
  auto c = must_create(name, ChannelRole::consumer, o);
  ASSERT_EQ(c.wait_strategy(), GetParam());
  const std::uint64_t n = ringwire::test::tsan_scaled(200'000, 5'000);
  const std::uint64_t max = c.max_message();
  Child child = Child::spawn([&] {
    auto p = Channel::open(name, ChannelRole::producer, open_options());
    if (!p) return 10;
    if (p->wait_strategy() != GetParam()) return 12;
    ringwire::test::SizeStream sizes(7, max);
    for (std::uint64_t s = 0; s < n; ++s) {
      // Pause now and then so the consumer runs dry and has to wait.
      if (s % 20'000 == 10'000) std::this_thread::sleep_for(2ms);
      if (!send_msg(*p, sizes.next(), s)) return 11;
    }
    return 0;
  });
  dog.watch_pid(child.pid());
  ringwire::test::SizeStream sizes(7, max);
  const auto t0 = now_ns();
  for (std::uint64_t s = 0; s < n; ++s) {
    const std::size_t want = sizes.next();
    const Errc e = expect_msg(c, want, s, Deadline::after(10s));
    ASSERT_EQ(e, Errc::ok) << "message " << s << ": " << errc_name(e) << " (child exit "
                           << (e == Errc::peer_dead ? child.exit_code() : 0) << ")";
    if (HasFailure()) return;
  }
  EXPECT_EQ(child.exit_code(), 0);
  std::printf("[ channel  ] %s: %llu messages in %.0f ms, wakeups %llu\n",
              ringwire::ipc::wait_strategy_name(GetParam()), static_cast<unsigned long long>(n),
              ms_since(t0), static_cast<unsigned long long>(c.stats().wakeups));
  if (GetParam() != WaitStrategy::spin_futex) {
    EXPECT_EQ(c.stats().wakeups, 0u) << "a non-futex strategy issued FUTEX_WAKE";
  }
}

INSTANTIATE_TEST_SUITE_P(AllStrategies, ChannelStrategyTest,
                         ::testing::Values(WaitStrategy::spin, WaitStrategy::spin_yield,
                                           WaitStrategy::spin_futex),
                         [](const auto& param_info) {
                           return std::string(ringwire::ipc::wait_strategy_name(param_info.param));
                         });

// With spin_futex and both sides busy, a publish / release wakes the peer
// only if it is asleep: wake-ups must not be one per message. The consumer
// never waits long enough to sleep (huge spin budget on both sides), so the
// only legitimate wake-ups come from rare descheduling; we allow 1%.
TEST_F(ChannelTest, FutexWakeupsAreNotOnePerMessageWhenBothSidesAreBusy) {
  const auto name = unique_name("wakeups");
  ringwire::test::AlarmWatchdog dog("futex wake-up test", 60);
  dog.watch_name(name);
  ChannelOptions o = small_options(1 << 16);
  o.wait = WaitStrategy::spin_futex;
  o.spin_rounds = 1u << 24;
  auto c = must_create(name, ChannelRole::consumer, o);
  const std::uint64_t n = ringwire::test::tsan_scaled(200'000, 10'000);
  Child child = Child::spawn([&] {
    ChannelOpenOptions oo = open_options();
    oo.spin_rounds = 1u << 24;
    auto p = Channel::open(name, ChannelRole::producer, oo);
    if (!p) return 10;
    for (std::uint64_t s = 0; s < n; ++s)
      if (!send_msg(*p, 24, s)) return 11;
    return 0;
  });
  dog.watch_pid(child.pid());
  for (std::uint64_t s = 0; s < n; ++s) {
    ASSERT_EQ(expect_msg(c, 24, s, Deadline::after(10s)), Errc::ok) << "message " << s;
    if (HasFailure()) return;
  }
  EXPECT_EQ(child.exit_code(), 0);
  const auto st = c.stats();
  std::printf("[ channel  ] spin_futex, busy pair: %llu messages, %llu wake-ups\n",
              static_cast<unsigned long long>(st.messages),
              static_cast<unsigned long long>(st.wakeups));
  EXPECT_EQ(st.messages, n);
  EXPECT_LE(st.wakeups, n / 100) << "wake-ups issued although nobody slept";
}

// ---- behaviour that the API promises and the implementation breaks ---------------------------

// receive() documents timed_out / peer_dead / closed / corrupted; it must
// not hand back would_block while its deadline is still far away. A producer
// that abandons a loan which needed the wrap padding and then publishes (a
// flush) publishes *only* the padding record: the waiting consumer is woken,
// readable() is true, read() skips the padding and finds nothing.
TEST_F(ChannelTest, ReceiveKeepsWaitingWhenOnlyAPaddingRecordIsPublished) {
  const auto name = unique_name("padonly");
  ChannelOptions o = small_options(256);  // max message 120
  auto p = must_create(name, ChannelRole::producer, o);
  auto c = must_open(name, ChannelRole::consumer);
  for (std::uint64_t s = 0; s < 3; ++s) {  // three 64-byte records: offset 192
    ASSERT_TRUE(send_msg(p, 56, s).is_ok());
    ASSERT_EQ(expect_msg(c, 56, s), Errc::ok);
  }
  Errc got = Errc::ok;
  std::string why;
  double at_ms = 0;
  std::size_t got_size = 0;
  bool intact = false;
  std::thread consumer([&] {
    const auto t0 = now_ns();
    auto r = c.receive(Deadline::after(3s));
    at_ms = ms_since(t0);
    if (!r) {
      got = r.status().code();
      why = r.status().to_string();
      return;
    }
    got_size = r->data.size();
    intact = message_ok(r->data.data(), r->data.size(), 4);
    c.release();
  });
  std::this_thread::sleep_for(100ms);  // the consumer is waiting now
  {
    auto abandoned = p.loan(100, Deadline::after(1s));  // needs the padding record
    ASSERT_TRUE(abandoned.has_value()) << abandoned.status().to_string();
  }
  p.publish();  // publishes the padding record only
  std::this_thread::sleep_for(100ms);
  ASSERT_TRUE(send_msg(p, 30, 4).is_ok());
  consumer.join();
  EXPECT_EQ(got, Errc::ok) << "receive() returned after " << at_ms << " ms: " << why;
  EXPECT_EQ(got_size, 30u);
  EXPECT_TRUE(intact);
}

// Channel::open reads the creator's max message (element_size) with
// inspect_segment() *before* waiting for the segment to be ready. Opened
// between the creator's shm_open and its header write, it expects
// element_size 0 and then refuses the finished segment with
// geometry_mismatch, although ChannelOpenOptions::wait_ready_ns promises to
// wait for a half-built segment. We stage exactly that: the name exists
// with 0 bytes (creation step 1) while open() runs, then the creation
// finishes (a complete channel image, magic last).
TEST_F(ChannelTest, OpenWaitsForAChannelThatIsStillBeingCreated) {
  const auto name = unique_name("halfbuilt");
  auto os_name_r = ringwire::shm::os_name_for(name);
  ASSERT_TRUE(os_name_r.has_value());
  const std::string os_name = os_name_r.value();
  const int fd = ::shm_open(os_name.c_str(), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  ringwire::test::NameGuard guard(name);
  Errc got = Errc::invalid_argument;
  std::string why;
  std::thread opener([&] {
    ChannelOpenOptions oo = open_options();
    oo.wait_ready_ns = 5'000'000'000ull;
    auto r = Channel::open(name, ChannelRole::consumer, oo);
    got = r ? Errc::ok : r.status().code();
    why = r ? "" : r.status().to_string();
  });
  std::this_thread::sleep_for(100ms);  // open() is waiting for the segment now
  {
    auto model = must_create(unique_name("model"), ChannelRole::producer, small_options());
    const auto& h = model.segment().header();
    const std::size_t total = h.total_size;
    ASSERT_EQ(::ftruncate(fd, static_cast<off_t>(total)), 0);
    void* dst = ::mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ASSERT_NE(dst, MAP_FAILED);
    const auto* src = reinterpret_cast<const std::byte*>(&h);
    std::memcpy(static_cast<std::byte*>(dst) + 8, src + 8, total - 8);
    __atomic_store_n(static_cast<std::uint64_t*>(dst), h.magic, __ATOMIC_RELEASE);
    opener.join();
    ::munmap(dst, total);
  }
  ::close(fd);
  EXPECT_EQ(got, Errc::ok) << why;
}

// Moving a Channel over another drops the old connection; the old peer must
// hear about it like after ~Channel (closed), not keep seeing a live peer.
TEST_F(ChannelTest, MoveAssignmentLeavesTheOldChannelLikeTheDestructor) {
  const auto x = unique_name("movex");
  const auto y = unique_name("movey");
  auto px = must_create(x, ChannelRole::producer, small_options());
  auto py = must_create(y, ChannelRole::producer, small_options());
  auto c = must_open(x, ChannelRole::consumer);
  ASSERT_TRUE(px.check().is_ok());
  c = must_open(y, ChannelRole::consumer);  // c no longer consumes x
  EXPECT_EQ(px.check().code(), Errc::closed)
      << "x's producer still sees its consumer: " << px.check().to_string();
  // And x's consumer role is free again.
  auto cx = Channel::open(x, ChannelRole::consumer, open_options());
  EXPECT_TRUE(cx.has_value()) << cx.status().to_string();
}

// A producer that committed several records without publishing and then
// needs to wait for room can only get it from the consumer, which cannot see
// unpublished records: loan() must publish them before it waits, or it
// blocks until the deadline (forever with Deadline::never()).
TEST_F(ChannelTest, LoanThatMustWaitPublishesPendingCommitsFirst) {
  const auto name = unique_name("pending");
  auto p = must_create(name, ChannelRole::producer, small_options(1024));
  auto c = must_open(name, ChannelRole::consumer);
  std::uint64_t committed = 0;
  while (p.ring().writable(56)) {
    auto span = p.loan(56, Deadline::after(1s));
    ASSERT_TRUE(span.has_value());
    fill_message(span->data(), 56, committed);
    p.commit(56, ringwire::test::msg_type(committed));
    ++committed;
  }
  ASSERT_EQ(committed, 1024u / 64u);
  std::atomic<std::uint64_t> target{UINT64_MAX};
  std::atomic<std::uint64_t> received{0};
  std::thread consumer([&] {
    const auto give_up = now_ns() + 5'000'000'000ull;
    while (received.load() < target.load() && now_ns() < give_up) {
      auto r = c.receive(Deadline::after(50ms));
      if (!r) continue;
      const std::uint64_t s = received.load();
      if (r->data.size() == 56 && message_ok(r->data.data(), 56, s)) received.store(s + 1);
      c.release();
    }
  });
  const auto t0 = now_ns();
  auto span = p.loan(56, Deadline::after(1s));
  const double ms = ms_since(t0);
  const bool loaned = span.has_value();
  const std::string why = loaned ? "" : span.status().to_string();
  if (loaned) {
    fill_message(span->data(), 56, committed);
    p.commit(56, ringwire::test::msg_type(committed));
  }
  p.publish();
  target.store(committed + (loaned ? 1 : 0));
  consumer.join();
  EXPECT_TRUE(loaned) << "loan() waited " << ms
                      << " ms for room only its own publish could make: " << why;
  EXPECT_EQ(received.load(), target.load());
}

}  // namespace
