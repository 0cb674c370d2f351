// Mailbox across real processes: several producer processes, one consumer,
// messages of random sizes, every byte verified (per-producer sequence +
// checksum); one producer killed with SIGKILL mid-stream, its lane reclaimed
// and reused; open errors. Nothing may be left in /dev/shm.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <map>
#include <vector>

#include "common/test_support.hpp"
#include "ringwire/ipc/channel.hpp"
#include "ringwire/ipc/mailbox.hpp"

namespace {

using namespace std::chrono_literals;
using ringwire::core::Deadline;
using ringwire::core::Errc;
using ringwire::ipc::Mailbox;
using ringwire::ipc::MailboxOptions;
using ringwire::ipc::MailboxProducer;
namespace test = ringwire::test;

// Payload: [producer id : 4][seq : 8][checksum : 8][filler ...]. Size and
// filler follow from (producer, seq), so the consumer can recompute both.
constexpr std::size_t kHeader = 20;

std::size_t size_for(std::uint32_t producer, std::uint64_t seq, std::size_t max) {
  const std::uint64_t r = test::mix64(seq * 0x9e3779b97f4a7c15ull + producer);
  // Mostly small, now and then up to the maximum, so lanes wrap often.
  const std::size_t span = (r & 15) == 0 ? max - kHeader : 200;
  return kHeader + static_cast<std::size_t>((r >> 8) % (span + 1));
}

std::uint64_t fill_checksum(std::byte* p, std::size_t n, std::uint64_t seed) {
  std::uint64_t h = 0xcbf29ce484222325ull ^ seed;
  for (std::size_t i = kHeader; i < n; ++i) {
    p[i] = static_cast<std::byte>(test::mix64(seed + i) & 0xff);
    h = (h ^ static_cast<std::uint64_t>(p[i])) * 0x100000001b3ull;
  }
  return h;
}

std::uint64_t verify_checksum(const std::byte* p, std::size_t n, std::uint64_t seed) {
  std::uint64_t h = 0xcbf29ce484222325ull ^ seed;
  for (std::size_t i = kHeader; i < n; ++i) {
    if (p[i] != static_cast<std::byte>(test::mix64(seed + i) & 0xff)) return ~h;
    h = (h ^ static_cast<std::uint64_t>(p[i])) * 0x100000001b3ull;
  }
  return h;
}

// Runs in a child: opens the mailbox, sends `count` messages (forever when
// count is 0), publishing in batches of `batch`.
int produce(const std::string& name, std::uint32_t id, std::uint64_t count, int batch) {
  auto p = MailboxProducer::open(name);
  if (!p) return 10;
  const std::size_t max = p->max_message();
  for (std::uint64_t seq = 0; count == 0 || seq < count; ++seq) {
    const std::size_t n = size_for(id, seq, max);
    auto span = p->loan(n, Deadline::after(10s));
    if (!span) return 11;
    std::byte* d = span->data();
    std::memcpy(d, &id, 4);
    std::memcpy(d + 4, &seq, 8);
    const std::uint64_t sum = fill_checksum(d, n, seq * 131 + id);
    std::memcpy(d + 12, &sum, 8);
    p->commit(n, static_cast<std::uint16_t>(id));
    if (static_cast<int>(seq % static_cast<std::uint64_t>(batch)) == batch - 1) p->publish();
  }
  p->publish();
  return 0;
}

struct Tally {
  std::map<std::uint32_t, std::uint64_t> next;  // next expected seq per producer
  std::uint64_t delivered = 0, bad = 0;
};

// Checks one message; false (and bad++) on any loss, duplicate, reorder or
// corrupt byte.
bool check(const ringwire::ipc::MailboxMessage& m, Tally& t, std::size_t max) {
  const auto& d = m.record.data;
  if (d.size() < kHeader) return ++t.bad, false;
  std::uint32_t id;
  std::uint64_t seq, sum;
  std::memcpy(&id, d.data(), 4);
  std::memcpy(&seq, d.data() + 4, 8);
  std::memcpy(&sum, d.data() + 12, 8);
  const bool ok = m.record.type == id && seq == t.next[id] && d.size() == size_for(id, seq, max) &&
                  verify_checksum(d.data(), d.size(), seq * 131 + id) == sum;
  if (!ok) return ++t.bad, false;
  ++t.next[id];
  ++t.delivered;
  return true;
}

TEST(MailboxProcesses, ProducersDeliverEveryByteInOrderAndAKilledProducersLaneIsReused) {
  test::NameGuard guard(test::unique_name("mbox"));
  MailboxOptions o;
  o.lanes = 4;
  o.lane_capacity = 1 << 15;
  o.liveness_interval_ns = 5'000'000;
  auto mb = Mailbox::create(guard.name(), o);
  ASSERT_TRUE(mb) << mb.status().to_string();
  const std::size_t max = mb->max_message();

  const std::uint64_t per_producer = test::stress_messages(1'000'000);
  std::vector<test::Child> children;
  for (std::uint32_t id = 1; id <= 3; ++id) {
    children.push_back(test::Child::spawn(
        [&, id] { return produce(guard.name(), id, per_producer, id == 2 ? 16 : 1); }));
  }
  // Producer 9 never stops; it is killed after a while.
  test::Child victim = test::Child::spawn([&] { return produce(guard.name(), 9, 0, 4); });

  Tally t;
  bool killed = false;
  const auto give_up = ringwire::core::now_ns() + 120'000'000'000ull;
  auto done = [&] {
    for (std::uint32_t id = 1; id <= 3; ++id)
      if (t.next[id] != per_producer) return false;
    return true;
  };
  while (!done() && ringwire::core::now_ns() < give_up) {
    auto m = mb->try_receive();
    if (!m && m.status().code() == Errc::would_block) {
      mb->release();  // before waiting: producers may need the space we hold
      m = mb->receive(Deadline::after(5s));
    }
    ASSERT_TRUE(m) << m.status().to_string() << " after " << t.delivered << " messages";
    ASSERT_TRUE(check(*m, t, max)) << "bad message from lane " << m->lane;
    if (t.delivered % 64 == 0) mb->release();
    if (!killed && t.next[9] >= 20'000) {
      victim.kill();
      killed = true;
    }
  }
  mb->release();
  ASSERT_TRUE(done()) << "timed out";
  ASSERT_TRUE(killed) << "the victim never got going";
  for (auto& c : children)
    EXPECT_EQ(c.exit_code(), 0);
  EXPECT_EQ(victim.exit_code(), -SIGKILL);
  // Whatever the victim published before it died is delivered intact, then
  // nothing more: the wait reports empty (timed_out).
  for (;;) {
    auto m = mb->receive(Deadline::after(300ms));
    if (!m) {
      EXPECT_EQ(m.status().code(), Errc::timed_out) << m.status().to_string();
      break;
    }
    ASSERT_TRUE(check(*m, t, max));
    mb->release();
  }
  EXPECT_EQ(t.bad, 0u);
  std::printf("[ mailbox  ] %llu messages verified (victim sent %llu before SIGKILL)\n",
              static_cast<unsigned long long>(t.delivered),
              static_cast<unsigned long long>(t.next[9]));

  // Every producer is gone and drained: all four lanes come back, and four
  // new producers can claim them (a fifth is refused).
  (void)mb->reclaim_lanes();
  for (const auto& l : mb->lane_stats())
    EXPECT_EQ(l.owner_pid, 0) << "lane still owned after its producer exited";
  std::vector<MailboxProducer> again;
  for (int i = 0; i < 4; ++i) {
    auto p = MailboxProducer::open(guard.name());
    ASSERT_TRUE(p) << p.status().to_string();
    again.push_back(std::move(*p));
  }
  auto fifth = MailboxProducer::open(guard.name());
  ASSERT_FALSE(fifth);
  EXPECT_EQ(fifth.status().code(), Errc::would_block);
  // A reused lane resumes where its old owner stopped.
  const std::byte msg[kHeader + 4] = {};
  ASSERT_TRUE(again[0].send(msg, 7, Deadline::after(1s)));
  auto m = mb->receive(Deadline::after(1s));
  ASSERT_TRUE(m) << m.status().to_string();
  EXPECT_EQ(m->record.type, 7);
  EXPECT_EQ(m->record.data.size(), sizeof msg);
  mb->release();
}

TEST(MailboxProcesses, OpenErrorsAreClear) {
  auto missing = MailboxProducer::open(test::unique_name("nope"));
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.status().code(), Errc::not_found);

  test::NameGuard guard(test::unique_name("mbkind"));
  auto ch = ringwire::ipc::Channel::create(guard.name(), ringwire::ipc::ChannelRole::consumer);
  ASSERT_TRUE(ch) << ch.status().to_string();
  auto wrong = MailboxProducer::open(guard.name());
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.status().code(), Errc::kind_mismatch) << wrong.status().to_string();

  MailboxOptions bad;
  bad.lanes = 0;
  EXPECT_EQ(Mailbox::create(test::unique_name("mbbad"), bad).status().code(),
            Errc::invalid_argument);
  bad.lanes = 2;
  bad.lane_capacity = 1000;
  EXPECT_EQ(Mailbox::create(test::unique_name("mbbad"), bad).status().code(),
            Errc::invalid_argument);
}

TEST(MailboxProcesses, ProducerSeesTheConsumerDie) {
  test::NameGuard guard(test::unique_name("mbdead"));
  test::Pipe ready;
  test::Child consumer = test::Child::spawn([&] {
    MailboxOptions o;
    o.lanes = 1;
    o.lane_capacity = 1 << 12;
    auto mb = Mailbox::create(guard.name(), o);
    if (!mb) return 1;
    mb->segment().release_ownership();  // the parent's guard removes the name
    ready.send();
    for (;;)
      ::pause();
  });
  ASSERT_EQ(ready.receive(), '!');
  auto p = MailboxProducer::open(guard.name());
  ASSERT_TRUE(p) << p.status().to_string();
  consumer.kill();
  (void)consumer.wait();
  // Fill the lane; the next loan waits, and must end with peer_dead quickly.
  const std::byte msg[100] = {};
  ringwire::core::Status st;
  const auto t0 = ringwire::core::now_ns();
  for (int i = 0; i < 1000 && st; ++i)
    st = p->send(msg, 1, Deadline::after(10s));
  const double waited_ms = static_cast<double>(ringwire::core::now_ns() - t0) / 1e6;
  ASSERT_FALSE(st);
  EXPECT_EQ(st.code(), Errc::peer_dead) << st.to_string();
  EXPECT_LT(waited_ms, 2000.0);
}

TEST(MailboxProcesses, NothingLeftInDevShm) {
  EXPECT_EQ(test::join(test::remove_our_leftovers()), "");
}

}  // namespace
