// MpscRing (crash-safe bounded MPSC ring), single-threaded: capacities,
// create_in / attach checks, full/empty boundaries, wrap-around, producer
// registration (64 owner slots), and the consumer's answers to a claimed but
// unwritten cell: busy while the owner lives, abandoned (and counted) once it
// is reported dead, with the owner slot reaped only after the consumer has
// passed every position the dead owner could have claimed.
//
// A producer paused or killed between its claim and its "ready" store is
// reproduced by writing the cell word directly, in the format documented at
// the top of mpsc_ring.hpp: [ position : 56 | state : 2 | owner : 6 ] with
// state free = 0, claimed = 1, ready = 2. CellWordLayout checks that reading
// of the documentation against what try_push really writes first.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "common/test_support.hpp"
#include "ringwire/core/status.hpp"
#include "ringwire/queue/mpsc_ring.hpp"
#include "ringwire/queue/ring_storage.hpp"

namespace {

using namespace std::chrono_literals;
using ringwire::MpscRing;
using ringwire::core::Errc;
using ringwire::queue::kMaxCapacity;
using ringwire::queue::kMpscMaxProducers;
using ringwire::queue::MpscRingControl;
using ringwire::queue::OwnedBytes;
using ringwire::queue::slots_offset;
using Ring = MpscRing<std::uint64_t>;
using Status = Ring::PopStatus;

constexpr std::uint64_t kFree = 0, kClaimed = 1, kReady = 2;
constexpr std::uint64_t word(std::uint64_t pos, std::uint64_t state, std::uint32_t owner) {
  return (pos << 8) | (state << 6) | owner;
}

Ring::Cell* cells(Ring& r) {
  return reinterpret_cast<Ring::Cell*>(reinterpret_cast<std::byte*>(&r.control()) +
                                       slots_offset<MpscRingControl, Ring::Cell>());
}
Ring::Cell& cell_at(Ring& r, std::uint64_t pos) {
  return cells(r)[pos & (r.capacity() - 1)];
}

// Slot states, as documented on MpscProducerSlot.
constexpr std::uint32_t kSlotFree = 0, kSlotInUse = 1, kSlotDead = 2, kSlotRegistering = 3;

// The liveness oracle the consumer is given: identities are (a, b) pairs; a
// test declares some dead. Counts the questions asked.
struct Oracle {
  std::set<std::pair<std::uint64_t, std::uint64_t>> dead;
  int calls = 0;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> asked;
  bool operator()(std::uint64_t a, std::uint64_t b) {
    ++calls;
    asked.emplace_back(a, b);
    return dead.count({a, b}) == 0;
  }
};

// Identity of producer number i in these tests.
std::uint64_t id_a(std::uint32_t i) {
  return 1000 + i;
}
std::uint64_t id_b(std::uint32_t i) {
  return 7'000'000 + i * 13;
}

std::uint32_t reg(Ring& r, std::uint32_t i) {
  auto o = r.register_producer(id_a(i), id_b(i));
  EXPECT_TRUE(o.has_value()) << "registration " << i << " refused";
  return o.value_or(0);
}

// Pops one item with an oracle that says everyone is alive.
Status pop1(Ring& r, std::uint64_t& out) {
  return r.try_pop(out, [](std::uint64_t, std::uint64_t) { return true; });
}

// Emulates a producer that claimed `pos` and then stopped (paused or killed)
// before writing: the cell says claimed by `owner`; `advanced` says whether it
// got as far as moving enqueue_pos on.
void fake_claim(Ring& r, std::uint64_t pos, std::uint32_t owner, bool advanced) {
  ASSERT_EQ(r.control().enqueue_pos.load(), pos) << "fake_claim must claim the next position";
  ASSERT_EQ(cell_at(r, pos).word.load(), word(pos, kFree, 0)) << "cell not free for " << pos;
  cell_at(r, pos).word.store(word(pos, kClaimed, owner));
  if (advanced) r.control().enqueue_pos.store(pos + 1);
}

// ---- construction and region checks ------------------------------------------------

TEST(MpscRing, InvalidCapacitiesAreRejected) {
  for (std::uint64_t cap : {std::uint64_t{0}, std::uint64_t{3}, std::uint64_t{100},
                            kMaxCapacity + 1, ~std::uint64_t{0}}) {
    SCOPED_TRACE("capacity " + std::to_string(cap));
    EXPECT_THROW(Ring{cap}, std::invalid_argument);
    std::vector<std::byte> mem(1 << 16);
    auto r = Ring::create_in(mem.data(), mem.size(), cap);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.status().code(), Errc::invalid_argument);
  }
}

TEST(MpscRing, CreateInAndAttachCheckTheRegion) {
  constexpr std::uint64_t cap = 16;
  const std::size_t bytes = Ring::bytes_for(cap);
  OwnedBytes mem(bytes);
  {
    auto r = Ring::create_in(mem.get(), bytes - 1, cap);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.status().code(), Errc::geometry_mismatch);
  }
  auto creator = Ring::create_in(mem.get(), bytes, cap);
  ASSERT_TRUE(creator.has_value()) << creator.status().to_string();
  EXPECT_EQ(creator->capacity(), cap);
  auto& c = creator->control();
  EXPECT_EQ(c.capacity, cap);
  EXPECT_EQ(c.cell_size, sizeof(Ring::Cell));

  auto refused = [&](std::size_t len) {
    auto a = Ring::attach(mem.get(), len);
    return !a.has_value() && a.status().code() == Errc::geometry_mismatch;
  };
  EXPECT_TRUE(refused(sizeof(MpscRingControl) - 1));
  EXPECT_TRUE(refused(bytes - 1));
  for (std::uint64_t bad : {std::uint64_t{0}, std::uint64_t{6}, kMaxCapacity * 4,
                            std::uint64_t{1} << 60, ~std::uint64_t{0}}) {
    c.capacity = bad;
    EXPECT_TRUE(refused(bytes)) << "capacity " << bad;
  }
  c.capacity = 32;  // valid, but the region only has 16 cells
  EXPECT_TRUE(refused(bytes));
  c.capacity = cap;
  c.cell_size = sizeof(Ring::Cell) * 2;
  EXPECT_TRUE(refused(bytes));
  c.cell_size = sizeof(Ring::Cell);
  {
    auto wrong_type = MpscRing<std::uint32_t>::attach(mem.get(), bytes);
    EXPECT_EQ(wrong_type.has_value(), sizeof(MpscRing<std::uint32_t>::Cell) == sizeof(Ring::Cell));
  }

  // Two handles on one region: producer through one, consumer through the other.
  auto other = Ring::attach(mem.get(), bytes);
  ASSERT_TRUE(other.has_value()) << other.status().to_string();
  const std::uint32_t p = reg(*other, 0);
  EXPECT_EQ(creator->control().producers[p].state.load(), kSlotInUse);
  std::uint64_t next = 0;
  for (int round = 0; round < 100; ++round) {
    for (int i = 0; i < 5; ++i)
      ASSERT_TRUE(other->try_push(p, round * 5 + i));
    for (int i = 0; i < 5; ++i) {
      std::uint64_t v = 0;
      ASSERT_EQ(pop1(*creator, v), Status::ok);
      ASSERT_EQ(v, next++);
    }
  }
  EXPECT_EQ(other->control().dequeue_pos.load(), 500u);
}

TEST(MpscRing, CellWordLayoutMatchesTheDocumentedEncoding) {
  Ring r(8);
  for (std::uint64_t i = 0; i < 8; ++i)
    ASSERT_EQ(cells(r)[i].word.load(), word(i, kFree, 0)) << "fresh cell " << i;
  reg(r, 0);
  reg(r, 1);
  const std::uint32_t o = reg(r, 2);
  ASSERT_EQ(o, 2u);
  ASSERT_TRUE(r.try_push(o, 77));
  EXPECT_EQ(cells(r)[0].word.load(), word(0, kReady, o));
  EXPECT_EQ(cells(r)[0].value, 77u);
  EXPECT_EQ(r.control().enqueue_pos.load(), 1u);
  std::uint64_t v = 0;
  ASSERT_EQ(pop1(r, v), Status::ok);
  EXPECT_EQ(cells(r)[0].word.load(), word(8, kFree, 0)) << "released for the next lap";
  EXPECT_EQ(r.control().dequeue_pos.load(), 1u);
}

// ---- boundaries ---------------------------------------------------------------------

TEST(MpscRing, NewRingIsEmptyAndTheOracleIsNotAsked) {
  Ring r(4);
  Oracle alive;
  std::uint64_t v = 42;
  EXPECT_EQ(r.try_pop(v, alive), Status::empty);
  EXPECT_EQ(v, 42u);
  EXPECT_EQ(alive.calls, 0);
  EXPECT_EQ(r.size_approx(), 0u);
  EXPECT_EQ(r.control().abandoned.load(), 0u);
}

TEST(MpscRing, HoldsExactlyCapacityItemsInFifoOrder) {
  for (std::uint64_t cap : {1u, 2u, 8u, 64u, 1024u, 65536u}) {
    SCOPED_TRACE("capacity " + std::to_string(cap));
    Ring r(cap);
    const std::uint32_t p = reg(r, 0);
    for (std::uint64_t i = 0; i < cap; ++i)
      ASSERT_TRUE(r.try_push(p, i * 3)) << "slot " << i << " refused";
    EXPECT_FALSE(r.try_push(p, 999)) << "one item more than capacity was accepted";
    EXPECT_EQ(r.size_approx(), cap);
    Oracle alive;
    for (std::uint64_t i = 0; i < cap; ++i) {
      std::uint64_t v = 0;
      ASSERT_EQ(r.try_pop(v, alive), Status::ok);
      ASSERT_EQ(v, i * 3);
    }
    std::uint64_t v = 0;
    EXPECT_EQ(r.try_pop(v, alive), Status::empty);
    EXPECT_EQ(alive.calls, 0) << "no cell was ever claimed-but-unwritten";
    EXPECT_EQ(r.size_approx(), 0u);
  }
}

TEST(MpscRing, FifoAcrossProducersOverManyLaps) {
  Ring r(8);
  const std::uint32_t owners[3] = {reg(r, 0), reg(r, 1), reg(r, 2)};
  std::uint64_t pushed = 0, popped = 0;
  for (int step = 0; step < 20'000; ++step) {
    const int to_push = 1 + step % 9;
    const int to_pop = 1 + (step * 5) % 9;
    for (int i = 0; i < to_push; ++i) {
      const bool ok = r.try_push(owners[(step + i) % 3], pushed);
      ASSERT_EQ(ok, pushed - popped < 8) << "step " << step;
      if (!ok) break;
      ++pushed;
    }
    for (int i = 0; i < to_pop; ++i) {
      std::uint64_t v = 0;
      const Status s = pop1(r, v);
      ASSERT_EQ(s == Status::ok, popped < pushed) << "step " << step;
      if (s != Status::ok) {
        ASSERT_EQ(s, Status::empty);
        break;
      }
      ASSERT_EQ(v, popped++) << "FIFO broken at step " << step;
    }
    ASSERT_EQ(r.size_approx(), pushed - popped);
  }
  EXPECT_GT(pushed / 8, 1000u) << "fewer than 1000 laps";
  EXPECT_EQ(r.control().enqueue_pos.load(), pushed);
}

// ---- registration ------------------------------------------------------------------------

TEST(MpscRingRegistration, SixtyFourSlotsThenRefusal) {
  Ring r(8);
  std::set<std::uint32_t> owners;
  for (std::uint32_t i = 0; i < kMpscMaxProducers; ++i) {
    auto o = r.register_producer(id_a(i), id_b(i));
    ASSERT_TRUE(o.has_value()) << "registration " << i;
    ASSERT_LT(*o, kMpscMaxProducers);
    owners.insert(*o);
    const auto& s = r.control().producers[*o];
    EXPECT_EQ(s.state.load(), kSlotInUse);
    EXPECT_EQ(s.identity_a.load(), id_a(i));
    EXPECT_EQ(s.identity_b.load(), id_b(i));
  }
  EXPECT_EQ(owners.size(), kMpscMaxProducers);
  EXPECT_FALSE(r.register_producer(1, 2).has_value()) << "a 65th producer was registered";

  // Every owner can push (the owner id survives the 6-bit field).
  for (std::uint32_t o : owners) {
    ASSERT_TRUE(r.try_push(o, o));
    std::uint64_t v = 99;
    ASSERT_EQ(pop1(r, v), Status::ok);
    ASSERT_EQ(v, o);
  }

  r.unregister_producer(17);
  EXPECT_EQ(r.control().producers[17].state.load(), kSlotFree);
  auto again = r.register_producer(5, 6);
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(*again, 17u) << "the freed slot is reused";
  EXPECT_FALSE(r.register_producer(1, 2).has_value());

  // Out-of-range owners are ignored, not written.
  r.unregister_producer(kMpscMaxProducers);
  r.unregister_producer(1'000'000);
  EXPECT_FALSE(r.register_producer(1, 2).has_value());
}

TEST(MpscRingRegistration, CheckProducersMarksOnlyTheDead) {
  Ring r(8);
  for (std::uint32_t i = 0; i < 4; ++i)
    ASSERT_EQ(reg(r, i), i);
  Oracle alive;
  alive.dead.insert({id_a(1), id_b(1)});
  alive.dead.insert({id_a(3), id_b(3)});
  r.check_producers(alive);
  EXPECT_EQ(alive.calls, 4) << "one question per registered slot";
  EXPECT_EQ(r.control().producers[0].state.load(), kSlotInUse);
  EXPECT_NE(r.control().producers[1].state.load(), kSlotInUse);
  EXPECT_EQ(r.control().producers[2].state.load(), kSlotInUse);
  EXPECT_NE(r.control().producers[3].state.load(), kSlotInUse);
  // The identity passed to the oracle is the registered one.
  EXPECT_EQ(alive.asked[2], std::make_pair(id_a(2), id_b(2)));
}

// ---- a claimed cell that is not ready -------------------------------------------------------

class MpscRingClaims : public ::testing::Test {
 protected:
  void SetUp() override {
    slow_ = reg(r_, 0);
    other_ = reg(r_, 1);
    // Some traffic first, so the positions are not the initial ones.
    for (std::uint64_t i = 0; i < 11; ++i) {
      ASSERT_TRUE(r_.try_push(other_, 1000 + i));
      std::uint64_t v = 0;
      ASSERT_EQ(pop1(r_, v), Status::ok);
    }
    p_ = r_.control().enqueue_pos.load();
    ASSERT_EQ(p_, 11u);
  }
  Ring r_{8};
  std::uint32_t slow_ = 0, other_ = 0;
  std::uint64_t p_ = 0;
};

TEST_F(MpscRingClaims, BusyWhileTheOwnerLivesThenDeliveredInOrder) {
  fake_claim(r_, p_, slow_, /*advanced=*/true);
  ASSERT_TRUE(r_.try_push(other_, 2));  // lands behind the claim
  ASSERT_TRUE(r_.try_push(other_, 3));
  Oracle alive;
  std::uint64_t v = 42;
  for (int i = 0; i < 10; ++i) {
    ASSERT_EQ(r_.try_pop(v, alive), Status::busy) << "try " << i;
  }
  EXPECT_EQ(v, 42u);
  EXPECT_EQ(alive.calls, 10);
  EXPECT_EQ(alive.asked.back(), std::make_pair(id_a(0), id_b(0))) << "asked about the claimant";
  EXPECT_EQ(r_.control().abandoned.load(), 0u);
  EXPECT_EQ(r_.control().producers[slow_].state.load(), kSlotInUse);

  // The slow producer finishes its write.
  cell_at(r_, p_).value = 1;
  cell_at(r_, p_).word.store(word(p_, kReady, slow_));
  for (std::uint64_t want = 1; want <= 3; ++want) {
    ASSERT_EQ(r_.try_pop(v, alive), Status::ok);
    EXPECT_EQ(v, want);
  }
  EXPECT_EQ(r_.try_pop(v, alive), Status::empty);
  EXPECT_EQ(r_.control().abandoned.load(), 0u);
}

TEST_F(MpscRingClaims, AClaimWhoseOwnerIsDeadIsAbandonedAndCounted) {
  fake_claim(r_, p_, slow_, /*advanced=*/true);
  ASSERT_TRUE(r_.try_push(other_, 2));
  ASSERT_TRUE(r_.try_push(other_, 3));
  Oracle alive;
  alive.dead.insert({id_a(0), id_b(0)});
  std::uint64_t v = 0;
  ASSERT_EQ(r_.try_pop(v, alive), Status::ok) << "the dead claim is skipped in the same call";
  EXPECT_EQ(v, 2u);
  EXPECT_EQ(r_.control().abandoned.load(), 1u);
  EXPECT_EQ(cell_at(r_, p_).word.load(), word(p_ + 8, kFree, 0)) << "released for the next lap";
  EXPECT_NE(r_.control().producers[slow_].state.load(), kSlotInUse) << "owner marked dead";
  ASSERT_EQ(r_.try_pop(v, alive), Status::ok);
  EXPECT_EQ(v, 3u);
  EXPECT_EQ(r_.try_pop(v, alive), Status::empty);
  EXPECT_EQ(r_.control().abandoned.load(), 1u);
  // The positions add up: every claimed position was delivered or abandoned.
  EXPECT_EQ(r_.control().dequeue_pos.load(), r_.control().enqueue_pos.load());
  // The abandoned cell is reused normally on the next lap.
  for (std::uint64_t i = 0; i < 20; ++i) {
    ASSERT_TRUE(r_.try_push(other_, 100 + i));
    ASSERT_EQ(r_.try_pop(v, alive), Status::ok);
    ASSERT_EQ(v, 100 + i);
  }
}

TEST_F(MpscRingClaims, AClaimByAnUnregisteredOwnerCountsAsDead) {
  // Owner 40 was never registered: only a corrupt peer could write this.
  fake_claim(r_, p_, 40, /*advanced=*/true);
  ASSERT_TRUE(r_.try_push(other_, 5));
  Oracle alive;
  std::uint64_t v = 0;
  ASSERT_EQ(r_.try_pop(v, alive), Status::ok);
  EXPECT_EQ(v, 5u);
  EXPECT_EQ(alive.calls, 0) << "an unregistered slot needs no liveness question";
  EXPECT_EQ(r_.control().abandoned.load(), 1u);
}

TEST_F(MpscRingClaims, AFullRingWithADeadClaimAtItsHeadDrainsAfterTheAbandon) {
  fake_claim(r_, p_, slow_, /*advanced=*/true);
  for (std::uint64_t i = 1; i < 8; ++i)
    ASSERT_TRUE(r_.try_push(other_, i));
  EXPECT_FALSE(r_.try_push(other_, 99)) << "7 items + 1 claim fill 8 cells";
  Oracle alive;
  std::uint64_t v = 0;
  ASSERT_EQ(r_.try_pop(v, alive), Status::busy);
  alive.dead.insert({id_a(0), id_b(0)});
  for (std::uint64_t i = 1; i < 8; ++i) {
    ASSERT_EQ(r_.try_pop(v, alive), Status::ok);
    ASSERT_EQ(v, i);
  }
  EXPECT_EQ(r_.control().abandoned.load(), 1u);
  for (std::uint64_t i = 0; i < 8; ++i)
    ASSERT_TRUE(r_.try_push(other_, 50 + i)) << "the ring holds 8 again";
}

// A producer killed right after its claim CAS, before it moved enqueue_pos
// on: the next producer sees the claimed cell and helps (moves the hint).
TEST_F(MpscRingClaims, AClaimWithoutAdvanceIsHelpedByTheNextProducer) {
  fake_claim(r_, p_, slow_, /*advanced=*/false);
  ASSERT_TRUE(r_.try_push(other_, 8));
  EXPECT_EQ(r_.control().enqueue_pos.load(), p_ + 2);
  Oracle alive;
  alive.dead.insert({id_a(0), id_b(0)});
  std::uint64_t v = 0;
  ASSERT_EQ(r_.try_pop(v, alive), Status::ok);
  EXPECT_EQ(v, 8u);
  EXPECT_EQ(r_.control().abandoned.load(), 1u);
}

// The same death, but the consumer reaches the claim before any producer
// helps: it abandons the cell (now {p + capacity, free}) while enqueue_pos
// still says p. The next try_push then finds neither {p, free} nor {p, taken}
// nor last lap's item at p, takes that for a stale enqueue_pos, reloads the
// same p and loops forever. Run in a child process so a hang fails the test.
TEST_F(MpscRingClaims, PushAfterTheConsumerAbandonedAnUnadvancedClaimReturns) {
  fake_claim(r_, p_, slow_, /*advanced=*/false);
  Oracle alive;
  alive.dead.insert({id_a(0), id_b(0)});
  std::uint64_t v = 0;
  ASSERT_EQ(r_.try_pop(v, alive), Status::empty);
  ASSERT_EQ(r_.control().abandoned.load(), 1u);
  ASSERT_EQ(r_.control().dequeue_pos.load(), p_ + 1);
  ASSERT_EQ(r_.control().enqueue_pos.load(), p_) << "nobody advanced the hint";

  ringwire::test::Child child = ringwire::test::Child::spawn([&] {
    if (!r_.try_push(other_, 9)) return 2;
    std::uint64_t got = 0;
    if (pop1(r_, got) != Status::ok || got != 9) return 3;
    return 0;
  });
  const bool finished = child.wait_for(3s);
  if (!finished) child.kill();
  EXPECT_TRUE(finished) << "BUG: try_push spun for 3 s: enqueue_pos = " << p_
                        << " while the consumer already released that cell for position " << p_ + 8
                        << " (mpsc_ring.hpp try_push: no case advances the hint)";
  if (finished) {
    EXPECT_EQ(child.exit_code(), 0);
  }
}

// ---- reaping owner slots ------------------------------------------------------------------

// A dead owner with a claim still ahead of the consumer must keep its slot
// (state dead) until the consumer has passed that claim: otherwise a new
// producer registered in the same slot would make the old claim look alive
// and the consumer would report busy forever.
TEST_F(MpscRingClaims, ADeadOwnersSlotIsNotReusedBeforeTheConsumerPassesItsClaim) {
  fake_claim(r_, p_, slow_, /*advanced=*/true);
  ASSERT_TRUE(r_.try_push(other_, 1));
  // Fill every other slot so a registration could only take the dead one.
  for (std::uint32_t i = 2; i < kMpscMaxProducers; ++i)
    reg(r_, i);
  Oracle alive;
  alive.dead.insert({id_a(0), id_b(0)});
  r_.check_producers(alive);
  EXPECT_EQ(r_.control().producers[slow_].state.load(), kSlotDead);
  EXPECT_FALSE(r_.register_producer(5, 5).has_value())
      << "slot of a dead owner reused while its claim is still in the ring";

  std::uint64_t v = 0;
  ASSERT_EQ(r_.try_pop(v, alive), Status::ok);  // abandons the claim, delivers 1
  EXPECT_EQ(v, 1u);
  EXPECT_EQ(r_.control().abandoned.load(), 1u);
  // One more item through the ring so the consumer is past every position the
  // dead owner could have held when it was marked.
  ASSERT_TRUE(r_.try_push(other_, 2));
  ASSERT_EQ(r_.try_pop(v, alive), Status::ok);
  r_.check_producers(alive);
  EXPECT_EQ(r_.control().producers[slow_].state.load(), kSlotFree) << "slot reaped";
  auto fresh = r_.register_producer(id_a(99), id_b(99));
  ASSERT_TRUE(fresh.has_value());
  EXPECT_EQ(*fresh, slow_) << "the reaped slot is reused";
  ASSERT_TRUE(r_.try_push(*fresh, 3));
  ASSERT_EQ(r_.try_pop(v, alive), Status::ok) << "the new owner is alive";
  EXPECT_EQ(v, 3u);
}

TEST(MpscRingReaping, ADeadProducerWithoutClaimsIsReapedOnceTrafficPassesIt) {
  Ring r(8);
  const std::uint32_t a = reg(r, 0), b = reg(r, 1);
  ASSERT_TRUE(r.try_push(a, 1));
  std::uint64_t v = 0;
  ASSERT_EQ(pop1(r, v), Status::ok);
  Oracle alive;
  alive.dead.insert({id_a(0), id_b(0)});
  r.check_producers(alive);
  EXPECT_EQ(r.control().producers[a].state.load(), kSlotDead);
  for (std::uint64_t i = 0; i < 3; ++i) {
    ASSERT_TRUE(r.try_push(b, i));
    ASSERT_EQ(r.try_pop(v, alive), Status::ok);
  }
  r.check_producers(alive);
  EXPECT_EQ(r.control().producers[a].state.load(), kSlotFree);
  EXPECT_EQ(r.control().producers[b].state.load(), kSlotInUse);
  EXPECT_EQ(r.control().abandoned.load(), 0u);
}

// Every slot held by a producer that died while idle (no claim in the ring),
// ring drained. The dead slots are marked with reap_after = enqueue_pos + 1,
// and the consumer can never get past enqueue_pos + 1 without a new item,
// which needs a new producer, which needs a free slot: if nothing else frees
// one, the ring can never be produced into again.
TEST(MpscRingReaping, SlotsOfProducersThatDiedIdleAreRecycledOnAnIdleRing) {
  Ring r(8);
  Oracle alive;
  for (std::uint32_t i = 0; i < kMpscMaxProducers; ++i) {
    const std::uint32_t o = reg(r, i);
    ASSERT_TRUE(r.try_push(o, i));
    std::uint64_t v = 0;
    ASSERT_EQ(r.try_pop(v, alive), Status::ok);
    alive.dead.insert({id_a(i), id_b(i)});
  }
  ASSERT_FALSE(r.register_producer(1, 1).has_value());
  for (int i = 0; i < 10; ++i) {
    r.check_producers(alive);
    std::uint64_t v = 0;
    EXPECT_EQ(r.try_pop(v, alive), Status::empty);
  }
  EXPECT_TRUE(r.register_producer(id_a(100), id_b(100)).has_value())
      << "BUG: all 64 owner slots belong to dead producers with nothing in the ring, and "
         "check_producers never frees them (state "
      << r.control().producers[0].state.load() << ", reap_after "
      << r.control().producers[0].reap_after.load() << ", dequeue_pos "
      << r.control().dequeue_pos.load() << "): no producer can ever register again";
}

// A producer killed inside register_producer, after its CAS 0 -> 3
// ("registering") and before the store of 1, leaves the slot in state 3.
// Nothing ever judges or frees a registering slot, so it is lost for good;
// each such kill permanently shrinks the ring's 64 owner slots.
TEST(MpscRingReaping, ASlotLeftHalfRegisteredByAKilledProducerIsRecycled) {
  Ring r(8);
  r.control().producers[0].state.store(kSlotRegistering);  // the killed registrant
  for (std::uint32_t i = 1; i < kMpscMaxProducers; ++i)
    reg(r, i);
  Oracle alive;  // everyone registered is alive; the registrant's process is gone
  std::uint64_t v = 0;
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(r.try_push(5, static_cast<std::uint64_t>(i)));
    ASSERT_EQ(r.try_pop(v, alive), Status::ok);
    r.check_producers(alive);
  }
  EXPECT_TRUE(r.register_producer(id_a(100), id_b(100)).has_value())
      << "BUG: a slot left in state 'registering' (3) by a killed producer is never recycled";
}

}  // namespace
