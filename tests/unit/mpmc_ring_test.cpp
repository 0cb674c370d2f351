// MpmcRing (bounded FIFO MPMC, per-cell sequence numbers), single-threaded:
// empty/full boundaries at every capacity, invalid capacities, FIFO over many
// laps, the checks create_in() / attach() make on a region, and two handles
// sharing one region. Both cell layouts (padded and packed) are covered.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/test_support.hpp"
#include "ringwire/core/status.hpp"
#include "ringwire/queue/mpmc_ring.hpp"
#include "ringwire/queue/ring_storage.hpp"

namespace {

using ringwire::MpmcRing;
using ringwire::core::Errc;
using ringwire::queue::kMaxCapacity;
using ringwire::queue::MpmcControl;
using ringwire::queue::OwnedBytes;

template <class Ring>
class MpmcRingTest : public ::testing::Test {};
using Layouts = ::testing::Types<MpmcRing<std::uint64_t, true>, MpmcRing<std::uint64_t, false>>;
TYPED_TEST_SUITE(MpmcRingTest, Layouts);

TYPED_TEST(MpmcRingTest, NewRingIsEmptyAndAFailedPopLeavesTheOutputAlone) {
  TypeParam r(8);
  EXPECT_EQ(r.capacity(), 8u);
  EXPECT_EQ(r.size_approx(), 0u);
  std::uint64_t v = 42;
  EXPECT_FALSE(r.try_pop(v));
  EXPECT_EQ(v, 42u);
}

TYPED_TEST(MpmcRingTest, HoldsExactlyCapacityItemsInFifoOrder) {
  for (std::uint64_t cap : {2u, 4u, 8u, 64u, 1024u, 65536u}) {
    SCOPED_TRACE("capacity " + std::to_string(cap));
    TypeParam r(cap);
    for (std::uint64_t i = 0; i < cap; ++i)
      ASSERT_TRUE(r.try_push(i * 3 + 1)) << "slot " << i << " refused";
    EXPECT_FALSE(r.try_push(999)) << "one item more than capacity was accepted";
    EXPECT_EQ(r.size_approx(), cap);
    for (std::uint64_t i = 0; i < cap; ++i) {
      std::uint64_t v = 0;
      ASSERT_TRUE(r.try_pop(v));
      ASSERT_EQ(v, i * 3 + 1);
    }
    std::uint64_t v = 0;
    EXPECT_FALSE(r.try_pop(v));
    EXPECT_EQ(r.size_approx(), 0u);
  }
}

// Capacity 1 is accepted by the constructor (a power of two), so it must
// behave as a one-slot queue: the second push has to fail until a pop.
// In Vyukov's scheme a one-cell ring cannot tell "holds ticket p's item"
// (seq == p + 1) from "free for ticket p + 1" (seq == p + 1): the second push
// would overwrite the first item and the next try_pop would spin forever, so
// the test stops at the first wrong answer instead of popping.
TYPED_TEST(MpmcRingTest, CapacityOneHoldsOneItemOrIsRejected) {
  std::unique_ptr<TypeParam> r;
  try {
    r = std::make_unique<TypeParam>(1);
  } catch (const std::invalid_argument&) {
    SUCCEED() << "capacity 1 rejected";
    return;
  }
  ASSERT_TRUE(r->try_push(11));
  ASSERT_FALSE(r->try_push(22))
      << "BUG: a capacity-1 MpmcRing accepted a second item; it overwrote the first one and "
         "try_pop would now spin forever (cell seq == 2 > dequeue ticket 0 + 1)";
  std::uint64_t v = 0;
  ASSERT_TRUE(r->try_pop(v));
  EXPECT_EQ(v, 11u);
  EXPECT_FALSE(r->try_pop(v));
}

// The consequence of the above, shown in a child process so that a spinning
// try_pop fails the test instead of hanging it: two pushes (whatever the
// second one answers) and then pops must return within a bounded time.
TYPED_TEST(MpmcRingTest, CapacityOnePopAfterAnOverfullPushReturns) {
  std::unique_ptr<TypeParam> r;
  try {
    r = std::make_unique<TypeParam>(1);
  } catch (const std::invalid_argument&) {
    GTEST_SKIP() << "capacity 1 rejected";
  }
  ringwire::test::Child child = ringwire::test::Child::spawn([&] {
    (void)r->try_push(11);
    const bool second = r->try_push(22);
    std::uint64_t v = 0;
    if (!r->try_pop(v) || v != (second ? 22u : 11u)) return 3;
    return r->try_pop(v) ? 4 : 0;
  });
  const bool finished = child.wait_for(std::chrono::seconds(3));
  if (!finished) child.kill();
  EXPECT_TRUE(finished) << "BUG: try_pop on a capacity-1 MpmcRing spun for 3 s after a second "
                           "push was accepted";
  if (finished) {
    EXPECT_EQ(child.exit_code(), 0);
  }
}

TYPED_TEST(MpmcRingTest, FullRingTakesExactlyOneItemPerPop) {
  TypeParam r(4);
  for (std::uint64_t i = 0; i < 4; ++i)
    ASSERT_TRUE(r.try_push(i));
  std::uint64_t expect = 0;
  for (std::uint64_t next = 4; next < 1000; ++next) {
    std::uint64_t v = 0;
    ASSERT_TRUE(r.try_pop(v));
    ASSERT_EQ(v, expect++);
    ASSERT_TRUE(r.try_push(next));
    ASSERT_FALSE(r.try_push(10'000 + next));
    ASSERT_EQ(r.size_approx(), 4u);
  }
}

TYPED_TEST(MpmcRingTest, FifoOverManyLapsAtEveryFillLevel) {
  TypeParam r(8);
  std::uint64_t pushed = 0, popped = 0;
  for (int step = 0; step < 20'000; ++step) {
    const int to_push = 1 + step % 9;
    const int to_pop = 1 + (step * 5) % 9;
    for (int i = 0; i < to_push; ++i) {
      const bool ok = r.try_push(pushed);
      ASSERT_EQ(ok, pushed - popped < 8) << "step " << step;
      if (!ok) break;
      ++pushed;
    }
    for (int i = 0; i < to_pop; ++i) {
      std::uint64_t v = 0;
      const bool ok = r.try_pop(v);
      ASSERT_EQ(ok, popped < pushed) << "step " << step;
      if (!ok) break;
      ASSERT_EQ(v, popped) << "FIFO broken at step " << step;
      ++popped;
    }
    ASSERT_EQ(r.size_approx(), pushed - popped);
  }
  EXPECT_GT(pushed / 8, 1000u) << "fewer than 1000 laps";
}

TEST(MpmcRing, InvalidCapacitiesAreRejected) {
  for (std::uint64_t cap :
       {std::uint64_t{0}, std::uint64_t{3}, std::uint64_t{6}, std::uint64_t{1000}, kMaxCapacity + 1,
        kMaxCapacity * 2, ~std::uint64_t{0}}) {
    SCOPED_TRACE("capacity " + std::to_string(cap));
    EXPECT_THROW(MpmcRing<std::uint64_t>{cap}, std::invalid_argument);
    std::vector<std::byte> mem(4096);
    auto r = MpmcRing<std::uint64_t>::create_in(mem.data(), mem.size(), cap);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.status().code(), Errc::invalid_argument);
  }
}

struct Wide {
  std::uint64_t a, b, c;
};

TEST(MpmcRing, StructItemsArriveWhole) {
  MpmcRing<Wide> r(4);
  for (std::uint64_t i = 0; i < 100; ++i) {
    ASSERT_TRUE(r.try_push(Wide{i, ~i, i * 7}));
    Wide w{};
    ASSERT_TRUE(r.try_pop(w));
    EXPECT_EQ(w.a, i);
    EXPECT_EQ(w.b, ~i);
    EXPECT_EQ(w.c, i * 7);
  }
}

TEST(MpmcRing, MovedRingKeepsItsItems) {
  MpmcRing<std::uint64_t> a(8);
  ASSERT_TRUE(a.try_push(5));
  MpmcRing<std::uint64_t> b(std::move(a));
  std::uint64_t v = 0;
  ASSERT_TRUE(b.try_pop(v));
  EXPECT_EQ(v, 5u);
}

// ---- create_in / attach ----------------------------------------------------------

using Ring = MpmcRing<std::uint64_t>;

TEST(MpmcRingRegion, CreateInRefusesARegionTooSmall) {
  constexpr std::uint64_t cap = 16;
  OwnedBytes mem(Ring::bytes_for(cap));
  auto r = Ring::create_in(mem.get(), Ring::bytes_for(cap) - 1, cap);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.status().code(), Errc::geometry_mismatch);
  auto ok = Ring::create_in(mem.get(), Ring::bytes_for(cap), cap);
  ASSERT_TRUE(ok.has_value()) << ok.status().to_string();
  EXPECT_EQ(ok->capacity(), cap);
}

TEST(MpmcRingRegion, BytesForCoversControlAndCells) {
  EXPECT_GE(Ring::bytes_for(1), sizeof(MpmcControl) + sizeof(Ring::Cell));
  EXPECT_EQ(Ring::bytes_for(64) - Ring::bytes_for(32), 32 * sizeof(Ring::Cell));
  EXPECT_EQ(sizeof(MpmcRing<std::uint64_t, true>::Cell) % 64, 0u) << "padded cells fill a line";
  EXPECT_LT(sizeof(MpmcRing<std::uint64_t, false>::Cell), 64u);
}

TEST(MpmcRingRegion, AttachChecksTheHeaderGeometry) {
  constexpr std::uint64_t cap = 32;
  const std::size_t bytes = Ring::bytes_for(cap);
  OwnedBytes mem(bytes);
  ASSERT_TRUE(Ring::create_in(mem.get(), bytes, cap).has_value());
  auto* c = static_cast<MpmcControl*>(mem.get());
  EXPECT_EQ(c->capacity, cap);
  EXPECT_EQ(c->cell_size, sizeof(Ring::Cell));

  {
    auto a = Ring::attach(mem.get(), bytes);
    ASSERT_TRUE(a.has_value()) << a.status().to_string();
    EXPECT_EQ(a->capacity(), cap);
  }
  auto expect_refused = [&](const char* why, std::size_t len) {
    auto a = Ring::attach(mem.get(), len);
    EXPECT_FALSE(a.has_value()) << why;
    if (!a.has_value()) {
      EXPECT_EQ(a.status().code(), Errc::geometry_mismatch) << why;
    }
  };
  expect_refused("smaller than the control block", sizeof(MpmcControl) - 1);
  expect_refused("smaller than the cells", bytes - 1);

  // Another cell size: a packed handle on a padded ring.
  {
    auto a = MpmcRing<std::uint64_t, false>::attach(mem.get(), bytes);
    EXPECT_FALSE(a.has_value()) << "packed handle attached to a padded ring";
  }
  // A corrupted header.
  for (std::uint64_t bad : {std::uint64_t{0}, std::uint64_t{3}, std::uint64_t{64}, kMaxCapacity * 2,
                            ~std::uint64_t{0}}) {
    c->capacity = bad;
    expect_refused(("capacity " + std::to_string(bad)).c_str(), bytes);
  }
  c->capacity = cap;
  c->cell_size = sizeof(Ring::Cell) + 8;
  expect_refused("cell size", bytes);
  c->cell_size = sizeof(Ring::Cell);
  EXPECT_TRUE(Ring::attach(mem.get(), bytes).has_value());
}

TEST(MpmcRingRegion, TwoHandlesShareOneRegion) {
  constexpr std::uint64_t cap = 8;
  const std::size_t bytes = Ring::bytes_for(cap);
  OwnedBytes mem(bytes);
  auto creator = Ring::create_in(mem.get(), bytes, cap);
  ASSERT_TRUE(creator.has_value());
  auto other = Ring::attach(mem.get(), bytes);
  ASSERT_TRUE(other.has_value());

  std::uint64_t next_in = 0, next_out = 0;
  for (int step = 0; step < 5000; ++step) {
    Ring& pusher = (step % 3 == 0) ? *other : *creator;
    Ring& popper = (step % 2 == 0) ? *other : *creator;
    for (int i = 0; i < 1 + step % 8; ++i) {
      if (!pusher.try_push(next_in)) break;
      ++next_in;
    }
    EXPECT_EQ(creator->size_approx(), other->size_approx());
    for (int i = 0; i < 1 + (step * 3) % 8; ++i) {
      std::uint64_t v = 0;
      if (!popper.try_pop(v)) break;
      ASSERT_EQ(v, next_out++) << "step " << step;
    }
  }
  EXPECT_GT(next_out, 4 * cap * 100);
  // A ring filled through one handle is full through the other.
  while (creator->try_push(next_in))
    ++next_in;
  EXPECT_FALSE(other->try_push(0));
  EXPECT_EQ(other->size_approx(), cap);
  // Re-attaching does not reset anything.
  auto third = Ring::attach(mem.get(), bytes);
  ASSERT_TRUE(third.has_value());
  std::uint64_t v = 0;
  ASSERT_TRUE(third->try_pop(v));
  EXPECT_EQ(v, next_out);
}

}  // namespace
