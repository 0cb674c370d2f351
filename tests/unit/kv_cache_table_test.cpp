// The KV read cache (include/ringwire/kv/cache/): geometry_for, the CacheTable's write
// semantics (newer-only upserts, erase below a revision, limits, CLOCK eviction, tombstone
// rebuild against a std::map model, clear, repair), and CacheWriter/CacheReader over a real
// segment: every get() outcome, staleness, agent stop, re-attach to a replaced segment,
// counters, and a second live agent refused.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <iterator>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "common/kv_cache_support.hpp"
#include "common/shm_fixture.hpp"
#include "common/test_support.hpp"
#include "ringwire/core/clock.hpp"
#include "ringwire/kv/cache/cache_reader.hpp"
#include "ringwire/kv/cache/cache_writer.hpp"

namespace {

using namespace std::chrono_literals;
using ringwire::core::Errc;
using ringwire::core::now_ns;
using ringwire::kv::cache::AgentState;
using ringwire::kv::cache::CachedEntry;
using ringwire::kv::cache::CacheGeometry;
using ringwire::kv::cache::CacheOptions;
using ringwire::kv::cache::CacheReader;
using ringwire::kv::cache::CacheTable;
using ringwire::kv::cache::CacheWriter;
using ringwire::kv::cache::geometry_for;
using ringwire::kv::cache::kMaxProbe;
using ringwire::kv::cache::kMaxSlots;
using ringwire::kv::cache::kReaderSlots;
using ringwire::kv::cache::Lookup;
using ringwire::kv::cache::ReaderOptions;
using ringwire::kv::cache::ReadOutcome;
using ringwire::kv::cache::slot_size_for;
using ringwire::kv::cache::SlotState;
using ringwire::test::cat;
using ringwire::test::HeapTable;
using ringwire::test::raw_find;
using ringwire::test::raw_slot;
using ringwire::test::table_geometry;

// ---- geometry_for ------------------------------------------------------------------------

CacheOptions opts(std::uint64_t capacity, std::uint64_t memory = 0, std::uint32_t key_max = 128,
                  std::uint32_t value_max = 1024, std::uint32_t max_probe = 32) {
  CacheOptions o;
  o.name = "unused";
  o.capacity = capacity;
  o.memory = memory;
  o.key_max = key_max;
  o.value_max = value_max;
  o.max_probe = max_probe;
  return o;
}

void expect_rejected(const CacheOptions& o, const std::string& words) {
  auto g = geometry_for(o);
  ASSERT_FALSE(g.has_value()) << "accepted; expected a message with '" << words << "'";
  EXPECT_EQ(g.status().code(), Errc::invalid_argument);
  EXPECT_NE(g.status().message().find(words), std::string::npos) << g.status().to_string();
}

TEST(KvCacheGeometry, SlotsAreTheNextPowerOfTwoAtLeastTwiceTheCapacity) {
  for (std::uint64_t cap : {1ull, 2ull, 3ull, 100ull, 512ull, 513ull, 1000ull, 16384ull}) {
    SCOPED_TRACE(cat("capacity ", cap));
    auto g = geometry_for(opts(cap));
    ASSERT_TRUE(g.has_value()) << g.status().to_string();
    EXPECT_EQ(g->capacity, cap);
    EXPECT_GE(g->slots, 2 * cap);
    EXPECT_EQ(g->slots & (g->slots - 1), 0u);
    EXPECT_LT(g->slots / 2, 2 * cap) << "more than the next power of two";
    EXPECT_EQ(g->slot_size, slot_size_for(128, 1024));
    EXPECT_EQ(g->slot_size % 64, 0u);
    EXPECT_GE(g->slot_size, sizeof(ringwire::kv::cache::CacheSlot) + 128 + 1024);
    EXPECT_EQ(g->max_probe, std::min<std::uint64_t>(32, g->slots));
    EXPECT_EQ(g->reader_slots, kReaderSlots);
    EXPECT_EQ(g->payload_size, g->slots_offset + g->slots * g->slot_size);
    EXPECT_EQ(g->slots_offset % 4096, 0u);
    EXPECT_LT(g->state_offset, g->readers_offset);
    EXPECT_LT(g->readers_offset, g->slots_offset);
  }
}

TEST(KvCacheGeometry, MemoryLimitLowersCapacityToFitTwiceOver) {
  const std::uint64_t slot = slot_size_for(64, 256);
  auto g = geometry_for(opts(100'000, 1000 * 2 * slot, 64, 256));
  ASSERT_TRUE(g.has_value()) << g.status().to_string();
  EXPECT_EQ(g->capacity, 1000u);
  EXPECT_EQ(g->slots, 2048u);
  // A memory limit above what the capacity needs changes nothing.
  auto big = geometry_for(opts(10, 1ull << 30, 64, 256));
  ASSERT_TRUE(big.has_value());
  EXPECT_EQ(big->capacity, 10u);
  EXPECT_EQ(big->slots, 32u);
}

TEST(KvCacheGeometry, HugeCapacityIsClampedToTheSlotLimit) {
  auto g = geometry_for(opts(kMaxSlots * 4, 0, 8, 0));
  ASSERT_TRUE(g.has_value()) << g.status().to_string();
  EXPECT_EQ(g->slots, kMaxSlots);
  EXPECT_EQ(g->capacity, kMaxSlots / 2);
}

TEST(KvCacheGeometry, ProbeWindowIsClampedToTinyTables) {
  auto g = geometry_for(opts(1, 0, 8, 8, 32));
  ASSERT_TRUE(g.has_value()) << g.status().to_string();
  EXPECT_EQ(g->slots, 2u);
  EXPECT_EQ(g->max_probe, 2u);
}

TEST(KvCacheGeometry, BadOptionsAreRejectedWithAReason) {
  expect_rejected(opts(10, 0, 0), "--key-max");
  expect_rejected(opts(10, 0, 1025), "--key-max");
  expect_rejected(opts(10, 0, 16, (1u << 20) + 1), "--max-value");
  expect_rejected(opts(10, 0, 16, 16, 0), "probe window");
  expect_rejected(opts(10, 0, 16, 16, kMaxProbe + 1), "probe window");
  expect_rejected(opts(0), "--capacity");
  expect_rejected(opts(10, 100, 16, 16), "--memory 100");
  // The limits themselves are fine.
  EXPECT_TRUE(geometry_for(opts(10, 0, 1024, 1u << 20, kMaxProbe)).has_value());
  EXPECT_TRUE(geometry_for(opts(10, 0, 1, 0, 1)).has_value());
}

// ---- CacheTable semantics ------------------------------------------------------------------

CacheGeometry small_geometry() {
  return table_geometry(256, 128, 32, 64, 32);
}

std::string value_of(CacheTable& t, const std::string& key, std::int64_t* rev = nullptr) {
  CachedEntry e;
  const Lookup r = t.lookup(key, e);
  if (r != Lookup::hit) return r == Lookup::miss ? "<miss>" : "<busy>";
  if (rev != nullptr) *rev = e.mod_revision;
  return e.value;
}

TEST(KvCacheTable, UpsertThenLookupReturnsEveryField) {
  HeapTable h(small_geometry());
  auto& t = h.table();
  CachedEntry e;
  EXPECT_EQ(t.lookup("a", e), Lookup::miss);
  ASSERT_TRUE(t.upsert("a", "alpha", 7, 3, 2));
  ASSERT_EQ(t.lookup("a", e), Lookup::hit);
  EXPECT_EQ(e.value, "alpha");
  EXPECT_EQ(e.mod_revision, 7);
  EXPECT_EQ(e.create_revision, 3);
  EXPECT_EQ(e.version, 2);
  EXPECT_TRUE(t.contains("a"));
  EXPECT_FALSE(t.contains("b"));
  EXPECT_EQ(t.lookup("b", e), Lookup::miss);
  EXPECT_EQ(t.lookup("", e), Lookup::miss);
  // An empty value is a value.
  ASSERT_TRUE(t.upsert("empty", "", 8, 8, 1));
  ASSERT_EQ(t.lookup("empty", e), Lookup::hit);
  EXPECT_EQ(e.value, "");
  EXPECT_EQ(e.mod_revision, 8);
  EXPECT_EQ(t.state().entries.load(), 2u);
}

TEST(KvCacheTable, KeysDifferingOnlyPastTheFirstWordOrInLengthAreDistinct) {
  HeapTable h(small_geometry());
  auto& t = h.table();
  const std::vector<std::string> keys = {
      "abcdefgh", "abcdefghi", "abcdefghj", "abcdefg", "x", "abcdefgh12345678", "abcdefgh12345679"};
  for (std::size_t i = 0; i < keys.size(); ++i)
    ASSERT_TRUE(t.upsert(keys[i], cat("v", i), 10 + static_cast<int>(i), 1, 1));
  for (std::size_t i = 0; i < keys.size(); ++i)
    EXPECT_EQ(value_of(t, keys[i]), cat("v", i)) << "key #" << i;
  const std::string nul_key("abcdefgh\0", 9);
  ASSERT_TRUE(t.upsert(nul_key, "nul", 50, 1, 1));
  EXPECT_EQ(value_of(t, nul_key), "nul");
  EXPECT_EQ(value_of(t, "abcdefgh"), "v0");
}

TEST(KvCacheTable, AnOlderModRevisionNeverOverwritesANewerOne) {
  HeapTable h(small_geometry());
  auto& t = h.table();
  std::int64_t rev = 0;
  ASSERT_TRUE(t.upsert("k", "v10", 10, 1, 1));
  EXPECT_TRUE(t.upsert("k", "v5", 5, 1, 1));  // accepted, but ignored
  EXPECT_EQ(value_of(t, "k", &rev), "v10");
  EXPECT_EQ(rev, 10);
  EXPECT_TRUE(t.upsert("k", "v10b", 10, 1, 1));  // same revision: also ignored
  EXPECT_EQ(value_of(t, "k"), "v10");
  EXPECT_TRUE(t.upsert("k", "v11", 11, 1, 2));
  EXPECT_EQ(value_of(t, "k", &rev), "v11");
  EXPECT_EQ(rev, 11);
  EXPECT_EQ(t.state().entries.load(), 1u) << "a key lives in the table at most once";

  EXPECT_TRUE(t.update_if_cached("k", "v9", 9, 1, 1));
  EXPECT_EQ(value_of(t, "k"), "v11");
  EXPECT_TRUE(t.update_if_cached("k", "v12", 12, 1, 3));
  CachedEntry e;
  ASSERT_EQ(t.lookup("k", e), Lookup::hit);
  EXPECT_EQ(e.value, "v12");
  EXPECT_EQ(e.mod_revision, 12);
  EXPECT_EQ(e.version, 3);
}

TEST(KvCacheTable, UpdateIfCachedLeavesUncachedKeysAlone) {
  HeapTable h(small_geometry());
  auto& t = h.table();
  EXPECT_FALSE(t.update_if_cached("nope", "v", 5, 5, 1));
  EXPECT_FALSE(t.contains("nope"));
  EXPECT_EQ(t.state().entries.load(), 0u);
}

TEST(KvCacheTable, EraseRemovesOnlyAnEntryOlderThanTheDelete) {
  HeapTable h(small_geometry());
  auto& t = h.table();
  ASSERT_TRUE(t.upsert("k", "v", 10, 1, 1));
  EXPECT_FALSE(t.erase("k", 9)) << "a delete older than the entry";
  EXPECT_FALSE(t.erase("k", 10)) << "a delete at the entry's own revision";
  EXPECT_EQ(value_of(t, "k"), "v");
  EXPECT_TRUE(t.erase("k", 11));
  EXPECT_EQ(value_of(t, "k"), "<miss>");
  EXPECT_FALSE(t.contains("k"));
  EXPECT_FALSE(t.erase("k", 12)) << "nothing left to erase";
  EXPECT_FALSE(t.erase("never", 12));
  EXPECT_EQ(t.state().entries.load(), 0u);
  EXPECT_EQ(t.state().tombstones.load(), 1u);
  // Re-inserted after the delete, it reuses the tombstone.
  ASSERT_TRUE(t.upsert("k", "again", 13, 13, 1));
  EXPECT_EQ(value_of(t, "k"), "again");
  EXPECT_EQ(t.state().entries.load(), 1u);
  EXPECT_EQ(t.state().tombstones.load(), 0u);
}

TEST(KvCacheTable, TooLongKeysAndValuesAreNotCached) {
  HeapTable h(small_geometry());  // key_max 32, value_max 64
  auto& t = h.table();
  const std::string key32(32, 'k'), key33(33, 'k');
  const std::string val64(64, 'v'), val65(65, 'v');
  EXPECT_TRUE(t.upsert(key32, val64, 5, 5, 1));
  EXPECT_EQ(value_of(t, key32), val64);
  EXPECT_FALSE(t.upsert(key33, "v", 5, 5, 1));
  EXPECT_FALSE(t.contains(key33));
  CachedEntry e;
  EXPECT_EQ(t.lookup(key33, e), Lookup::miss);
  EXPECT_FALSE(t.upsert("short", val65, 5, 5, 1));
  EXPECT_FALSE(t.contains("short"));
  EXPECT_FALSE(t.upsert("", "v", 5, 5, 1)) << "the empty key";
  EXPECT_FALSE(t.update_if_cached(key33, "v", 6, 5, 1));
  EXPECT_FALSE(t.erase(key33, 6));
  EXPECT_EQ(t.state().entries.load(), 1u);
}

TEST(KvCacheTable, AValueGrowingPastTheLimitDropsTheCachedOne) {
  HeapTable h(small_geometry());
  auto& t = h.table();
  ASSERT_TRUE(t.upsert("k", "small", 5, 5, 1));
  // The watch path: the key changed to something too big to cache; the old value must go.
  EXPECT_TRUE(t.update_if_cached("k", std::string(65, 'x'), 6, 5, 2));
  EXPECT_EQ(value_of(t, "k"), "<miss>");
  EXPECT_EQ(t.state().entries.load(), 0u);
  // But an older too-big change is ignored like any older change.
  ASSERT_TRUE(t.upsert("j", "small", 9, 9, 1));
  EXPECT_TRUE(t.update_if_cached("j", std::string(65, 'x'), 8, 5, 2));
  EXPECT_EQ(value_of(t, "j"), "small");
}

TEST(KvCacheTable, ClockEvictionKeepsCapacityAndEvictsUnreferencedFirst) {
  // A probe window as wide as the table: eviction only ever comes from the CLOCK (a full
  // window, the other reason to evict, cannot happen with half the slots free).
  HeapTable h(table_geometry(64, 32, 16, 16, 64));
  auto& t = h.table();
  auto key = [](int i) { return cat("key", i); };
  std::int64_t rev = 1;
  for (int i = 0; i < 32; ++i)
    ASSERT_TRUE(t.upsert(key(i), cat("v", i), rev++, 1, 1));
  EXPECT_EQ(t.state().entries.load(), 32u);
  EXPECT_EQ(t.state().evictions.load(), 0u);
  // Readers touch the even keys.
  CachedEntry e;
  for (int i = 0; i < 32; i += 2)
    ASSERT_EQ(t.lookup(key(i), e), Lookup::hit);
  // 16 new keys: each one evicts one entry, always an unreferenced one (an old odd key or a
  // newer key, which nobody has read either); every referenced key survives.
  for (int i = 32; i < 48; ++i) {
    ASSERT_TRUE(t.upsert(key(i), cat("v", i), rev++, 1, 1));
    EXPECT_LE(t.state().entries.load(), 32u);
    EXPECT_TRUE(t.contains(key(i))) << "the key just inserted";
  }
  EXPECT_EQ(t.state().entries.load(), 32u);
  EXPECT_EQ(t.state().evictions.load(), 16u);
  for (int i = 0; i < 32; i += 2)
    EXPECT_TRUE(t.contains(key(i))) << key(i) << " was referenced and is gone";
  int unreferenced_left = 0;
  for (int i = 1; i < 32; i += 2)
    unreferenced_left += t.contains(key(i)) ? 1 : 0;
  for (int i = 32; i < 48; ++i)
    unreferenced_left += t.contains(key(i)) ? 1 : 0;
  EXPECT_EQ(unreferenced_left, 16) << "16 of the 32 unreferenced entries went";
  // Many more keys, nobody reading: the table stays at capacity, the newest key is always
  // there, and the once-referenced keys (their bit cleared by the hand) go too, eventually.
  for (int i = 48; i < 400; ++i) {
    ASSERT_TRUE(t.upsert(key(i), "v", rev++, 1, 1));
    ASSERT_LE(t.state().entries.load(), 32u);
    ASSERT_TRUE(t.contains(key(i)));
  }
  EXPECT_EQ(t.state().entries.load(), 32u);
  int old_left = 0;
  for (int i = 0; i < 48; ++i)
    old_left += t.contains(key(i)) ? 1 : 0;
  EXPECT_EQ(old_left, 0) << "CLOCK gave a second chance forever";
  EXPECT_EQ(t.state().evictions.load(), 400u - 32u);
}

// Random upserts/updates/erases (older and newer revisions) over a large key space, with at
// most 250 keys live (capacity 512: the model never needs an eviction), compared with a
// std::map after every step. Erased keys leave tombstones that new keys rarely reuse, so the
// table is rebuilt many times; every live key must still be found, with its latest value.
TEST(KvCacheTable, RandomOpsMatchAMapModelThroughTombstoneRebuilds) {
  const CacheGeometry g = table_geometry(1024, 512, 24, 40, 32);
  HeapTable h(g, 0xfeedface);
  auto& t = h.table();
  struct Model {
    std::string value;
    std::int64_t mod, create, version;
  };
  std::map<std::string, Model> model;
  std::mt19937_64 rng(20240611);
  constexpr std::uint64_t kKeySpace = 20'000;
  constexpr std::size_t kMaxLive = 250;
  auto random_key = [&] { return cat("k", rng() % kKeySpace); };
  auto live_key = [&] {
    auto it = model.begin();
    std::advance(it, static_cast<long>(rng() % model.size()));
    return it->first;
  };
  std::int64_t rev = 0;
  std::uint64_t rebuilds = 0, prev_tombstones = 0;
  const int ops = 40'000;
  for (int op = 0; op < ops; ++op) {
    const int kind = static_cast<int>(rng() % 20);
    const bool use_live = !model.empty() && (kind % 2 == 0 || model.size() >= kMaxLive);
    const std::string key = use_live ? live_key() : random_key();
    auto it = model.find(key);
    if (kind < 8 && (it != model.end() || model.size() < kMaxLive)) {
      // upsert, sometimes with a revision older than (or equal to) the cached one
      const bool older = it != model.end() && rng() % 4 == 0;
      const std::int64_t r = older ? it->second.mod - static_cast<std::int64_t>(rng() % 3) : ++rev;
      const std::string v = cat("v", r) + std::string(rng() % 30, 'x');
      ASSERT_TRUE(t.upsert(key, v, r, r, 1));
      if (it == model.end()) {
        // A new key's insert is where the table looks at its tombstones (erases alone only
        // add them): right after one they are below a quarter of the slots.
        ASSERT_LT(t.state().tombstones.load(), g.slots / 4) << "op " << op;
        model[key] = {v, r, r, 1};
      } else if (it->second.mod < r) {
        it->second = {v, r, r, 1};
      }
    } else if (kind < 11) {  // watch update: only cached keys change
      const std::int64_t r = ++rev;
      const std::string v = cat("u", r);
      const bool cached = t.update_if_cached(key, v, r, 1, 2);
      ASSERT_EQ(cached, it != model.end()) << "op " << op;
      if (it != model.end()) it->second = {v, r, 1, 2};
    } else {  // delete, sometimes not newer than the entry
      const bool older = it != model.end() && rng() % 5 == 0;
      const std::int64_t r = older ? it->second.mod : ++rev;
      const bool erased = t.erase(key, r);
      const bool expect = it != model.end() && it->second.mod < r;
      ASSERT_EQ(erased, expect) << "op " << op;
      if (expect) model.erase(it);
    }
    const std::uint64_t tomb = t.state().tombstones.load();
    if (tomb + 64 < prev_tombstones) ++rebuilds;
    prev_tombstones = tomb;
    ASSERT_EQ(t.state().entries.load(), model.size()) << "op " << op;
    if (op % 97 == 0 || op == ops - 1) {
      for (const auto& [k, m] : model) {
        CachedEntry e;
        ASSERT_EQ(t.lookup(k, e), Lookup::hit) << k << " at op " << op;
        ASSERT_EQ(e.value, m.value);
        ASSERT_EQ(e.mod_revision, m.mod);
        ASSERT_EQ(e.create_revision, m.create);
        ASSERT_EQ(e.version, m.version);
      }
      for (int n = 0; n < 100; ++n) {
        const std::string k = random_key();
        CachedEntry e;
        ASSERT_EQ(t.lookup(k, e), model.count(k) != 0 ? Lookup::hit : Lookup::miss) << k;
      }
    }
  }
  EXPECT_EQ(t.state().evictions.load(), 0u) << "the model assumes no evictions";
  EXPECT_GE(rebuilds, 5u) << "the tombstone rebuild was not exercised";
  EXPECT_EQ(t.state().clears.load(), 0u) << "a rebuild is not a clear";
  EXPECT_EQ(t.state().generation.load(), 0u);
  EXPECT_EQ(t.state().rebuilding.load(), 0u);
  EXPECT_EQ(t.state().dirty_slot.load(), -1);
  std::printf("[ model    ] %d ops, %zu live at the end, %llu rebuilds\n", ops, model.size(),
              static_cast<unsigned long long>(rebuilds));
}

TEST(KvCacheTable, ClearEmptiesEverythingAndCountsIt) {
  HeapTable h(small_geometry());
  auto& t = h.table();
  for (int i = 0; i < 50; ++i)
    ASSERT_TRUE(t.upsert(cat("k", i), "v", i + 1, 1, 1));
  ASSERT_TRUE(t.erase("k0", 100));
  t.clear();
  for (int i = 0; i < 50; ++i)
    EXPECT_FALSE(t.contains(cat("k", i)));
  EXPECT_EQ(t.state().entries.load(), 0u);
  EXPECT_EQ(t.state().tombstones.load(), 0u);
  EXPECT_EQ(t.state().clears.load(), 1u);
  EXPECT_EQ(t.state().generation.load(), 1u);
  for (std::uint64_t i = 0; i < t.geometry().slots; ++i) {
    auto& s = raw_slot(h.payload(), t.geometry(), i);
    EXPECT_EQ(s.state.load(), static_cast<std::uint32_t>(SlotState::empty));
    EXPECT_EQ(s.seq.load() % 2, 0u);
  }
  ASSERT_TRUE(t.upsert("k1", "after", 200, 200, 1));
  EXPECT_EQ(value_of(t, "k1"), "after");
}

TEST(KvCacheTable, RepairTurnsHalfWrittenSlotsIntoTombstones) {
  HeapTable h(small_geometry());
  auto& t = h.table();
  const auto& g = t.geometry();
  for (int i = 0; i < 10; ++i)
    ASSERT_TRUE(t.upsert(cat("k", i), cat("v", i), i + 1, 1, 1));
  const std::int64_t at = raw_find(h.payload(), g, t.seed(), "k3");
  ASSERT_GE(at, 0);
  auto& s = raw_slot(h.payload(), g, static_cast<std::uint64_t>(at));
  s.seq.store(s.seq.load() | 1);  // what a writer that died inside write_entry leaves
  t.state().dirty_slot.store(at);
  CachedEntry e;
  EXPECT_EQ(t.lookup("k3", e), Lookup::busy) << "a slot mid-write must not be read";
  EXPECT_EQ(t.repair(), 1u);
  EXPECT_EQ(t.lookup("k3", e), Lookup::miss);
  EXPECT_EQ(s.state.load(), static_cast<std::uint32_t>(SlotState::tombstone));
  EXPECT_EQ(s.seq.load() % 2, 0u);
  EXPECT_EQ(t.state().entries.load(), 9u);
  EXPECT_EQ(t.state().tombstones.load(), 1u);
  EXPECT_EQ(t.state().dirty_slot.load(), -1);
  for (int i = 0; i < 10; ++i) {
    if (i == 3) continue;
    EXPECT_EQ(value_of(t, cat("k", i)), cat("v", i));
  }
  // A writer that died mid-rebuild: the table is started afresh.
  t.state().rebuilding.store(1);
  EXPECT_EQ(t.repair(), g.slots);
  EXPECT_EQ(t.state().entries.load(), 0u);
  EXPECT_EQ(t.state().rebuilding.load(), 0u);
  EXPECT_FALSE(t.contains("k1"));
}

// ---- CacheWriter / CacheReader over a segment ------------------------------------------------

class KvCache : public ringwire::test::ShmTest {
 protected:
  CacheOptions options(std::uint64_t capacity = 64) {
    CacheOptions o;
    o.name = ringwire::test::unique_name("kvcache");
    o.capacity = capacity;
    o.key_max = 32;
    o.value_max = 128;
    o.max_probe = 32;
    return o;
  }
  static std::unique_ptr<CacheWriter> open_writer(const CacheOptions& o) {
    auto w = CacheWriter::open(o);
    EXPECT_TRUE(w.has_value()) << w.status().to_string();
    if (!w) return nullptr;
    return std::move(*w);
  }
  static void put(CacheWriter& w, const std::string& k, const std::string& v, std::int64_t rev) {
    CacheWriter::Guard g(w);
    ASSERT_TRUE(w.table().upsert(k, v, rev, rev, 1));
  }
  static void serve(CacheWriter& w, std::int64_t rev) {
    w.set_agent_state(AgentState::serving);
    w.confirm(rev, now_ns());
  }
  static ReaderOptions quick_reattach() {
    ReaderOptions r;
    r.reattach_interval = 1ms;
    r.request_fills = false;
    return r;
  }
};

TEST_F(KvCache, ReaderWithoutASegmentIsUnavailable) {
  const auto o = options();
  CacheReader r(o.name, quick_reattach());
  EXPECT_FALSE(r.attached());
  EXPECT_FALSE(r.attach_error().empty());
  CachedEntry e;
  EXPECT_EQ(r.get("k", e, 1s), ReadOutcome::unavailable);
  EXPECT_EQ(r.get("k", e, 1s), ReadOutcome::unavailable);
  auto st = r.stats();
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(st.status().code(), Errc::not_found);
}

TEST_F(KvCache, EveryGetOutcomeAndItsCounters) {
  const auto o = options();
  auto w = open_writer(o);
  ASSERT_TRUE(w);
  EXPECT_FALSE(w->took_over());
  EXPECT_EQ(w->state().agent_state.load(), static_cast<std::uint32_t>(AgentState::starting));
  EXPECT_EQ(w->state().agent_pid.load(), ::getpid());
  put(*w, "k", "value", 5);

  CacheReader r(o.name, quick_reattach());
  ASSERT_TRUE(r.attached()) << r.attach_error();
  CachedEntry e;
  ringwire::kv::cache::ReadInfo info;
  // Starting: never a hit, even with the entry in the table.
  EXPECT_EQ(r.get("k", e, 1h), ReadOutcome::stale);
  // Serving but not confirmed yet.
  w->set_agent_state(AgentState::serving);
  EXPECT_EQ(r.get("k", e, 1h), ReadOutcome::stale);
  // Confirmed long ago: stale for a tight bound, a hit for a loose one.
  w->confirm(5, now_ns() - 2'000'000'000ull);
  EXPECT_EQ(r.get("k", e, 500ms, &info), ReadOutcome::stale);
  EXPECT_GE(info.age_ns, 2'000'000'000ull);
  EXPECT_EQ(info.cache_revision, 5);
  EXPECT_EQ(r.get("k", e, 1h), ReadOutcome::hit);
  // Confirmed now.
  w->confirm(6, now_ns());
  e = {};
  ASSERT_EQ(r.get("k", e, 1s, &info), ReadOutcome::hit);
  EXPECT_EQ(e.value, "value");
  EXPECT_EQ(e.mod_revision, 5);
  EXPECT_EQ(info.cache_revision, 6);
  EXPECT_LT(info.age_ns, 1'000'000'000ull);
  EXPECT_EQ(r.get("other", e, 1s), ReadOutcome::miss);
  EXPECT_EQ(r.get(std::string(33, 'k'), e, 1s), ReadOutcome::too_big);
  // And the staleness bound is live: with time passing the same read turns stale.
  std::this_thread::sleep_for(30ms);
  EXPECT_EQ(r.get("k", e, 10ms), ReadOutcome::stale);
  // Disconnected from the cluster: stale whatever the contact time.
  w->set_agent_state(AgentState::disconnected);
  w->confirm(7, now_ns());
  EXPECT_EQ(r.get("k", e, 1h), ReadOutcome::stale);
  w->set_agent_state(AgentState::stopped);
  EXPECT_EQ(r.get("k", e, 1h), ReadOutcome::unavailable);
  w->set_agent_state(AgentState::serving);

  // 2 hits, 2 misses (miss + too_big), 6 fallbacks (stale x5, unavailable x1).
  auto st = r.stats();
  ASSERT_TRUE(st.has_value()) << st.status().to_string();
  EXPECT_EQ(st->hits, 2u);
  EXPECT_EQ(st->misses, 2u);
  EXPECT_EQ(st->fallbacks, 6u);
  EXPECT_EQ(st->readers, 1u);
  EXPECT_EQ(st->agent_state, "serving");
  EXPECT_EQ(st->agent_pid, ::getpid());
  EXPECT_TRUE(st->agent_alive);
  EXPECT_EQ(st->applied_revision, 7);
  EXPECT_EQ(st->entries, 1u);
  EXPECT_EQ(st->capacity, 64u);
  EXPECT_EQ(st->slots, 128u);
  EXPECT_EQ(st->key_max, 32u);
  EXPECT_EQ(st->value_max, 128u);
  EXPECT_DOUBLE_EQ(st->hit_rate, 2.0 / 10.0);
  // confirm never goes backwards.
  w->confirm(3, 1);
  EXPECT_EQ(w->state().applied_revision.load(), 7);
  EXPECT_GT(w->state().contact_ns.load(), 1u);
}

TEST_F(KvCache, AReaderThatGoesAwayFoldsItsCountersIntoTheRetiredTotals) {
  const auto o = options();
  auto w = open_writer(o);
  ASSERT_TRUE(w);
  put(*w, "k", "v", 2);
  serve(*w, 2);
  {
    CacheReader r(o.name, quick_reattach());
    CachedEntry e;
    for (int i = 0; i < 5; ++i)
      ASSERT_EQ(r.get("k", e, 1h), ReadOutcome::hit);
    ASSERT_EQ(r.get("x", e, 1h), ReadOutcome::miss);
    EXPECT_EQ(w->state().retired_hits.load(), 0u);
  }
  EXPECT_EQ(w->state().retired_hits.load(), 5u);
  EXPECT_EQ(w->state().retired_misses.load(), 1u);
  CacheReader r2(o.name, quick_reattach());
  auto st = r2.stats();
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->hits, 5u);
  EXPECT_EQ(st->misses, 1u);
  EXPECT_EQ(st->readers, 1u) << "the first reader's slot was freed";
  // reap_readers leaves live readers alone.
  w->reap_readers();
  EXPECT_EQ(r2.stats()->readers, 1u);
}

TEST_F(KvCache, ReaderIsUnavailableOnceTheAgentHasStopped) {
  const auto o = options();
  auto w = open_writer(o);
  ASSERT_TRUE(w);
  put(*w, "k", "v", 2);
  serve(*w, 2);
  CacheReader r(o.name, quick_reattach());
  CachedEntry e;
  ASSERT_EQ(r.get("k", e, 1h), ReadOutcome::hit);
  w.reset();
  EXPECT_FALSE(ringwire::test::shm_name_exists(o.name)) << "a stopping agent unlinks";
  EXPECT_EQ(r.get("k", e, 1h), ReadOutcome::unavailable);
  EXPECT_FALSE(r.attached());
  std::this_thread::sleep_for(5ms);
  EXPECT_EQ(r.get("k", e, 1h), ReadOutcome::unavailable);
}

TEST_F(KvCache, ReaderReattachesToANewAgentsSegment) {
  const auto o = options();
  auto w = open_writer(o);
  ASSERT_TRUE(w);
  put(*w, "k", "old", 2);
  serve(*w, 2);
  CacheReader r(o.name, quick_reattach());
  CachedEntry e;
  ASSERT_EQ(r.get("k", e, 1h), ReadOutcome::hit);
  ASSERT_EQ(e.value, "old");
  const auto first_session = w->segment().session_id();
  w.reset();
  auto w2 = open_writer(o);
  ASSERT_TRUE(w2);
  EXPECT_FALSE(w2->took_over()) << "the old agent unlinked, so this is a new segment";
  EXPECT_NE(w2->segment().session_id(), first_session);
  put(*w2, "k", "new", 9);
  serve(*w2, 9);
  EXPECT_TRUE(ringwire::test::eventually(
      [&] { return r.get("k", e, 1h) == ReadOutcome::hit && e.value == "new"; }, 2s))
      << "reader did not pick up the new segment";
  EXPECT_EQ(e.mod_revision, 9);
}

TEST_F(KvCache, ReaderNoticesTheNameNowNamesAnotherSegment) {
  // The old agent is still alive with its (now unnamed) segment; a new one took the name.
  const auto o = options();
  auto w = open_writer(o);
  ASSERT_TRUE(w);
  put(*w, "k", "old", 2);
  serve(*w, 2);
  CacheReader r(o.name, quick_reattach());
  CachedEntry e;
  ASSERT_EQ(r.get("k", e, 1h), ReadOutcome::hit);
  ASSERT_TRUE(w->segment().unlink().is_ok());
  auto w2 = open_writer(o);
  ASSERT_TRUE(w2);
  put(*w2, "k", "new", 9);
  serve(*w2, 9);
  EXPECT_TRUE(ringwire::test::eventually(
      [&] { return r.get("k", e, 1h) == ReadOutcome::hit && e.value == "new"; }, 2s))
      << "reader kept reading a segment that is no longer named";
  w.reset();  // must not unlink the new agent's segment
  EXPECT_TRUE(ringwire::test::shm_name_exists(o.name));
  ASSERT_EQ(r.get("k", e, 1h), ReadOutcome::hit);
  EXPECT_EQ(e.value, "new");
}

TEST_F(KvCache, BusySlotIsReportedNotWaitedFor) {
  const auto o = options();
  auto w = open_writer(o);
  ASSERT_TRUE(w);
  put(*w, "k", "v", 2);
  serve(*w, 2);
  const auto& g = w->table().geometry();
  const std::int64_t at = raw_find(w->segment().payload(), g, w->table().seed(), "k");
  ASSERT_GE(at, 0);
  auto& s = raw_slot(w->segment().payload(), g, static_cast<std::uint64_t>(at));
  const auto seq = s.seq.load();
  s.seq.store(seq | 1);
  CacheReader r(o.name, quick_reattach());
  CachedEntry e;
  EXPECT_EQ(r.get("k", e, 1h), ReadOutcome::busy);
  s.seq.store((seq | 1) + 1);
  EXPECT_EQ(r.get("k", e, 1h), ReadOutcome::hit);
  auto st = r.stats();
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->fallbacks, 1u);
  EXPECT_EQ(st->hits, 1u);
}

TEST_F(KvCache, ASecondLiveAgentIsRefused) {
  const auto o = options();
  auto w = open_writer(o);
  ASSERT_TRUE(w);
  put(*w, "k", "v", 2);
  // Same thread: the agent lock is a robust (not recursive, not error-checking) mutex, so the
  // trylock reports EBUSY for its own owner too.
  auto again = CacheWriter::open(o);
  ASSERT_FALSE(again.has_value()) << "a second agent was let in";
  EXPECT_EQ(again.status().code(), Errc::already_exists) << again.status().to_string();
  EXPECT_NE(again.status().message().find(std::to_string(::getpid())), std::string::npos)
      << again.status().to_string();
  // Another thread of the same process.
  ringwire::core::Status other;
  std::thread t([&] {
    auto r = CacheWriter::open(o);
    other = r.has_value() ? ringwire::core::Status() : r.status();
  });
  t.join();
  EXPECT_EQ(other.code(), Errc::already_exists) << other.to_string();
  // A different geometry does not get to replace a live agent's segment either.
  auto bigger = o;
  bigger.capacity = 1000;
  auto b = CacheWriter::open(bigger);
  ASSERT_FALSE(b.has_value());
  EXPECT_EQ(b.status().code(), Errc::already_exists);
  // The refusals changed nothing.
  EXPECT_TRUE(w->table().contains("k"));
  EXPECT_EQ(w->state().takeovers.load(), 0u);
  EXPECT_EQ(w->state().agent_pid.load(), ::getpid());
  EXPECT_EQ(w->state().agent_state.load(), static_cast<std::uint32_t>(AgentState::starting));
  // Once the first agent is gone, a new one starts.
  w.reset();
  auto w2 = open_writer(o);
  ASSERT_TRUE(w2);
  EXPECT_FALSE(w2->took_over());
  EXPECT_FALSE(w2->table().contains("k"));
}

TEST_F(KvCache, WriterGuardSerialisesThreads) {
  const auto o = options(1024);
  auto w = open_writer(o);
  ASSERT_TRUE(w);
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t) {
    ts.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        CacheWriter::Guard g(*w);
        w->table().upsert(cat("t", t) + cat(".", i), "v", 1, 1, 1);
      }
    });
  }
  for (auto& t : ts)
    t.join();
  EXPECT_EQ(w->state().entries.load(), 200u);
  EXPECT_EQ(w->state().lock_recoveries.load(), 0u);
}

}  // namespace
