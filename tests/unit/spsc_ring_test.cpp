// SpscRing, single-threaded: boundaries, wrap-around, batch and zero-copy
// APIs, capacities, and the checks create_in() / attach() make on a region.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <deque>
#include <numeric>
#include <random>
#include <stdexcept>
#include <vector>

#include "ringwire/queue/ring_storage.hpp"
#include "ringwire/queue/spsc_ring.hpp"

namespace {

using ringwire::SpscRing;
using ringwire::core::Errc;
using ringwire::queue::OwnedBytes;
using ringwire::queue::slots_offset;
using ringwire::queue::SpscControl;
using Ring = SpscRing<std::uint64_t>;

// Slot 0 of a ring, computed from the documented layout (control block first).
template <class T>
const T* slot_base(SpscRing<T>& r) {
  return reinterpret_cast<const T*>(reinterpret_cast<const std::byte*>(&r.control()) +
                                    slots_offset<SpscControl, T>());
}

// Moves an empty ring's indices to `pos` by pushing and popping.
void advance_empty(Ring& r, std::uint64_t pos) {
  std::uint64_t v = 0;
  for (std::uint64_t i = 0; i < pos; ++i) {
    ASSERT_TRUE(r.try_push(i));
    ASSERT_TRUE(r.try_pop(v));
  }
}

std::vector<std::uint64_t> iota_vec(std::size_t n, std::uint64_t first) {
  std::vector<std::uint64_t> v(n);
  std::iota(v.begin(), v.end(), first);
  return v;
}

// ---- boundaries -----------------------------------------------------------------

TEST(SpscRingBoundaries, NewRingIsEmpty) {
  Ring r(8);
  EXPECT_EQ(r.capacity(), 8u);
  EXPECT_TRUE(r.empty_approx());
  EXPECT_EQ(r.size_approx(), 0u);
  std::uint64_t v = 42;
  EXPECT_FALSE(r.try_pop(v));
  EXPECT_EQ(v, 42u) << "a failed pop must not touch the output";
  EXPECT_TRUE(r.claim_read(4).empty());
  std::uint64_t out[4];
  EXPECT_EQ(r.pop_n(out, 4), 0u);
}

TEST(SpscRingBoundaries, ExactCapacityIsUsableWithNoWastedSlot) {
  for (std::uint64_t cap : {1u, 2u, 4u, 8u, 64u, 1024u}) {
    SCOPED_TRACE("capacity " + std::to_string(cap));
    Ring r(cap);
    for (std::uint64_t i = 0; i < cap; ++i)
      ASSERT_TRUE(r.try_push(i * 3)) << "slot " << i << " of " << cap << " refused";
    EXPECT_FALSE(r.try_push(999)) << "one item more than capacity was accepted";
    EXPECT_EQ(r.size_approx(), cap);
    EXPECT_TRUE(r.claim_write(1).empty());
    const std::uint64_t extra = 7;
    EXPECT_EQ(r.push_n(&extra, 1), 0u);
    for (std::uint64_t i = 0; i < cap; ++i) {
      std::uint64_t v = 0;
      ASSERT_TRUE(r.try_pop(v));
      EXPECT_EQ(v, i * 3);
    }
    std::uint64_t v = 0;
    EXPECT_FALSE(r.try_pop(v));
    EXPECT_TRUE(r.empty_approx());
  }
}

TEST(SpscRingBoundaries, FullRingTakesExactlyOneItemPerPop) {
  Ring r(4);
  for (std::uint64_t i = 0; i < 4; ++i)
    ASSERT_TRUE(r.try_push(i));
  std::uint64_t expect = 0;
  for (std::uint64_t next = 4; next < 100; ++next) {
    std::uint64_t v = 0;
    ASSERT_TRUE(r.try_pop(v));
    EXPECT_EQ(v, expect++);
    EXPECT_TRUE(r.try_push(next));
    EXPECT_FALSE(r.try_push(1000 + next));
    EXPECT_EQ(r.size_approx(), 4u);
  }
}

// ---- wrap-around -------------------------------------------------------------------

TEST(SpscRingWrap, FifoOrderHoldsOverManyLapsAtEveryFillLevel) {
  Ring r(8);
  std::uint64_t pushed = 0, popped = 0;
  for (int step = 0; step < 20000; ++step) {
    const int to_push = 1 + step % 8;
    const int to_pop = 1 + (step * 5) % 8;
    for (int i = 0; i < to_push && r.try_push(pushed); ++i)
      ++pushed;
    for (int i = 0; i < to_pop; ++i) {
      std::uint64_t v = 0;
      if (!r.try_pop(v)) break;
      ASSERT_EQ(v, popped) << "FIFO order broken at step " << step;
      ++popped;
    }
    ASSERT_EQ(r.size_approx(), pushed - popped);
  }
  EXPECT_GT(pushed / 8, 1000u) << "fewer than 1000 laps";
  // The indices count items, they are not masked.
  EXPECT_EQ(r.control().tail.load(), pushed);
  EXPECT_EQ(r.control().head.load(), popped);
}

// ---- batch -------------------------------------------------------------------------

TEST(SpscRingBatch, PushNAndPopNSplitAcrossTheWrap) {
  Ring r(8);
  advance_empty(r, 5);  // head = tail = 5: free space is slots 5,6,7 then 0..4
  const auto in = iota_vec(8, 100);
  EXPECT_EQ(r.push_n(in.data(), in.size()), 8u);
  EXPECT_EQ(r.control().tail.load(), 13u);
  const std::uint64_t* s = slot_base(r);
  EXPECT_EQ(s[5], 100u);  // first run: slots 5..7
  EXPECT_EQ(s[7], 102u);
  EXPECT_EQ(s[0], 103u);  // second run: slots 0..4
  EXPECT_EQ(s[4], 107u);
  std::vector<std::uint64_t> out(8);
  EXPECT_EQ(r.pop_n(out.data(), out.size()), 8u);
  EXPECT_EQ(out, in);
  EXPECT_EQ(r.control().head.load(), 13u);
}

TEST(SpscRingBatch, PushNStopsAtFreeSpaceAndPopNAtFilled) {
  Ring r(8);
  advance_empty(r, 6);
  const auto first = iota_vec(3, 0);
  ASSERT_EQ(r.push_n(first.data(), 3), 3u);
  const auto more = iota_vec(10, 3);
  EXPECT_EQ(r.push_n(more.data(), more.size()), 5u) << "only 5 of 8 slots were free";
  std::vector<std::uint64_t> out(20, 0);
  EXPECT_EQ(r.pop_n(out.data(), out.size()), 8u);
  for (std::uint64_t i = 0; i < 8; ++i)
    EXPECT_EQ(out[i], i);
  EXPECT_EQ(out[8], 0u) << "pop_n wrote past the items it returned";
}

TEST(SpscRingBatch, PopNSmallerThanFilledCrossesTheWrap) {
  Ring r(8);
  advance_empty(r, 7);
  const auto in = iota_vec(6, 50);
  ASSERT_EQ(r.push_n(in.data(), in.size()), 6u);
  std::uint64_t out[3] = {};
  ASSERT_EQ(r.pop_n(out, 3), 3u);  // slots 7, 0, 1
  EXPECT_EQ(out[0], 50u);
  EXPECT_EQ(out[2], 52u);
  ASSERT_EQ(r.pop_n(out, 3), 3u);
  EXPECT_EQ(out[0], 53u);
  EXPECT_EQ(out[2], 55u);
  EXPECT_TRUE(r.empty_approx());
}

TEST(SpscRingBatch, ZeroLengthBatchesAreNoOps) {
  Ring r(4);
  std::uint64_t buf[1] = {5};
  EXPECT_EQ(r.push_n(buf, 0), 0u);
  EXPECT_EQ(r.pop_n(buf, 0), 0u);
  EXPECT_EQ(r.control().tail.load(), 0u);
  EXPECT_TRUE(r.claim_write(0).empty());
  EXPECT_TRUE(r.claim_read(0).empty());
}

// ---- zero-copy claim / commit ----------------------------------------------------

TEST(SpscRingClaim, ClaimWriteIsInvisibleUntilCommitted) {
  Ring r(8);
  auto w = r.claim_write(100);
  ASSERT_EQ(w.size(), 8u);
  EXPECT_EQ(w.data(), slot_base(r));
  for (std::size_t i = 0; i < 3; ++i)
    w[i] = 10 + i;
  EXPECT_TRUE(r.claim_read(8).empty()) << "claimed but uncommitted slots are visible";
  EXPECT_EQ(r.size_approx(), 0u);
  r.commit_write(3);
  EXPECT_EQ(r.size_approx(), 3u);
  auto rd = r.claim_read(100);
  ASSERT_EQ(rd.size(), 3u);
  EXPECT_EQ(rd[0], 10u);
  EXPECT_EQ(rd[2], 12u);
}

TEST(SpscRingClaim, ClaimWriteStopsAtTheEndOfTheSlotArray) {
  Ring r(8);
  advance_empty(r, 6);
  auto w = r.claim_write(8);
  ASSERT_EQ(w.size(), 2u) << "span must stop at the physical end of the slots";
  EXPECT_EQ(w.data(), slot_base(r) + 6);
  w[0] = 1;
  w[1] = 2;
  r.commit_write(2);
  auto w2 = r.claim_write(8);
  EXPECT_EQ(w2.size(), 6u) << "second span: slots 0..5, the rest is filled";
  EXPECT_EQ(w2.data(), slot_base(r));
}

TEST(SpscRingClaim, PartialCommitWritePublishesOnlyThePrefix) {
  Ring r(8);
  auto w = r.claim_write(4);
  ASSERT_EQ(w.size(), 4u);
  for (std::size_t i = 0; i < 4; ++i)
    w[i] = 20 + i;
  r.commit_write(2);
  EXPECT_EQ(r.size_approx(), 2u);
  std::uint64_t out[4] = {};
  EXPECT_EQ(r.pop_n(out, 4), 2u);
  EXPECT_EQ(out[0], 20u);
  EXPECT_EQ(out[1], 21u);
  // The two uncommitted slots are claimed again by the next writer.
  auto w2 = r.claim_write(1);
  ASSERT_EQ(w2.size(), 1u);
  EXPECT_EQ(w2.data(), slot_base(r) + 2);
}

TEST(SpscRingClaim, ClaimReadNeverExceedsFilledOrContiguousSlots) {
  Ring r(8);
  advance_empty(r, 6);
  const auto in = iota_vec(5, 0);  // slots 6, 7, 0, 1, 2
  ASSERT_EQ(r.push_n(in.data(), in.size()), 5u);
  auto a = r.claim_read(100);
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(a.data(), slot_base(r) + 6);
  EXPECT_EQ(a[0], 0u);
  r.commit_read(1);  // partial
  auto b = r.claim_read(100);
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0], 1u);
  r.commit_read(1);
  auto c = r.claim_read(100);
  ASSERT_EQ(c.size(), 3u);
  EXPECT_EQ(c.data(), slot_base(r));
  EXPECT_EQ(c[2], 4u);
  EXPECT_EQ(r.claim_read(2).size(), 2u) << "span must respect max";
}

TEST(SpscRingClaim, PartialCommitReadFreesOnlyThePrefix) {
  Ring r(8);
  const auto in = iota_vec(8, 0);
  ASSERT_EQ(r.push_n(in.data(), 8), 8u);
  ASSERT_EQ(r.claim_read(8).size(), 8u);
  r.commit_read(3);
  EXPECT_EQ(r.size_approx(), 5u);
  EXPECT_EQ(r.claim_write(8).size(), 3u) << "exactly the 3 released slots are writable";
  std::uint64_t v = 0;
  ASSERT_TRUE(r.try_pop(v));
  EXPECT_EQ(v, 3u);
}

TEST(SpscRingClaim, RandomClaimsMatchAModelExactly) {
  constexpr std::uint64_t kCap = 16;
  Ring r(kCap);
  std::deque<std::uint64_t> model;
  std::mt19937_64 rng(12345);
  std::uint64_t next = 0, tail = 0, head = 0;
  for (int step = 0; step < 50000; ++step) {
    const std::size_t want = rng() % (kCap + 4);
    if (rng() & 1) {
      auto w = r.claim_write(want);
      const std::uint64_t idx = tail % kCap;
      const std::size_t expect = std::min<std::uint64_t>({want, kCap - model.size(), kCap - idx});
      ASSERT_EQ(w.size(), expect) << "write span size at step " << step;
      if (!w.empty()) {
        ASSERT_EQ(w.data(), slot_base(r) + idx);
      }
      const std::size_t k = w.empty() ? 0 : rng() % (w.size() + 1);
      for (std::size_t i = 0; i < k; ++i) {
        w[i] = next;
        model.push_back(next++);
      }
      r.commit_write(k);
      tail += k;
    } else {
      auto rd = r.claim_read(want);
      const std::uint64_t idx = head % kCap;
      const std::size_t expect = std::min<std::uint64_t>({want, model.size(), kCap - idx});
      ASSERT_EQ(rd.size(), expect) << "read span size at step " << step;
      const std::size_t k = rd.empty() ? 0 : rng() % (rd.size() + 1);
      for (std::size_t i = 0; i < k; ++i) {
        ASSERT_EQ(rd[i], model.front());
        model.pop_front();
      }
      r.commit_read(k);
      head += k;
    }
    ASSERT_EQ(r.size_approx(), model.size());
  }
}

// ---- capacities -------------------------------------------------------------------------

TEST(SpscRingCapacity, CapacityOneAlternatesFullAndEmpty) {
  Ring r(1);
  EXPECT_EQ(r.capacity(), 1u);
  for (std::uint64_t i = 0; i < 1000; ++i) {
    ASSERT_TRUE(r.try_push(i));
    ASSERT_FALSE(r.try_push(i + 1));
    EXPECT_EQ(r.claim_write(5).size(), 0u);
    std::uint64_t v = 0;
    ASSERT_TRUE(r.try_pop(v));
    ASSERT_EQ(v, i);
    ASSERT_FALSE(r.try_pop(v));
  }
  const auto in = iota_vec(3, 7);
  EXPECT_EQ(r.push_n(in.data(), 3), 1u);
  EXPECT_EQ(r.claim_read(5).size(), 1u);
}

TEST(SpscRingCapacity, LargeCapacityFillsAndDrainsCompletely) {
  constexpr std::uint64_t kCap = std::uint64_t{1} << 20;
  Ring r(kCap);
  EXPECT_EQ(r.capacity(), kCap);
  auto w = r.claim_write(kCap + 5);
  ASSERT_EQ(w.size(), kCap);
  for (std::uint64_t i = 0; i < kCap; ++i)
    w[i] = i ^ 0x5555;
  r.commit_write(kCap);
  EXPECT_FALSE(r.try_push(0));
  EXPECT_EQ(r.size_approx(), kCap);
  for (std::uint64_t i = 0; i < kCap; ++i) {
    std::uint64_t v = 0;
    ASSERT_TRUE(r.try_pop(v));
    ASSERT_EQ(v, i ^ 0x5555);
  }
  EXPECT_TRUE(r.empty_approx());
  // A second lap through the large ring with try_push.
  for (std::uint64_t i = 0; i < kCap; ++i)
    ASSERT_TRUE(r.try_push(i));
  EXPECT_FALSE(r.try_push(0));
}

TEST(SpscRingCapacity, BytesForIsControlBlockPlusSlots) {
  constexpr std::size_t kOffset = slots_offset<SpscControl, std::uint64_t>();
  constexpr std::size_t kCharOffset = slots_offset<SpscControl, char>();
  EXPECT_EQ(kOffset % 128, 0u);
  EXPECT_GE(kOffset, sizeof(SpscControl));
  EXPECT_EQ(Ring::bytes_for(8), kOffset + 8 * 8);
  EXPECT_EQ(SpscRing<char>::bytes_for(1), kCharOffset + 1);
}

const std::uint64_t kInvalidCapacities[] = {0,
                                            3,
                                            6,
                                            12,
                                            1000,
                                            (std::uint64_t{1} << 32) + 1,
                                            std::uint64_t{1} << 33,
                                            std::uint64_t{1} << 63,
                                            UINT64_MAX};

TEST(SpscRingCapacity, ConstructorRejectsInvalidCapacities) {
  for (std::uint64_t cap : kInvalidCapacities) {
    EXPECT_THROW(Ring{cap}, std::invalid_argument) << "capacity " << cap;
  }
}

TEST(SpscRingCapacity, CreateInRejectsInvalidCapacities) {
  OwnedBytes mem(Ring::bytes_for(64));
  for (std::uint64_t cap : kInvalidCapacities) {
    auto r = Ring::create_in(mem.get(), mem.size(), cap);
    ASSERT_FALSE(r.has_value()) << "capacity " << cap;
    EXPECT_EQ(r.status().code(), Errc::invalid_argument) << "capacity " << cap;
  }
}

TEST(SpscRingCapacity, CreateInRejectsARegionTooSmallForTheCapacity) {
  OwnedBytes mem(Ring::bytes_for(64));
  auto small = Ring::create_in(mem.get(), Ring::bytes_for(64) - 1, 64);
  ASSERT_FALSE(small.has_value());
  EXPECT_EQ(small.status().code(), Errc::geometry_mismatch);
  auto exact = Ring::create_in(mem.get(), Ring::bytes_for(64), 64);
  ASSERT_TRUE(exact.has_value()) << exact.status().to_string();
  EXPECT_EQ(exact->capacity(), 64u);
}

// ---- attach ---------------------------------------------------------------------------------

class SpscRingAttach : public ::testing::Test {
 protected:
  static constexpr std::uint64_t kCap = 16;
  void SetUp() override {
    std::memset(mem.get(), 0, mem.size());
    auto r = Ring::create_in(mem.get(), mem.size(), kCap);
    ASSERT_TRUE(r.has_value());
  }
  SpscControl& control() { return *static_cast<SpscControl*>(mem.get()); }
  OwnedBytes mem{Ring::bytes_for(kCap)};
};

TEST_F(SpscRingAttach, SecondHandleSharesTheCreatorsRing) {
  auto creator = Ring::create_in(mem.get(), mem.size(), kCap);
  ASSERT_TRUE(creator.has_value());
  ASSERT_TRUE(creator->try_push(77));
  ASSERT_TRUE(creator->try_push(78));
  // The attached handle is the consumer; the creator stays the producer.
  auto other = Ring::attach(mem.get(), mem.size());
  ASSERT_TRUE(other.has_value()) << other.status().to_string();
  EXPECT_EQ(other->capacity(), kCap);
  std::uint64_t v = 0;
  ASSERT_TRUE(other->try_pop(v));
  EXPECT_EQ(v, 77u);
  ASSERT_TRUE(creator->try_push(79));
  ASSERT_TRUE(other->try_pop(v));
  EXPECT_EQ(v, 78u);
  ASSERT_TRUE(other->try_pop(v));
  EXPECT_EQ(v, 79u) << "both handles must see the same ring";
  EXPECT_FALSE(other->try_pop(v));
}

TEST_F(SpscRingAttach, ALateHandleTakesOverFromTheSharedIndices) {
  auto creator = Ring::create_in(mem.get(), mem.size(), kCap);
  ASSERT_TRUE(creator.has_value());
  std::uint64_t v = 0;
  for (std::uint64_t i = 0; i < 5; ++i)
    ASSERT_TRUE(creator->try_push(i));
  ASSERT_TRUE(creator->try_pop(v));  // the first consumer takes one item, then leaves
  auto next_consumer = Ring::attach(mem.get(), mem.size());
  ASSERT_TRUE(next_consumer.has_value());
  for (std::uint64_t i = 1; i < 5; ++i) {
    ASSERT_TRUE(next_consumer->try_pop(v));
    EXPECT_EQ(v, i);
  }
  EXPECT_FALSE(next_consumer->try_pop(v));
}

TEST_F(SpscRingAttach, RejectsAStoredCapacityThatIsNotAPowerOfTwo) {
  for (std::uint64_t bad : {std::uint64_t{0}, std::uint64_t{3}, std::uint64_t{15}}) {
    control().capacity = bad;
    auto r = Ring::attach(mem.get(), mem.size());
    ASSERT_FALSE(r.has_value()) << "stored capacity " << bad;
    EXPECT_EQ(r.status().code(), Errc::geometry_mismatch);
  }
}

TEST_F(SpscRingAttach, RejectsAStoredCapacityLargerThanTheRegion) {
  control().capacity = kCap * 2;
  auto r = Ring::attach(mem.get(), mem.size());
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.status().code(), Errc::geometry_mismatch);
  control().capacity = std::uint64_t{1} << 40;  // power of two, but above the maximum
  auto huge = Ring::attach(mem.get(), mem.size());
  ASSERT_FALSE(huge.has_value());
  EXPECT_EQ(huge.status().code(), Errc::geometry_mismatch);
}

TEST_F(SpscRingAttach, RejectsARegionShorterThanTheStoredGeometry) {
  auto r = Ring::attach(mem.get(), mem.size() - 1);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.status().code(), Errc::geometry_mismatch);
  auto tiny = Ring::attach(mem.get(), sizeof(SpscControl) - 1);
  ASSERT_FALSE(tiny.has_value());
  EXPECT_EQ(tiny.status().code(), Errc::geometry_mismatch);
}

TEST_F(SpscRingAttach, RejectsAWrongElementSize) {
  auto narrow = SpscRing<std::uint32_t>::attach(mem.get(), mem.size());
  ASSERT_FALSE(narrow.has_value());
  EXPECT_EQ(narrow.status().code(), Errc::geometry_mismatch);
  control().element_size = 16;
  auto r = Ring::attach(mem.get(), mem.size());
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.status().code(), Errc::geometry_mismatch);
}

}  // namespace
