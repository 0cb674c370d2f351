// ByteRing against a hostile peer that writes random bytes into the control
// block and the data area while the consumer reads.
//
// Whatever the bytes say, read() may only return ok / empty / corrupted; an
// ok record's span must lie inside the data area (checked against the
// region's bounds, and every byte of it is touched so ASan sees any stray
// read), with 1 <= size <= max_message and a type other than kPadType;
// corrupted is sticky; and neither side writes outside the region (canary
// bytes around it, plus ASan).
//
// 1. A hostile loop (deterministic, seeded; fine under TSan): a legitimate
//    producer, random scribbles (tail, head, headers, payload, geometry
//    fields, anything in the control block), and reads, interleaved; a new
//    ring when the consumer or the producer reports corruption.
// 2. A hostile thread scribbling concurrently while the consumer reads
//    (skipped under TSan, which would rightly call the scribbler's writes a
//    data race: that is the point of the test, a peer we cannot trust).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "common/channel_support.hpp"
#include "ringwire/core/cpu.hpp"
#include "ringwire/ipc/byte_ring.hpp"

namespace {

using ringwire::ByteRing;
using ringwire::ipc::ByteRingControl;
using ringwire::ipc::kPadType;
using ringwire::ipc::ReadStatus;
using ringwire::ipc::RecordHeader;
using ringwire::ipc::RecordView;

constexpr std::size_t kGuard = 256;
constexpr std::uint8_t kCanary = 0xA5;

// A region with canary bytes on both sides, 128-byte aligned.
class GuardedRegion {
 public:
  explicit GuardedRegion(std::uint64_t capacity)
      : cap_(capacity),
        size_(ByteRing::bytes_for(capacity)),
        storage_(
            static_cast<std::byte*>(::operator new (size_ + 2 * kGuard, std::align_val_t{128}))) {
    std::memset(storage_, kCanary, size_ + 2 * kGuard);
  }
  ~GuardedRegion() { ::operator delete (storage_, std::align_val_t{128}); }
  GuardedRegion(const GuardedRegion&) = delete;
  GuardedRegion& operator=(const GuardedRegion&) = delete;

  std::byte* base() const { return storage_ + kGuard; }
  std::size_t size() const { return size_; }
  std::uint64_t capacity() const { return cap_; }
  std::byte* data() const { return base() + ByteRing::data_offset(); }
  std::byte* data_end() const { return data() + cap_; }
  ByteRingControl& control() const { return *reinterpret_cast<ByteRingControl*>(base()); }

  bool inside(const std::byte* p, std::size_t n) const {
    return p >= data() + sizeof(RecordHeader) && p <= data_end() &&
           n <= static_cast<std::size_t>(data_end() - p);
  }
  // Offset of the first damaged canary byte, or -1.
  long damaged_canary() const {
    for (std::size_t i = 0; i < kGuard; ++i) {
      if (std::to_integer<std::uint8_t>(storage_[i]) != kCanary) return static_cast<long>(i);
      if (std::to_integer<std::uint8_t>(storage_[kGuard + size_ + i]) != kCanary)
        return static_cast<long>(kGuard + size_ + i);
    }
    return -1;
  }

 private:
  std::uint64_t cap_;
  std::size_t size_;
  std::byte* storage_;
};

// Reads every byte of an ok record (so a stray span trips ASan) and checks
// what read() promised. Returns an error text, empty when fine.
std::string check_view(const GuardedRegion& g, const RecordView& v, std::uint64_t max,
                       volatile std::uint64_t& sink) {
  if (v.data.empty()) return "ok with an empty span";
  if (!g.inside(v.data.data(), v.data.size())) return "span outside the data area";
  if (v.data.size() > max) return "span larger than max_message";
  if (v.type == kPadType) return "padding record handed out";
  std::uint64_t s = 0;
  for (std::byte b : v.data)
    s += std::to_integer<std::uint64_t>(b);
  sink = sink + s;
  return {};
}

struct Tally {
  std::uint64_t ok = 0, empty = 0, corrupted = 0, producer_corrupted = 0, rings = 0, scribbles = 0;
};

// Scribbles once: a random, or plausible-but-wrong, value somewhere.
void scribble(GuardedRegion& g, std::mt19937_64& rng) {
  auto& c = g.control();
  const std::uint64_t cap = g.capacity();
  const std::uint64_t r = rng();
  const std::uint64_t plausible = [&] {
    // Near the current indices: +- a few records, sometimes unaligned.
    const std::uint64_t t = c.tail.load(std::memory_order_relaxed);
    const std::uint64_t step = (rng() % 8) * 8 + ((rng() % 4 == 0) ? rng() % 8 : 0);
    switch (rng() % 4) {
      case 0:
        return t + step;
      case 1:
        return t - step;
      case 2:
        return t + cap + step;
      default:
        return c.head.load(std::memory_order_relaxed) + (rng() % (cap + 64));
    }
  }();
  switch (r % 10) {
    case 0:
    case 1:
      c.tail.store(plausible, std::memory_order_relaxed);
      break;
    case 2:
      c.tail.store(rng(), std::memory_order_relaxed);
      break;
    case 3:
      c.head.store(plausible, std::memory_order_relaxed);
      break;
    case 4: {  // a record header at an aligned offset: hostile length / type
      RecordHeader h;
      h.length = static_cast<std::uint32_t>(rng() % 3 == 0 ? rng() : rng() % (cap + 16));
      h.type = rng() % 3 == 0 ? kPadType : static_cast<std::uint16_t>(rng());
      h.flags = static_cast<std::uint16_t>(rng());
      std::memcpy(g.data() + (rng() % (cap / 8)) * 8, &h, sizeof h);
      break;
    }
    case 5:
    case 6: {  // random bytes anywhere in the data area
      const std::size_t n = 1 + rng() % 16;
      const std::size_t off = rng() % (cap - n + 1);
      for (std::size_t i = 0; i < n; ++i)
        g.data()[off + i] = static_cast<std::byte>(rng());
      break;
    }
    case 7: {  // random bytes anywhere in the control block (geometry, wait words...)
      const std::size_t off = rng() % sizeof(ByteRingControl);
      g.base()[off] = static_cast<std::byte>(rng());
      break;
    }
    case 8:
      c.capacity = rng() % 2 ? rng() : cap * 2;
      c.max_message = rng();
      break;
    default:
      c.head.store(rng(), std::memory_order_relaxed);
  }
}

TEST(ByteRingHostileFuzz, HostileLoopNeverYieldsASpanOutsideTheDataArea) {
  const std::uint64_t iterations = ringwire::test::tsan_scaled(2'000'000, 50'000);
  std::mt19937_64 rng(0xB17E5u);
  volatile std::uint64_t sink = 0;
  Tally tally;
  std::uint64_t done = 0;
  while (done < iterations) {
    const std::uint64_t cap = std::uint64_t{64} << (rng() % 7);  // 64 .. 4096
    const std::uint64_t max = 1 + rng() % ByteRing::max_message_for(cap);
    GuardedRegion g(cap);
    auto created = ByteRing::create_in(g.base(), g.size(), cap, max);
    ASSERT_TRUE(created.has_value()) << created.status().to_string();
    ByteRing ring = std::move(created.value());
    ++tally.rings;
    // Hostility level of this ring: scribbles per 1000 steps.
    const std::uint64_t per_mille = 1 + rng() % 200;
    bool consumer_dead = false;
    std::vector<std::byte> msg(max);
    for (std::uint64_t step = 0; step < 5'000 && done < iterations; ++step, ++done) {
      const std::uint64_t op = rng() % 1000;
      if (op < per_mille) {
        scribble(g, rng);
        ++tally.scribbles;
      } else if (op < 500) {
        // Legitimate producer: loan, write, commit, maybe publish.
        const std::size_t n = 1 + rng() % max;
        auto span = ring.loan(n);
        if (!span.empty()) {
          ASSERT_TRUE(g.inside(span.data(), span.size())) << "loan outside the data area";
          ASSERT_EQ(span.size(), n);
          std::memset(span.data(), static_cast<int>(step & 0xFF), n);
          ring.commit(1 + rng() % n, static_cast<std::uint16_t>(rng() % 0xFFFF));
          if (rng() % 4 != 0) ring.publish();
        } else if (ring.producer_corrupted()) {
          ++tally.producer_corrupted;
          break;
        } else {
          ring.publish();
        }
      } else {
        RecordView v;
        const ReadStatus st = ring.read(v);
        if (consumer_dead) {
          ASSERT_EQ(st, ReadStatus::corrupted) << "corrupted is not sticky";
          break;
        }
        switch (st) {
          case ReadStatus::ok: {
            ++tally.ok;
            const std::string err = check_view(g, v, max, sink);
            ASSERT_TRUE(err.empty()) << err << " (capacity " << cap << ", max " << max << ")";
            break;
          }
          case ReadStatus::empty:
            ++tally.empty;
            break;
          case ReadStatus::corrupted:
            ++tally.corrupted;
            EXPECT_FALSE(ring.corruption().empty());
            consumer_dead = true;
            break;
          default:
            FAIL() << "read() returned " << static_cast<int>(st);
        }
        if (rng() % 3 == 0) ring.release();
      }
    }
    ASSERT_EQ(g.damaged_canary(), -1) << "a write outside the region";
    (void)ring.used_bytes();  // any values, never a crash
  }
  std::printf(
      "[ hostile  ] %llu steps on %llu rings: %llu scribbles, %llu ok / %llu empty reads, "
      "%llu consumer and %llu producer corruptions detected\n",
      static_cast<unsigned long long>(done), static_cast<unsigned long long>(tally.rings),
      static_cast<unsigned long long>(tally.scribbles), static_cast<unsigned long long>(tally.ok),
      static_cast<unsigned long long>(tally.empty),
      static_cast<unsigned long long>(tally.corrupted),
      static_cast<unsigned long long>(tally.producer_corrupted));
  EXPECT_GT(tally.ok, 1000u);
  EXPECT_GT(tally.corrupted, 10u);
  EXPECT_GT(tally.producer_corrupted, 0u);
}

TEST(ByteRingHostileFuzz, ConcurrentScribblerNeverYieldsASpanOutsideTheDataArea) {
#ifdef RINGWIRE_TEST_TSAN
  GTEST_SKIP() << "the scribbler races with the reader on purpose";
#else
  if (ringwire::test::running_under_tsan()) GTEST_SKIP() << "RINGWIRE_STRESS_SCALE=tsan";
  constexpr std::uint64_t kCap = 1024;
  const std::uint64_t max = ByteRing::max_message_for(kCap);
  std::uint64_t rings = 0, oks = 0, corrupt = 0, survived = 0;
  volatile std::uint64_t sink = 0;
  // At least 600 ms; on a loaded machine up to 5 s, until the reader has
  // both walked records and caught a lie.
  const auto t0 = std::chrono::steady_clock::now();
  const auto until = t0 + std::chrono::milliseconds(600);
  const auto cap_time = t0 + std::chrono::seconds(5);
  std::uint64_t round = 0;
  while ((std::chrono::steady_clock::now() < until || corrupt == 0 || oks <= rings) &&
         std::chrono::steady_clock::now() < cap_time) {
    GuardedRegion g(kCap);
    auto created = ByteRing::create_in(g.base(), g.size(), kCap, max);
    ASSERT_TRUE(created.has_value());
    ByteRing ring = std::move(created.value());
    ++rings;
    std::atomic<bool> stop{false}, started{false}, producer_flagged{false};
    std::thread hostile([&, seed = round++] {
      std::mt19937_64 rng(seed * 31 + 17);
      auto& c = g.control();
      started.store(true);
      // A legitimate producer (the ring's producer side, on this thread)
      // that lies after every `lie_every`-th message it writes (counted in
      // messages, not spins on a full ring, so every round gets its lies
      // whatever the scheduling or sanitizer slowdown): random words over
      // headers and payload the reader may be reading right then, and tail
      // nudges.
      const std::uint64_t lie_every = 1 + rng() % 64;
      std::uint64_t fill = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        const std::size_t n = 1 + rng() % max;
        auto span = ring.loan(n);
        if (span.empty()) {
          if (ring.producer_corrupted()) {
            // The reader, misled by a lie, released past the real tail: the
            // producer caught it. The round is over.
            producer_flagged.store(true);
            break;
          }
          ring.publish();
          ringwire::core::cpu_relax();
          continue;
        }
        std::memset(span.data(), static_cast<int>(++fill & 0xFF), n);
        ring.commit(n, 1);
        ring.publish();
        if (fill % lie_every != 0) continue;
        const std::uint64_t r = rng() % 4;
        if (r == 0) {
          c.tail.store(c.tail.load(std::memory_order_relaxed) + (rng() % 16) * 8 - 64,
                       std::memory_order_release);
        } else {
          const std::uint64_t slot = rng() % (kCap / 8);
          RecordHeader h{static_cast<std::uint32_t>(rng() % (2 * max)),
                         static_cast<std::uint16_t>(rng() % 4 == 0 ? kPadType : 1), 0};
          std::uint64_t word = 0;
          std::memcpy(&word, &h, sizeof word);
          if (r == 3) word = rng();
          // Through atomic_ref so the scribbler itself is well-defined; the
          // reader copies each header once.
          auto* w = reinterpret_cast<std::uint64_t*>(g.data()) + slot;
          std::atomic_ref<std::uint64_t>(*w).store(word, std::memory_order_relaxed);
        }
      }
    });
    while (!started.load())
      std::this_thread::yield();
    std::string error;
    // 3 ms per ring, or up to 50 ms until the reader got some records
    // (on a loaded machine the producer thread may not have run yet). A
    // tail nudged back onto the reader's position hides the data: both
    // sides then wait for each other, so a round with no progress for 10 ms
    // (after the first 3) ends too.
    const auto round_start = std::chrono::steady_clock::now();
    const auto round_end = round_start + std::chrono::milliseconds(3);
    const auto round_limit = round_start + std::chrono::milliseconds(50);
    auto last_progress = round_start;
    std::uint64_t round_oks = 0;
    bool flagged = false;
    for (int i = 0; error.empty(); ++i) {
      const auto now = std::chrono::steady_clock::now();
      if (now >= round_limit || (now >= round_end && round_oks >= 16)) break;
      if (now >= round_end && now - last_progress > std::chrono::milliseconds(10)) break;
      RecordView v;
      const ReadStatus st = ring.read(v);
      if (st == ReadStatus::empty) {
        if (producer_flagged.load()) {
          ++corrupt;
          flagged = true;
          break;
        }
        std::this_thread::yield();  // let the producer run on a busy machine
      }
      if (st == ReadStatus::ok) {
        ++oks;
        ++round_oks;
        last_progress = now;
        error = check_view(g, v, max, sink);
      } else if (st == ReadStatus::corrupted) {
        ++corrupt;
        flagged = true;
        if (ring.read(v) != ReadStatus::corrupted) error = "corrupted is not sticky";
        break;
      }
      if (i % 3 == 0) ring.release();
    }
    if (!flagged) ++survived;
    stop = true;
    hostile.join();
    ASSERT_TRUE(error.empty()) << error;
    ASSERT_EQ(g.damaged_canary(), -1);
  }
  std::printf(
      "[ hostile  ] concurrent scribbler: %llu rings, %llu ok reads, %llu corruptions detected "
      "(consumer or producer side), "
      "%llu rings never flagged\n",
      static_cast<unsigned long long>(rings), static_cast<unsigned long long>(oks),
      static_cast<unsigned long long>(corrupt), static_cast<unsigned long long>(survived));
  EXPECT_GT(corrupt, 0u);
  EXPECT_GT(oks, rings);  // the reader walked records while they were scribbled on
#endif
}

}  // namespace
