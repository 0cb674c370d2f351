// Channel between two processes: the parent creates the channel and
// consumes, a forked child opens it by name and produces.
//
// 1. Random sizes: 10,000,000 messages by default (RINGWIRE_STRESS_MESSAGES
//    overrides; RINGWIRE_STRESS_SCALE=tsan divides by 20), sizes 1..max
//    from a seeded stream both sides replay (mostly small, every size up to
//    max_message occurs), each carrying its sequence number and a checksum;
//    the consumer checks the size, the type and every byte against the
//    sequence number it expects next, so loss, duplication and reordering
//    all fail. A 64 KiB ring wraps ~10,000 times. Both sides alternate
//    between one-at-a-time (loan/commit/publish, receive/release) and
//    batches (many commits per publish, many receives per release).
// 2. The seed's scenario: 100,000 frames of exactly 4096 bytes (5,000
//    under TSan), zero drops, every frame checked.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

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
using ringwire::ipc::FullPolicy;
using ringwire::test::Child;
using ringwire::test::fill_message;
using ringwire::test::message_ok;
using ringwire::test::msg_type;
using ringwire::test::SizeStream;

constexpr std::uint64_t kChunk = 100'000;  // messages per mode before switching
constexpr std::uint32_t kBatch = 32;       // commits per publish / receives per release
constexpr std::uint64_t kLivenessNs = 5'000'000;

ChannelOpenOptions open_options() {
  ChannelOpenOptions o;
  o.liveness_interval_ns = kLivenessNs;
  return o;
}

// Child: produces `n` messages with sizes from SizeStream(seed, max, mix).
// Exit codes: 0 done, 10+ setup, 20+ run failures.
int produce(const std::string& name, std::uint64_t n, std::uint64_t seed, SizeStream::Mix mix) {
  auto p = Channel::open(name, ChannelRole::producer, open_options());
  if (!p) return 10;
  SizeStream sizes(seed, p->max_message(), mix);
  std::uint32_t pending = 0;
  for (std::uint64_t seq = 0; seq < n; ++seq) {
    const bool batch = (seq / kChunk) % 2 == 1;
    const std::size_t sz = sizes.next();
    // Commits stuck behind an unpublished batch cannot make room: publish
    // them before a loan that may have to wait (loan() does so too; this
    // keeps the stress test independent of that).
    if (pending > 0 && !p->ring().writable(sz)) {
      p->publish();
      pending = 0;
    }
    auto span = p->loan(sz, Deadline::after(20s));
    if (!span) return 20 + static_cast<int>(span.status().code());
    fill_message(span->data(), sz, seq);
    p->commit(sz, msg_type(seq));
    if (!batch || ++pending == kBatch) {
      p->publish();
      pending = 0;
    }
  }
  p->publish();
  return 0;  // ~Channel: the consumer sees "closed" after the last message
}

struct ConsumeResult {
  std::uint64_t received = 0;
  std::uint64_t bytes = 0;
  std::string error;
};

// Parent: consumes and verifies `n` messages.
ConsumeResult consume(Channel& c, std::uint64_t n, std::uint64_t seed, SizeStream::Mix mix) {
  ConsumeResult res;
  SizeStream sizes(seed, c.max_message(), mix);
  std::uint32_t held = 0;
  auto verify = [&](const ringwire::ipc::RecordView& v) {
    const std::uint64_t seq = res.received;
    const std::size_t want = sizes.next();
    if (v.data.size() != want || v.type != msg_type(seq) || !message_ok(v.data.data(), want, seq)) {
      res.error = ringwire::test::describe_mismatch(v.data.data(), v.data.size(), seq, want) +
                  " type " + std::to_string(v.type) + " (expected " +
                  std::to_string(msg_type(seq)) + ")";
      return false;
    }
    ++res.received;
    res.bytes += want;
    return true;
  };
  while (res.received < n) {
    const bool batch = (res.received / (kChunk + 7919)) % 2 == 1;  // out of phase with the child
    if (batch) {
      auto r = c.try_receive();
      if (r) {
        if (!verify(*r)) return res;
        if (++held == kBatch) {
          c.release();
          held = 0;
        }
        continue;
      }
      if (r.status().code() != Errc::would_block) {
        res.error = "try_receive: " + r.status().to_string();
        return res;
      }
      // Give back what we hold before waiting: the producer may need it.
      c.release();
      held = 0;
    }
    auto r = c.receive(Deadline::after(20s));
    if (!r) {
      res.error = "receive after " + std::to_string(res.received) + ": " + r.status().to_string();
      return res;
    }
    if (!verify(*r)) return res;
    if (batch) {
      ++held;
    } else {
      c.release();
    }
  }
  c.release();
  return res;
}

class ChannelProcessesStress : public ringwire::test::ShmTest {
 protected:
  void SetUp() override { ringwire::shm::install_cleanup_handlers(); }
};

TEST_F(ChannelProcessesStress, RandomSizesSequenceAndEveryByteVerified) {
  const std::uint64_t n = ringwire::test::channel_messages(10'000'000, 10'000);
  const std::uint64_t seed = 0x5eed0000ull + static_cast<std::uint64_t>(::getpid());
  const auto name = ringwire::test::unique_name("chanstress");
  ringwire::test::AlarmWatchdog dog("channel stress, random sizes", 240);
  dog.watch_name(name);
  ChannelOptions o;
  o.capacity = 1 << 16;
  o.liveness_interval_ns = kLivenessNs;
  auto created = Channel::create(name, ChannelRole::consumer, o);
  ASSERT_TRUE(created.has_value()) << created.status().to_string();
  Channel& c = created.value();
  ASSERT_EQ(c.max_message(), (1u << 15) - 8u);

  const auto t0 = now_ns();
  Child child = Child::spawn([&] { return produce(name, n, seed, SizeStream::Mix::small); });
  dog.watch_pid(child.pid());
  const ConsumeResult res = consume(c, n, seed, SizeStream::Mix::small);
  const double s = ringwire::test::seconds_since(t0);
  const auto st = c.stats();
  std::printf(
      "[ stress   ] channel, 2 processes: %llu messages (%llu payload bytes, %.1f wraps of "
      "64 KiB) in %.2f s (%.2f M msg/s), wakeups %llu, seed %llu\n",
      static_cast<unsigned long long>(res.received), static_cast<unsigned long long>(res.bytes),
      static_cast<double>(c.ring().control().tail.load()) / 65536.0, s,
      static_cast<double>(res.received) / s / 1e6, static_cast<unsigned long long>(st.wakeups),
      static_cast<unsigned long long>(seed));
  ASSERT_TRUE(res.error.empty()) << res.error << " (after " << res.received << " verified)";
  EXPECT_EQ(res.received, n);
  ASSERT_TRUE(child.wait_for(30s)) << "producer did not finish";
  EXPECT_EQ(child.exit_code(), 0);
  EXPECT_EQ(st.messages, n);
  EXPECT_EQ(st.drops, 0u);
  EXPECT_EQ(st.used_bytes, 0u);
  // Nothing after the last message: the producer left on purpose.
  auto after = c.receive(Deadline::after(5s));
  ASSERT_FALSE(after.has_value()) << "an extra message arrived";
  EXPECT_EQ(after.status().code(), Errc::closed) << after.status().to_string();
  EXPECT_LT(s, 120.0) << "stress run too slow";
}

// The seed's scenario: 4096-byte frames, block policy, zero drops.
TEST_F(ChannelProcessesStress, HundredThousandFramesOf4096Bytes) {
  const std::uint64_t n = ringwire::test::tsan_scaled(100'000, 2'000);
  const auto name = ringwire::test::unique_name("frames");
  ringwire::test::AlarmWatchdog dog("channel stress, 4096-byte frames", 120);
  dog.watch_name(name);
  ChannelOptions o;
  o.capacity = 1 << 20;
  o.max_message = 4096;
  o.full = FullPolicy::block;
  o.liveness_interval_ns = kLivenessNs;
  auto created = Channel::create(name, ChannelRole::consumer, o);
  ASSERT_TRUE(created.has_value()) << created.status().to_string();
  Channel& c = created.value();
  ASSERT_EQ(c.max_message(), 4096u);

  const auto t0 = now_ns();
  Child child = Child::spawn([&] {
    auto p = Channel::open(name, ChannelRole::producer, open_options());
    if (!p) return 10;
    for (std::uint64_t seq = 0; seq < n; ++seq) {
      auto span = p->loan(4096, Deadline::after(20s));
      if (!span) return 20 + static_cast<int>(span.status().code());
      fill_message(span->data(), 4096, seq);
      p->commit(4096, msg_type(seq));
      p->publish();
    }
    return 0;
  });
  dog.watch_pid(child.pid());
  std::uint64_t frames = 0;
  std::string error;
  while (frames < n && error.empty()) {
    auto r = c.receive(Deadline::after(20s));
    if (!r) {
      error = "receive: " + r.status().to_string();
      break;
    }
    if (r->data.size() != 4096 || !message_ok(r->data.data(), 4096, frames)) {
      error = ringwire::test::describe_mismatch(r->data.data(), r->data.size(), frames, 4096);
      break;
    }
    ++frames;
    c.release();
  }
  const double s = ringwire::test::seconds_since(t0);
  const auto st = c.stats();
  std::printf(
      "[ stress   ] channel, 4096-byte frames: %llu of %llu received and verified, %llu drops, "
      "%.2f s (%.0f MB/s)\n",
      static_cast<unsigned long long>(frames), static_cast<unsigned long long>(n),
      static_cast<unsigned long long>(st.drops), s, static_cast<double>(frames) * 4096.0 / s / 1e6);
  ASSERT_TRUE(error.empty()) << error << " after " << frames << " frames";
  EXPECT_EQ(frames, n);
  EXPECT_EQ(st.drops, 0u);
  EXPECT_EQ(st.messages, n);
  EXPECT_EQ(st.bytes, n * 4096);
  ASSERT_TRUE(child.wait_for(30s));
  EXPECT_EQ(child.exit_code(), 0);
}

}  // namespace
