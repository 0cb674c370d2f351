// CacheTable against a hostile writer that scribbles over the shared bytes: the reader must
// reject a control block whose geometry does not hold up, never read outside the payload
// (the table lives in heap memory of exactly the payload size, so ASan sees any stray read),
// return only hit / miss / busy, and never hang: every lookup is bounded, a slot stuck
// mid-write (odd seq) reads as busy. Deterministic seeds; an alarm turns a hang into a failure.
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "common/kv_cache_support.hpp"
#include "common/test_support.hpp"
#include "ringwire/kv/cache/cache_layout.hpp"
#include "ringwire/kv/cache/cache_table.hpp"

namespace {

using ringwire::kv::cache::CacheControl;
using ringwire::kv::cache::CachedEntry;
using ringwire::kv::cache::CacheGeometry;
using ringwire::kv::cache::CacheSlot;
using ringwire::kv::cache::CacheTable;
using ringwire::kv::cache::key_hash;
using ringwire::kv::cache::Lookup;
using ringwire::kv::cache::SlotState;
using ringwire::test::cat;
using ringwire::test::HeapTable;
using ringwire::test::raw_find;
using ringwire::test::raw_slot;
using ringwire::test::table_geometry;
using ringwire::test::Watchdog;

CacheGeometry geometry() {
  return table_geometry(256, 128, 40, 100, 16);
}

// Fills a table with keys "k0".."k(n-1)" whose value is "v<i>" padded.
void fill(CacheTable& t, int n) {
  for (int i = 0; i < n; ++i) {
    ASSERT_TRUE(t.upsert(cat("k", i),
                         cat("v", i) + std::string(static_cast<std::size_t>(i % 50), 'p'), i + 1, 1,
                         1));
  }
}

// Touches every byte of a hit, so ASan checks the copy, and checks the bounds the reader
// promised from its private geometry.
void check_hit(const CachedEntry& e, const CacheGeometry& g) {
  ASSERT_LE(e.value.size(), g.value_max);
  unsigned sum = 0;
  for (char c : e.value)
    sum += static_cast<unsigned char>(c);
  (void)sum;
}

// ---- attach rejects bad geometry ----------------------------------------------------------

TEST(KvCacheHostile, AttachRejectsEveryGeometryThatDoesNotAddUp) {
  HeapTable h(geometry());
  const CacheControl good = *reinterpret_cast<CacheControl*>(h.payload());
  auto& c = *reinterpret_cast<CacheControl*>(h.payload());
  struct Case {
    const char* what;
    void (*mutate)(CacheControl&);
  };
  const std::vector<Case> cases = {
      {"slots 0", [](CacheControl& x) { x.slots = 0; }},
      {"slots 1", [](CacheControl& x) { x.slots = 1; }},
      {"slots not a power of two", [](CacheControl& x) { x.slots = 255; }},
      {"slots doubled (payload too small)", [](CacheControl& x) { x.slots *= 2; }},
      {"slots huge", [](CacheControl& x) { x.slots = std::uint64_t{1} << 40; }},
      {"slots all ones", [](CacheControl& x) { x.slots = ~std::uint64_t{0}; }},
      {"capacity 0", [](CacheControl& x) { x.capacity = 0; }},
      {"capacity over half the slots", [](CacheControl& x) { x.capacity = x.slots / 2 + 1; }},
      {"key_max 0", [](CacheControl& x) { x.key_max = 0; }},
      {"key_max over the limit", [](CacheControl& x) { x.key_max = 1025; }},
      {"key_max changed", [](CacheControl& x) { x.key_max += 64; }},
      {"value_max over the limit", [](CacheControl& x) { x.value_max = (1u << 20) + 1; }},
      {"value_max changed", [](CacheControl& x) { x.value_max += 64; }},
      {"value_max huge", [](CacheControl& x) { x.value_max = 0xffffffffu; }},
      {"slot_size smaller", [](CacheControl& x) { x.slot_size -= 64; }},
      {"slot_size larger", [](CacheControl& x) { x.slot_size += 8; }},
      {"max_probe 0", [](CacheControl& x) { x.max_probe = 0; }},
      {"max_probe over the limit", [](CacheControl& x) { x.max_probe = 65; }},
      {"reader_slots 0", [](CacheControl& x) { x.reader_slots = 0; }},
      {"reader_slots huge", [](CacheControl& x) { x.reader_slots = 100'000; }},
      {"reader_slots changed", [](CacheControl& x) { x.reader_slots += 100; }},
      {"state_offset moved", [](CacheControl& x) { x.state_offset += 128; }},
      {"state_offset far away", [](CacheControl& x) { x.state_offset = ~std::uint64_t{0} - 8; }},
      {"readers_offset moved", [](CacheControl& x) { x.readers_offset -= 128; }},
      {"slots_offset moved", [](CacheControl& x) { x.slots_offset += 4096; }},
      {"slots_offset zero", [](CacheControl& x) { x.slots_offset = 0; }},
  };
  for (const auto& k : cases) {
    SCOPED_TRACE(k.what);
    c = good;
    k.mutate(c);
    CacheTable t;
    EXPECT_FALSE(t.attach(h.payload(), h.size()));
  }
  c = good;
  CacheTable t;
  EXPECT_FALSE(t.attach(nullptr, h.size()));
  EXPECT_FALSE(t.attach(h.payload(), sizeof(CacheControl) - 1));
  EXPECT_FALSE(t.attach(h.payload(), h.size() - 1)) << "a payload one byte short";
  EXPECT_TRUE(t.attach(h.payload(), h.size()));
}

// A smaller table than formatted (slots halved, capacity still fitting) is a consistent
// geometry inside the payload: attach may take it, and reads stay inside the payload.
TEST(KvCacheHostile, AGeometryShrunkInsideThePayloadIsSafeToRead) {
  HeapTable h(geometry());
  fill(h.table(), 60);
  auto& c = *reinterpret_cast<CacheControl*>(h.payload());
  c.slots /= 2;
  c.capacity = c.slots / 2;
  CacheTable t;
  ASSERT_TRUE(t.attach(h.payload(), h.size()));
  EXPECT_LE(t.geometry().payload_size, h.size());
  for (int i = 0; i < 60; ++i) {
    CachedEntry e;
    const Lookup r = t.lookup(cat("k", i), e);
    ASSERT_TRUE(r == Lookup::hit || r == Lookup::miss || r == Lookup::busy);
    if (r == Lookup::hit) check_hit(e, t.geometry());
  }
}

// The reader copies the geometry at attach: changing the control block afterwards (a hostile
// writer growing value_max, slots or the probe window) changes nothing for it.
TEST(KvCacheHostile, ControlBlockChangedAfterAttachIsIgnored) {
  HeapTable h(geometry());
  fill(h.table(), 60);
  CacheTable reader;
  ASSERT_TRUE(reader.attach(h.payload(), h.size()));
  const CacheGeometry before = reader.geometry();
  auto& c = *reinterpret_cast<CacheControl*>(h.payload());
  c.slots = std::uint64_t{1} << 40;
  c.value_max = 0xffffffffu;
  c.key_max = 0xffffffffu;
  c.max_probe = 0xffffffffu;
  c.slot_size = 0xffffffffu;
  c.slots_offset = 0x7fffffffffffull;
  c.hash_seed ^= 1;
  EXPECT_EQ(reader.geometry().slots, before.slots);
  EXPECT_EQ(reader.geometry().value_max, before.value_max);
  for (int i = 0; i < 60; ++i) {
    CachedEntry e;
    ASSERT_EQ(reader.lookup(cat("k", i), e), Lookup::hit) << i;
    EXPECT_EQ(e.value, cat("v", i) + std::string(static_cast<std::size_t>(i % 50), 'p'));
  }
  // A fresh attach to the scribbled block is refused.
  CacheTable again;
  EXPECT_FALSE(again.attach(h.payload(), h.size()));
}

// ---- hostile slot contents ----------------------------------------------------------------

TEST(KvCacheHostile, LengthsBeyondTheGeometryAreNeverCopied) {
  HeapTable h(geometry());
  auto& t = h.table();
  const auto& g = t.geometry();
  fill(t, 20);
  for (int i = 0; i < 20; ++i) {
    const std::string key = cat("k", i);
    const std::int64_t at = raw_find(h.payload(), g, t.seed(), key);
    ASSERT_GE(at, 0);
    auto& s = raw_slot(h.payload(), g, static_cast<std::uint64_t>(at));
    const std::uint32_t huge[] = {g.value_max + 1, g.value_max + 8, 1u << 20, 0x7fffffffu,
                                  0xffffffffu};
    const auto saved = s.value_len.load();
    for (std::uint32_t len : huge) {
      s.value_len.store(len);
      CachedEntry e;
      EXPECT_NE(t.lookup(key, e), Lookup::hit) << "value_len " << len << " was served";
    }
    s.value_len.store(saved);
    // A key_len that no key matches: the key is just not there (no read of key_len bytes).
    s.key_len.store(0xffffffffu);
    CachedEntry e;
    EXPECT_EQ(t.lookup(key, e), Lookup::miss);
  }
}

TEST(KvCacheHostile, StuckOddSeqIsBusyNotAHang) {
  Watchdog dog(60);
  HeapTable h(geometry());
  auto& t = h.table();
  const auto& g = t.geometry();
  fill(t, 40);
  // Every slot stuck mid-write: every lookup is busy, whatever the key.
  for (std::uint64_t i = 0; i < g.slots; ++i)
    raw_slot(h.payload(), g, i).seq.store(2 * i + 1);
  for (int i = 0; i < 1000; ++i) {
    CachedEntry e;
    ASSERT_EQ(t.lookup(cat("k", i), e), Lookup::busy) << i;
  }
  // Only the slot of one key stuck: that key is busy; a key whose window does not pass
  // through it is unaffected.
  t.repair();
  fill(t, 40);
  const std::int64_t at = raw_find(h.payload(), g, t.seed(), "k7");
  ASSERT_GE(at, 0);
  auto& s = raw_slot(h.payload(), g, static_cast<std::uint64_t>(at));
  s.seq.store(s.seq.load() | 1);
  CachedEntry e;
  EXPECT_EQ(t.lookup("k7", e), Lookup::busy);
  int others_hit = 0;
  for (int i = 0; i < 40; ++i) {
    if (i == 7) continue;
    const Lookup r = t.lookup(cat("k", i), e);
    ASSERT_NE(r, Lookup::miss) << "k" << i << " is in the table";
    others_hit += r == Lookup::hit ? 1 : 0;
  }
  EXPECT_GT(others_hit, 30) << "one stuck slot made most of the table unreadable";
}

// Random garbage everywhere a hostile writer can reach (slot headers, data areas, the state
// block, reader slots), interleaved with legitimate writes and a repair now and then. Every
// lookup returns hit/miss/busy, a hit's value fits the private geometry, and nothing reads
// outside the payload (ASan).
TEST(KvCacheHostile, RandomScribblesNeverBreakTheReader) {
  Watchdog dog(120);
  const CacheGeometry g0 = table_geometry(128, 64, 24, 64, 16);
  std::mt19937_64 rng(0xC0FFEE);
  std::uint64_t hits = 0, misses = 0, busy = 0;
  for (int round = 0; round < 1500; ++round) {
    HeapTable h(g0, rng());
    auto& t = h.table();
    const auto& g = t.geometry();
    auto* base = h.payload();
    // A valid table first, so scribbles land on plausible slots.
    for (int i = 0; i < 40; ++i)
      ASSERT_TRUE(t.upsert(cat("k", i), std::string(static_cast<std::size_t>(rng() % 65), 'v'),
                           i + 1, 1, 1));
    for (int step = 0; step < 200; ++step) {
      const std::uint64_t i = rng() % g.slots;
      auto& s = raw_slot(base, g, i);
      switch (rng() % 10) {
        case 0:  // any bytes in the slot header
          for (std::size_t b = 0; b < sizeof(CacheSlot); ++b)
            reinterpret_cast<unsigned char*>(&s)[b] = static_cast<unsigned char>(rng());
          break;
        case 1:  // any bytes in the data area
          for (std::size_t b = sizeof(CacheSlot); b < g.slot_size; ++b)
            reinterpret_cast<unsigned char*>(&s)[b] = static_cast<unsigned char>(rng());
          break;
        case 2:
          s.value_len.store(static_cast<std::uint32_t>(rng()));
          break;
        case 3:
          s.key_len.store(static_cast<std::uint32_t>(rng()));
          break;
        case 4:
          s.state.store(static_cast<std::uint32_t>(rng() % 2 ? rng() : rng() % 4));
          break;
        case 5:
          s.seq.store(rng());
          break;
        case 6: {  // a slot that claims a real key, with a length past the geometry
          const std::string key = cat("k", static_cast<long long>(rng() % 40));
          const std::int64_t at = raw_find(base, g, t.seed(), key);
          if (at >= 0) {
            raw_slot(base, g, static_cast<std::uint64_t>(at))
                .value_len.store(g.value_max + 1 + static_cast<std::uint32_t>(rng() % 100000));
          }
          break;
        }
        case 7:  // the shared state block (the reader does not use it in lookup)
          for (std::size_t b = 0; b < sizeof(ringwire::kv::cache::CacheState); ++b)
            reinterpret_cast<unsigned char*>(base + g.state_offset)[b] =
                static_cast<unsigned char>(rng());
          break;
        case 8: {  // a forged entry: right hash and key, garbage value of legal length
          const std::string key = cat("k", static_cast<long long>(rng() % 60));
          s.seq.store(s.seq.load() & ~std::uint64_t{1});
          s.hash.store(key_hash(key, t.seed()));
          s.key_len.store(static_cast<std::uint32_t>(key.size()));
          std::memcpy(reinterpret_cast<std::byte*>(&s) + sizeof(CacheSlot), key.data(), key.size());
          s.value_len.store(static_cast<std::uint32_t>(rng() % (g.value_max + 1)));
          s.state.store(static_cast<std::uint32_t>(SlotState::full));
          break;
        }
        default:
          break;  // no scribble this step
      }
      for (int q = 0; q < 8; ++q) {
        const std::string key = cat("k", static_cast<long long>(rng() % 80));
        CachedEntry e;
        const Lookup r = t.lookup(key, e);
        ASSERT_TRUE(r == Lookup::hit || r == Lookup::miss || r == Lookup::busy);
        if (r == Lookup::hit) {
          check_hit(e, g);
          ++hits;
        } else {
          ++(r == Lookup::miss ? misses : busy);
        }
      }
    }
  }
  std::printf("[ hostile  ] %llu hits, %llu misses, %llu busy\n",
              static_cast<unsigned long long>(hits), static_cast<unsigned long long>(misses),
              static_cast<unsigned long long>(busy));
  // The mix shows the scribbles reached all three outcomes (else the test proved little).
  EXPECT_GT(hits, 0u);
  EXPECT_GT(misses, 0u);
  EXPECT_GT(busy, 0u);
}

// Whole-payload garbage (random bytes everywhere, the control block included): attach either
// refuses it, or accepts a geometry inside the payload; lookups then stay in bounds.
TEST(KvCacheHostile, RandomControlBlocksAttachOnlyWhenConsistent) {
  Watchdog dog(120);
  HeapTable h(geometry());
  fill(h.table(), 50);
  const CacheControl good = *reinterpret_cast<CacheControl*>(h.payload());
  auto& c = *reinterpret_cast<CacheControl*>(h.payload());
  std::mt19937_64 rng(77);
  int accepted = 0;
  for (int round = 0; round < 20'000; ++round) {
    c = good;
    // Change 1-3 geometry fields to random or near-valid values.
    for (int n = 0; n < 1 + static_cast<int>(rng() % 3); ++n) {
      const std::uint64_t v = rng() % 2 ? rng() : (std::uint64_t{1} << (rng() % 12));
      switch (rng() % 10) {
        case 0:
          c.slots = v;
          break;
        case 1:
          c.capacity = v;
          break;
        case 2:
          c.key_max = static_cast<std::uint32_t>(v);
          break;
        case 3:
          c.value_max = static_cast<std::uint32_t>(v);
          break;
        case 4:
          c.slot_size = static_cast<std::uint32_t>(v);
          break;
        case 5:
          c.max_probe = static_cast<std::uint32_t>(v);
          break;
        case 6:
          c.reader_slots = static_cast<std::uint32_t>(v);
          break;
        case 7:
          c.state_offset = v;
          break;
        case 8:
          c.readers_offset = v;
          break;
        default:
          c.slots_offset = v;
          break;
      }
    }
    CacheTable t;
    if (!t.attach(h.payload(), h.size())) continue;
    ++accepted;
    const auto& g = t.geometry();
    ASSERT_LE(g.payload_size, h.size());
    ASSERT_EQ(g.slots & (g.slots - 1), 0u);
    ASSERT_LE(g.max_probe, g.slots);
    for (int q = 0; q < 4; ++q) {
      CachedEntry e;
      const Lookup r = t.lookup(cat("k", static_cast<long long>(rng() % 50)), e);
      ASSERT_TRUE(r == Lookup::hit || r == Lookup::miss || r == Lookup::busy);
      if (r == Lookup::hit) check_hit(e, g);
    }
  }
  EXPECT_GT(accepted, 0) << "no consistent variant was generated (the unchanged cases)";
}

}  // namespace
