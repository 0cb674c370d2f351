// The KV cache's seqlock slots between one writer thread and concurrent reader threads. The
// writer hammers a small hot key set (64 keys) with upserts, updates, erases, stale upserts
// and erases that must change nothing, and values grown past value_max; every value is
// encode_value(key, mod_revision) and revisions only increase. Readers look keys up without
// pause and check every hit: the value is exactly the one written for that key at the
// mod_revision it comes with (no torn or mixed value, no value of another key), the other
// revision fields belong to the same write, and per key the mod_revision one reader sees
// never goes backwards. Variants: a table that holds every key (no eviction, and the final
// contents must match the writer's model exactly), a table smaller than the key set (CLOCK
// evictions and tombstone rebuilds under the readers), and the same over a real segment with
// CacheWriter::Guard per operation and one reader going through CacheReader::get.
// Writer operations: 3,000,000 per table variant, a third of that over the segment
// (RINGWIRE_STRESS_MESSAGES overrides, TSan runs 10x fewer).
#include <unistd.h>

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/kv_cache_support.hpp"
#include "common/shm_fixture.hpp"
#include "common/test_support.hpp"
#include "ringwire/core/clock.hpp"
#include "ringwire/kv/cache/cache_reader.hpp"
#include "ringwire/kv/cache/cache_table.hpp"
#include "ringwire/kv/cache/cache_writer.hpp"

namespace {

using namespace std::chrono_literals;
using ringwire::core::now_ns;
using ringwire::kv::cache::AgentState;
using ringwire::kv::cache::CachedEntry;
using ringwire::kv::cache::CacheOptions;
using ringwire::kv::cache::CacheReader;
using ringwire::kv::cache::CacheTable;
using ringwire::kv::cache::CacheWriter;
using ringwire::kv::cache::Lookup;
using ringwire::kv::cache::ReaderOptions;
using ringwire::kv::cache::ReadOutcome;
using ringwire::test::encode_value;
using ringwire::test::HeapTable;
using ringwire::test::key_name;
using ringwire::test::table_geometry;
using ringwire::test::verify_value;
using ringwire::test::Watchdog;

constexpr std::uint64_t kKeys = 64;
constexpr std::uint64_t kDefaultOps = 3'000'000;
constexpr int kReaders = 3;
constexpr std::uint32_t kValueMax = 256;  // encode_value's values are at most 200 bytes

// The other revision fields are functions of (key, mod_revision), so a reader can tell that
// they come from the same write as the value.
std::int64_t create_of(std::uint64_t k, std::int64_t mod) {
  return mod - static_cast<std::int64_t>(k) - 1;
}
std::int64_t version_of(std::uint64_t k, std::int64_t mod) {
  return mod * 64 + static_cast<std::int64_t>(k);
}

std::uint64_t xorshift(std::uint64_t& s) {
  s ^= s << 13;
  s ^= s >> 7;
  s ^= s << 17;
  return s;
}

const std::vector<std::string>& keys() {
  static const std::vector<std::string> k = [] {
    std::vector<std::string> v;
    for (std::uint64_t i = 0; i < kKeys; ++i)
      v.push_back(key_name(i));
    return v;
  }();
  return k;
}

struct ReaderStats {
  std::uint64_t lookups = 0, hits = 0, misses = 0, busy = 0, other = 0;
  std::uint64_t advances = 0;  // a key's mod_revision seen higher than this reader saw before
  std::uint64_t errors = 0;
  std::string first_error;
  void fail(std::string what) {
    if (errors++ == 0) first_error = std::move(what);
  }
};

// Checks one hit against everything the writer promises.
void check_hit(ReaderStats& rs, std::vector<std::int64_t>& last, std::uint64_t k,
               const CachedEntry& e) {
  ++rs.hits;
  if (e.value.size() > kValueMax) {
    rs.fail("key " + std::to_string(k) + ": value of " + std::to_string(e.value.size()) + " bytes");
    return;
  }
  if (std::string bad = verify_value(e.value, k, e.mod_revision); !bad.empty()) {
    rs.fail("key " + std::to_string(k) + " mod_revision " + std::to_string(e.mod_revision) + ": " +
            bad);
    return;
  }
  if (e.create_revision != create_of(k, e.mod_revision) ||
      e.version != version_of(k, e.mod_revision)) {
    rs.fail("key " + std::to_string(k) + " mod_revision " + std::to_string(e.mod_revision) +
            ": create_revision " + std::to_string(e.create_revision) + " / version " +
            std::to_string(e.version) + " of another write");
    return;
  }
  if (e.mod_revision < last[k]) {
    rs.fail("key " + std::to_string(k) + ": mod_revision went back from " +
            std::to_string(last[k]) + " to " + std::to_string(e.mod_revision));
    return;
  }
  if (e.mod_revision > last[k]) {
    if (last[k] != 0) ++rs.advances;
    last[k] = e.mod_revision;
  }
}

// What the writer knows about a key (exact while nothing is evicted).
struct ModelEntry {
  bool present = false;
  std::int64_t mod = 0;
};

struct WriterStats {
  std::uint64_t ops = 0, upserts = 0, updates = 0, erases = 0, stale = 0, grown = 0;
  std::uint64_t rebuilds = 0;  // tombstones dropped by more than one op can reuse
  std::uint64_t errors = 0;
  std::string first_error;
  void fail(std::string what) {
    if (errors++ == 0) first_error = std::move(what);
  }
};

// One writer operation on `t` (the caller holds the writer lock if there is one). `exact`:
// no eviction can happen, so the table's answers must match the model.
void writer_step(CacheTable& t, std::uint64_t& rng, std::int64_t& rev,
                 std::array<ModelEntry, kKeys>& model, bool exact, WriterStats& ws) {
  const std::uint64_t r = xorshift(rng);
  const std::uint64_t k = r % kKeys;
  const std::string& key = keys()[k];
  ModelEntry& m = model[k];
  ++ws.ops;
  const std::uint64_t tombstones = t.state().tombstones.load(std::memory_order_relaxed);
  struct Rebuilds {  // counted after the operation, whichever way it leaves
    const CacheTable& t;
    std::uint64_t before;
    std::uint64_t& n;
    ~Rebuilds() {
      if (t.state().tombstones.load(std::memory_order_relaxed) + 1 < before) ++n;
    }
  } rebuilds{t, tombstones, ws.rebuilds};
  switch ((r >> 8) % 16) {
    case 0:
    case 1:
    case 2:
    case 3:
    case 4:
    case 5:
    case 6: {  // upsert at a new revision
      const std::int64_t mod = ++rev;
      if (!t.upsert(key, encode_value(k, mod), mod, create_of(k, mod), version_of(k, mod)))
        ws.fail("upsert refused a value that fits");
      m = {true, mod};
      ++ws.upserts;
      break;
    }
    case 7:
    case 8:
    case 9: {  // the watch path: only if cached
      const std::int64_t mod = ++rev;
      const bool cached =
          t.update_if_cached(key, encode_value(k, mod), mod, create_of(k, mod), version_of(k, mod));
      if (exact && cached != m.present) ws.fail("update_if_cached disagrees with the model");
      if (cached) m = {true, mod};
      if (!cached) m.present = false;
      ++ws.updates;
      break;
    }
    case 10:
    case 11:
    case 12: {  // delete at a new revision
      const std::int64_t mod = ++rev;
      const bool erased = t.erase(key, mod);
      if (exact && erased != m.present) ws.fail("erase disagrees with the model");
      m.present = false;
      ++ws.erases;
      break;
    }
    case 13: {  // an older revision arriving late: must change nothing
      // Only while the key is cached: an evicted key has no revision to protect, and the
      // late write would rightly come back (older than what readers saw before).
      const bool cached = t.contains(key);
      if (exact && cached != m.present) ws.fail("contains disagrees with the model");
      if (!cached || m.mod < 2) break;
      const std::int64_t old = m.mod - 1 - static_cast<std::int64_t>((r >> 16) % 4);
      if (old < 1) break;
      if (!t.upsert(key, encode_value(k, old), old, create_of(k, old), version_of(k, old)))
        ws.fail("stale upsert refused");
      ++ws.stale;
      break;
    }
    case 14: {  // a delete below the cached revision: must change nothing
      if (!m.present) break;
      if (t.erase(key, m.mod)) ws.fail("erase at the cached revision removed the entry");
      ++ws.stale;
      break;
    }
    default: {  // the value grew past what is cached: the old one must go
      const std::int64_t mod = ++rev;
      const std::string big(kValueMax + 1 + (r >> 20) % 64, 'x');
      if (t.upsert(key, big, mod, create_of(k, mod), version_of(k, mod)))
        ws.fail("upsert took a value over value_max");
      const bool cached = t.update_if_cached(key, big, mod, create_of(k, mod), version_of(k, mod));
      if (exact && cached != m.present) ws.fail("update_if_cached (too big) disagrees");
      m.present = false;
      ++ws.grown;
      break;
    }
  }
}

using LookupFn = std::function<Lookup(const std::string&, CachedEntry&)>;

struct RunResult {
  WriterStats writer;
  std::vector<ReaderStats> readers;
  std::array<ModelEntry, kKeys> model{};
  double seconds = 0;
};

// Starts one reader thread per element of `lookups`, waits until all run, then calls
// `write_all` on this thread and stops the readers when it returns.
RunResult run(const char* what, std::vector<LookupFn> lookups,
              const std::function<void(RunResult&)>& write_all) {
  RunResult res;
  res.readers.resize(lookups.size());
  std::atomic<bool> done{false};
  std::atomic<int> started{0};
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < lookups.size(); ++i) {
    threads.emplace_back([&, i] {
      ReaderStats& rs = res.readers[i];
      std::vector<std::int64_t> last(kKeys, 0);
      std::uint64_t rng = 0x9e3779b97f4a7c15ull * (i + 1);
      CachedEntry e;
      started.fetch_add(1);
      while (!done.load(std::memory_order_acquire)) {
        // Mostly a few keys at a time so slots are revisited while the writer is on them.
        const std::uint64_t k = xorshift(rng) % kKeys;
        ++rs.lookups;
        switch (lookups[i](keys()[k], e)) {
          case Lookup::hit:
            check_hit(rs, last, k, e);
            break;
          case Lookup::miss:
            ++rs.misses;
            break;
          case Lookup::busy:
            ++rs.busy;
            break;
          default:
            ++rs.other;
            rs.fail("lookup returned something other than hit/miss/busy");
        }
      }
    });
  }
  while (started.load() < static_cast<int>(lookups.size()))
    std::this_thread::yield();
  const auto t0 = now_ns();
  write_all(res);
  res.seconds = ringwire::test::seconds_since(t0);
  done.store(true, std::memory_order_release);
  for (auto& t : threads)
    t.join();

  const auto& w = res.writer;
  std::printf(
      "[ stress   ] %s: %llu writer ops (%llu upserts, %llu updates, %llu erases, %llu stale, "
      "%llu grown, %llu rebuilds) in %.2f s\n",
      what, static_cast<unsigned long long>(w.ops), static_cast<unsigned long long>(w.upserts),
      static_cast<unsigned long long>(w.updates), static_cast<unsigned long long>(w.erases),
      static_cast<unsigned long long>(w.stale), static_cast<unsigned long long>(w.grown),
      static_cast<unsigned long long>(w.rebuilds), res.seconds);
  for (std::size_t i = 0; i < res.readers.size(); ++i) {
    const auto& r = res.readers[i];
    std::printf(
        "[ stress   ]   reader %zu: %llu lookups, %llu hits (%llu revision advances), %llu "
        "misses, %llu busy\n",
        i, static_cast<unsigned long long>(r.lookups), static_cast<unsigned long long>(r.hits),
        static_cast<unsigned long long>(r.advances), static_cast<unsigned long long>(r.misses),
        static_cast<unsigned long long>(r.busy));
  }
  std::fflush(stdout);
  EXPECT_EQ(w.errors, 0u) << w.first_error;
  for (std::size_t i = 0; i < res.readers.size(); ++i) {
    const auto& r = res.readers[i];
    EXPECT_EQ(r.errors, 0u) << "reader " << i << ": " << r.errors
                            << " bad hits, first: " << r.first_error;
    // A reader that saw (almost) nothing proves nothing: it must have read values and seen
    // them change under it.
    EXPECT_GT(r.hits, 0u) << "reader " << i;
    EXPECT_GT(r.advances, 0u) << "reader " << i << " never saw a key change";
  }
  return res;
}

std::uint64_t ops() {
  return ringwire::test::stress_messages(kDefaultOps);
}

LookupFn table_lookup(const CacheTable& t) {
  return [&t](const std::string& k, CachedEntry& e) { return t.lookup(k, e); };
}

// Every key in a final pass, with the writer stopped: hits must be what the model says.
void check_final(const CacheTable& t, const std::array<ModelEntry, kKeys>& model, bool exact) {
  std::uint64_t hits = 0;
  for (std::uint64_t k = 0; k < kKeys; ++k) {
    CachedEntry e;
    const Lookup r = t.lookup(keys()[k], e);
    ASSERT_NE(r, Lookup::busy) << "key " << k << " busy with no writer";
    if (r == Lookup::hit) {
      ++hits;
      EXPECT_TRUE(model[k].present) << "key " << k << " was deleted, yet it is cached";
      EXPECT_EQ(e.mod_revision, model[k].mod) << "key " << k;
      EXPECT_EQ(verify_value(e.value, k, e.mod_revision), "") << "key " << k;
    } else if (exact) {
      EXPECT_FALSE(model[k].present) << "key " << k << " is missing";
    }
  }
  EXPECT_EQ(t.state().entries.load(), hits) << "entry count disagrees with the table";
  EXPECT_LE(hits, t.geometry().capacity);
}

TEST(KvCacheSeqlockThreads, HotKeysFitInTheTable) {
  Watchdog dog(500);
  // 256 slots, room for 128 entries: the 64 keys never force an eviction.
  HeapTable h(table_geometry(256, 128, 32, kValueMax, 32));
  CacheTable& t = h.table();
  std::vector<LookupFn> readers;
  for (int i = 0; i < kReaders; ++i)
    readers.push_back(table_lookup(t));
  const std::uint64_t n = ops();
  auto res = run("64 keys, capacity 128", readers, [&](RunResult& r) {
    std::uint64_t rng = 12345;
    std::int64_t rev = 0;
    for (std::uint64_t i = 0; i < n; ++i)
      writer_step(t, rng, rev, r.model, true, r.writer);
  });
  EXPECT_EQ(t.state().evictions.load(), 0u);
  check_final(t, res.model, true);
}

TEST(KvCacheSeqlockThreads, HotKeysOverflowTheTableAndGetEvicted) {
  Watchdog dog(500);
  // Room for 24 entries of the 64 keys: upserts of absent keys evict (CLOCK), and the
  // tombstones they leave trigger whole-table rebuilds, all under the readers' feet.
  HeapTable h(table_geometry(64, 24, 32, kValueMax, 16));
  CacheTable& t = h.table();
  std::vector<LookupFn> readers;
  for (int i = 0; i < kReaders; ++i)
    readers.push_back(table_lookup(t));
  const std::uint64_t n = ops();
  auto res = run("64 keys, capacity 24", readers, [&](RunResult& r) {
    std::uint64_t rng = 67890;
    std::int64_t rev = 0;
    for (std::uint64_t i = 0; i < n; ++i)
      writer_step(t, rng, rev, r.model, false, r.writer);
  });
  std::printf("[ stress   ]   %llu evictions\n",
              static_cast<unsigned long long>(t.state().evictions.load()));
  EXPECT_GT(t.state().evictions.load(), 0u) << "the variant did not evict";
  EXPECT_GT(res.writer.rebuilds, 0u) << "the variant did not rebuild the table";
  check_final(t, res.model, false);
}

class KvCacheSeqlockSegment : public ringwire::test::ShmTest {};

TEST_F(KvCacheSeqlockSegment, WriterGuardAndCacheReaderOverASegment) {
  Watchdog dog(500);
  CacheOptions o;
  o.name = ringwire::test::unique_name("seqlock");
  o.capacity = 48;  // 128 slots, 48 entries: evictions as well
  o.key_max = 32;
  o.value_max = kValueMax;
  o.max_probe = 32;
  auto opened = CacheWriter::open(o);
  ASSERT_TRUE(opened.has_value()) << opened.status().to_string();
  CacheWriter& w = **opened;
  w.set_agent_state(AgentState::serving);
  w.confirm(0, now_ns());
  // Two readers on their own attach of the segment's payload, one through CacheReader.
  CacheTable a, b;
  ASSERT_TRUE(a.attach(w.segment().payload(), w.segment().payload_size()));
  ASSERT_TRUE(b.attach(w.segment().payload(), w.segment().payload_size()));
  ReaderOptions ro;
  ro.request_fills = false;
  auto cr = std::make_unique<CacheReader>(o.name, ro);
  ASSERT_TRUE(cr->attached()) << cr->attach_error();
  std::uint64_t unexpected_outcomes = 0;
  LookupFn via_reader = [&](const std::string& k, CachedEntry& e) {
    switch (cr->get(k, e, 1h)) {
      case ReadOutcome::hit:
        return Lookup::hit;
      case ReadOutcome::miss:
        return Lookup::miss;
      case ReadOutcome::busy:
        return Lookup::busy;
      default:
        ++unexpected_outcomes;  // stale / unavailable / too_big: not with a serving agent
        return Lookup::miss;
    }
  };
  const std::uint64_t n = ops() / 3;  // a mutex round trip per operation
  auto res = run("segment, Guard per op, capacity 48",
                 {table_lookup(a), table_lookup(b), via_reader}, [&](RunResult& r) {
                   std::uint64_t rng = 424242;
                   std::int64_t rev = 0;
                   for (std::uint64_t i = 0; i < n; ++i) {
                     CacheWriter::Guard g(w);
                     writer_step(w.table(), rng, rev, r.model, false, r.writer);
                     if ((i & 1023) == 0) w.confirm(rev, now_ns());
                   }
                 });
  EXPECT_EQ(unexpected_outcomes, 0u);
  EXPECT_GT(w.state().evictions.load(), 0u);
  EXPECT_EQ(w.state().lock_recoveries.load(), 0u);
  check_final(w.table(), res.model, false);
  auto st = cr->stats();
  ASSERT_TRUE(st.has_value()) << st.status().to_string();
  EXPECT_EQ(st->hits, res.readers[2].hits) << "CacheReader counted other hits than it returned";
  cr.reset();
  opened->reset();
  EXPECT_FALSE(ringwire::test::shm_name_exists(o.name));
}

}  // namespace
