// The KV cache agent killed while it holds the writer lock. A child process creates the cache
// segment (CacheWriter::open), fills it, and then writes under CacheWriter::Guard without
// pause; the parent reads the segment from another process the whole time, then kill -9s the
// child at a random moment (repeated, each time a fresh segment), or the child dies at a
// chosen point: in the middle of a slot write (raise(SIGKILL), or _exit without unlocking),
// or in the middle of a table rebuild. Then, in the parent:
//   * readers (CacheReader and a plain CacheTable view) never hang and never serve a wrong
//     value: every lookup returns hit / miss / busy, every hit is exactly what was written for
//     that key at its mod_revision, no revision the child never wrote, none going backwards;
//   * a new CacheWriter::open takes the segment over (took_over), its first writer lock gets
//     EOWNERDEAD exactly when the child died holding it (lock_recoveries), and the repair
//     leaves no slot mid-write (repaired_slots counts them) and counters that match the slots;
//   * the entries left all verify, readers hit again once the new agent confirms, new upserts
//     work, and the segment is gone from /dev/shm when the new agent ends.
#include <sys/mman.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <new>
#include <random>
#include <string>
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
using ringwire::core::Errc;
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
using ringwire::kv::cache::SlotState;
using ringwire::test::Child;
using ringwire::test::encode_value;
using ringwire::test::key_name;
using ringwire::test::Pipe;
using ringwire::test::raw_find;
using ringwire::test::raw_slot;
using ringwire::test::verify_value;
using ringwire::test::Watchdog;

constexpr std::uint64_t kKeys = 64;       // more than the capacity: evictions and rebuilds
constexpr std::uint64_t kCapacity = 48;   // 128 slots
constexpr std::uint64_t kFilled = 16;     // keys the deterministic variants fill
constexpr std::uint64_t kHalfKey = 5;     // the key whose slot the child leaves half-written
constexpr std::uint64_t kAbsentKey = 63;  // never written; its lookup meets the rebuild's slot
constexpr int kOpsPerGuard = 8;           // writes per writer-lock hold in the random variant
constexpr std::uint64_t kChildGiveUpNs = 60'000'000'000ull;  // never outlive a broken parent

// Where the child is, in memory shared with the parent (an anonymous MAP_SHARED page made
// before fork). phase: 0 no writer lock, 1 locking, 2 holding it, 3 about to unlock. So at a
// kill, phase 2 means the lock was held and phase 0 that it was not; 1 and 3 may be either.
struct ChildProgress {
  std::atomic<int> phase{0};
  std::atomic<std::int64_t> rev_started{0};  // highest revision the child began to write
  std::atomic<std::uint64_t> ops{0};
};

class SharedPage {
 public:
  SharedPage() {
    void* p = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) std::abort();
    progress_ = new (p) ChildProgress();
  }
  ~SharedPage() { ::munmap(progress_, 4096); }
  SharedPage(const SharedPage&) = delete;
  SharedPage& operator=(const SharedPage&) = delete;
  ChildProgress& operator*() const { return *progress_; }
  ChildProgress* operator->() const { return progress_; }

 private:
  ChildProgress* progress_;
};

std::int64_t create_of(std::uint64_t k, std::int64_t mod) {
  return mod - static_cast<std::int64_t>(k) - 1;
}
std::int64_t version_of(std::uint64_t k, std::int64_t mod) {
  return mod * 64 + static_cast<std::int64_t>(k);
}

bool put(CacheTable& t, std::uint64_t k, std::int64_t mod) {
  return t.upsert(key_name(k), encode_value(k, mod), mod, create_of(k, mod), version_of(k, mod));
}

CacheOptions cache_options() {
  CacheOptions o;
  o.name = ringwire::test::unique_name("cachekill");
  o.capacity = kCapacity;
  o.key_max = 32;
  o.value_max = 256;
  o.max_probe = 32;
  return o;
}

// ---- the child (the agent that dies) --------------------------------------------------------

// Fills the table, says ready, then writes until killed.
int child_random_writer(const CacheOptions& o, ChildProgress& pr, Pipe& ready, std::uint64_t seed) {
  auto opened = CacheWriter::open(o);
  if (!opened) return 10;
  CacheWriter& w = **opened;
  std::int64_t rev = 0;
  {
    CacheWriter::Guard g(w);
    for (std::uint64_t k = 0; k < kKeys; ++k) {
      pr.rev_started.store(++rev);
      if (!put(w.table(), k, rev)) return 11;
    }
  }
  w.set_agent_state(AgentState::serving);
  w.confirm(rev, now_ns());
  if (!ready.send()) return 12;
  std::mt19937_64 rng(seed);
  const auto give_up = now_ns() + kChildGiveUpNs;
  for (std::uint64_t round = 0;; ++round) {
    pr.phase.store(1);
    {
      CacheWriter::Guard g(w);
      pr.phase.store(2);
      for (int j = 0; j < kOpsPerGuard; ++j) {
        const std::uint64_t r = rng();
        const std::uint64_t k = r % kKeys;
        const std::string key = key_name(k);
        pr.rev_started.store(++rev);
        switch ((r >> 8) % 4) {
          case 0:
          case 1:
            put(w.table(), k, rev);
            break;
          case 2:
            w.table().update_if_cached(key, encode_value(k, rev), rev, create_of(k, rev),
                                       version_of(k, rev));
            break;
          default:
            w.table().erase(key, rev);
        }
        pr.ops.fetch_add(1);
      }
      pr.phase.store(3);
    }
    pr.phase.store(0);
    if ((round & 63) == 0) {
      w.confirm(rev, now_ns());
      if (now_ns() > give_up) return 13;
    }
  }
}

enum class Death { sigkill_mid_write, exit_mid_write, sigkill_mid_rebuild };

// Fills kFilled keys, then under the writer lock leaves kHalfKey's slot the way write_entry
// does halfway through (or marks a rebuild in progress), says ready, waits for "go" and dies
// still holding the lock.
int child_dies_holding(const CacheOptions& o, Death how, Pipe& ready, Pipe& go) {
  auto opened = CacheWriter::open(o);
  if (!opened) return 10;
  CacheWriter& w = **opened;
  {
    CacheWriter::Guard g(w);
    for (std::uint64_t k = 0; k < kFilled; ++k)
      if (!put(w.table(), k, static_cast<std::int64_t>(k + 1))) return 11;
  }
  w.set_agent_state(AgentState::serving);
  w.confirm(kFilled, now_ns());
  auto* g = new CacheWriter::Guard(w);  // never released
  (void)g;
  CacheTable& t = w.table();
  const auto& geo = t.geometry();
  void* payload = w.segment().payload();
  if (how == Death::sigkill_mid_rebuild) {
    // A rebuild re-inserts entries into the slots it emptied: died inside write_entry, it
    // leaves an empty slot mid-write (odd seq, state not yet full). Take the slot where a
    // lookup of an absent key would stop, so that lookup reads it.
    t.state().rebuilding.store(1);
    const std::uint64_t h = ringwire::kv::cache::key_hash(key_name(kAbsentKey), t.seed());
    for (std::uint32_t p = 0; p < geo.max_probe; ++p) {
      const std::uint64_t i = (h + p) & (geo.slots - 1);
      auto& s = raw_slot(payload, geo, i);
      if (static_cast<SlotState>(s.state.load()) != SlotState::empty) continue;
      t.state().dirty_slot.store(static_cast<std::int64_t>(i));
      s.seq.store(s.seq.load() | 1);
      std::atomic_thread_fence(std::memory_order_release);
      s.hash.store(h);
      s.mod_revision.store(1000);
      break;
    }
  } else {
    const std::int64_t at = raw_find(payload, geo, t.seed(), key_name(kHalfKey));
    if (at < 0) return 14;
    auto& s = raw_slot(payload, geo, static_cast<std::uint64_t>(at));
    t.state().dirty_slot.store(at);
    s.seq.store(s.seq.load() | 1);
    std::atomic_thread_fence(std::memory_order_release);
    // Half of a new write: revision fields and the first words of a new value, not the rest.
    const std::string v = encode_value(kHalfKey, 1000);
    s.mod_revision.store(1000);
    s.value_len.store(static_cast<std::uint32_t>(v.size()));
    std::memcpy(ringwire::test::raw_value_area(payload, geo, static_cast<std::uint64_t>(at)),
                v.data(), 16);
  }
  if (!ready.send()) return 12;
  if (go.receive() < 0) return 15;
  if (how == Death::exit_mid_write) ::_exit(0);  // no unlock, no destructors
  ::raise(SIGKILL);
  return 16;
}

// ---- the parent's checks ---------------------------------------------------------------------

struct ReadStats {
  std::uint64_t lookups = 0, hits = 0, misses = 0, busy = 0, errors = 0;
  std::uint64_t max_lookup_ns = 0;
  std::string first_error;
  void fail(std::string what) {
    if (errors++ == 0) first_error = std::move(what);
  }
};

// Checks a hit: exactly what was written for the key at that revision, no revision beyond
// what the child began (max_rev), not older than this reader saw before.
void check_hit(ReadStats& rs, std::vector<std::int64_t>& last, std::uint64_t k,
               const CachedEntry& e, std::int64_t max_rev) {
  ++rs.hits;
  const std::string bad = verify_value(e.value, k, e.mod_revision);
  if (!bad.empty()) return rs.fail(key_name(k) + ": " + bad);
  if (e.create_revision != create_of(k, e.mod_revision) ||
      e.version != version_of(k, e.mod_revision))
    return rs.fail(key_name(k) + ": revision fields of another write");
  if (e.mod_revision > max_rev)
    return rs.fail(key_name(k) + ": revision " + std::to_string(e.mod_revision) +
                   " was never written (last begun " + std::to_string(max_rev) + ")");
  if (e.mod_revision < last[k])
    return rs.fail(key_name(k) + ": revision went back from " + std::to_string(last[k]) + " to " +
                   std::to_string(e.mod_revision));
  last[k] = e.mod_revision;
}

// Records one lookup's outcome. `live_max`, when set, is read after the lookup: the child may
// still be writing.
Lookup record(ReadStats& rs, std::vector<std::int64_t>& last, std::uint64_t k, const CachedEntry& e,
              Lookup r, std::uint64_t t0, std::int64_t max_rev,
              const std::atomic<std::int64_t>* live_max) {
  const auto took = now_ns() - t0;
  if (took > rs.max_lookup_ns) rs.max_lookup_ns = took;
  ++rs.lookups;
  if (live_max != nullptr) max_rev = live_max->load();
  if (r == Lookup::hit) {
    check_hit(rs, last, k, e, max_rev);
  } else if (r == Lookup::miss) {
    ++rs.misses;
  } else if (r == Lookup::busy) {
    ++rs.busy;
  } else {
    rs.fail("lookup gave neither hit, miss nor busy");
  }
  return r;
}

// One lookup through a CacheTable view.
Lookup read_one(ReadStats& rs, std::vector<std::int64_t>& last, std::uint64_t k,
                const CacheTable& table, std::int64_t max_rev,
                const std::atomic<std::int64_t>* live_max = nullptr) {
  CachedEntry e;
  const auto t0 = now_ns();
  const Lookup r = table.lookup(key_name(k), e);
  return record(rs, last, k, e, r, t0, max_rev, live_max);
}

// One CacheReader::get (any outcome but hit / miss / busy is an error, reported as busy).
Lookup read_one(ReadStats& rs, std::vector<std::int64_t>& last, std::uint64_t k,
                CacheReader& reader, std::int64_t max_rev,
                const std::atomic<std::int64_t>* live_max = nullptr) {
  CachedEntry e;
  const auto t0 = now_ns();
  const ReadOutcome o = reader.get(key_name(k), e, 1h);
  Lookup r = Lookup::busy;
  if (o == ReadOutcome::hit) {
    r = Lookup::hit;
  } else if (o == ReadOutcome::miss) {
    r = Lookup::miss;
  } else if (o != ReadOutcome::busy) {
    rs.fail(std::string("CacheReader::get gave ") + ringwire::kv::cache::outcome_name(o));
  }
  return record(rs, last, k, e, r, t0, max_rev, live_max);
}

// A read-only view of the segment (another process's mapping, as a reader has it).
struct View {
  std::unique_ptr<ringwire::shm::ShmSegment> seg;
  CacheTable table;
};
std::unique_ptr<View> attach_view(const std::string& name) {
  ringwire::shm::OpenOptions oo;
  oo.allow_dead_creator = true;
  auto seg = ringwire::shm::ShmSegment::open(name, ringwire::kv::cache::cache_spec(), oo);
  EXPECT_TRUE(seg.has_value()) << seg.status().to_string();
  if (!seg) return nullptr;
  auto v = std::make_unique<View>();
  v->seg = std::make_unique<ringwire::shm::ShmSegment>(std::move(*seg));
  EXPECT_TRUE(v->table.attach(v->seg->payload(), v->seg->payload_size()));
  return v;
}

// After the repair: no slot mid-write, counters that match the slots, nothing dirty.
void check_repaired(CacheWriter& w) {
  CacheTable& t = w.table();
  const auto& g = t.geometry();
  std::uint64_t full = 0, tomb = 0, odd = 0;
  for (std::uint64_t i = 0; i < g.slots; ++i) {
    auto& s = raw_slot(w.segment().payload(), g, i);
    odd += s.seq.load() & 1;
    const auto st = static_cast<SlotState>(s.state.load());
    full += st == SlotState::full ? 1 : 0;
    tomb += st == SlotState::tombstone ? 1 : 0;
  }
  EXPECT_EQ(odd, 0u) << "slots still mid-write after the repair";
  EXPECT_EQ(t.state().entries.load(), full);
  EXPECT_EQ(t.state().tombstones.load(), tomb);
  EXPECT_LE(full, g.capacity);
  EXPECT_EQ(t.state().dirty_slot.load(), -1);
  EXPECT_EQ(t.state().rebuilding.load(), 0u);
}

// The new agent works: fresh upserts at revisions past anything the child wrote are read back
// at once, through the writer's table and through the reader once confirmed.
void check_new_writes(CacheWriter& w, CacheReader& reader, std::int64_t from_rev,
                      std::vector<std::int64_t>& last) {
  std::int64_t rev = from_rev;
  for (std::uint64_t k = 0; k < 16; ++k) {
    CacheWriter::Guard g(w);
    ASSERT_TRUE(put(w.table(), k, ++rev)) << key_name(k);
    CachedEntry e;
    ASSERT_EQ(w.table().lookup(key_name(k), e), Lookup::hit) << key_name(k);
    EXPECT_EQ(e.mod_revision, rev);
    EXPECT_EQ(verify_value(e.value, k, rev), "");
  }
  w.set_agent_state(AgentState::serving);
  w.confirm(rev, now_ns());
  ReadStats rs;
  for (std::uint64_t k = 0; k < kKeys; ++k)
    read_one(rs, last, k, reader, rev);
  EXPECT_EQ(rs.errors, 0u) << rs.first_error;
  EXPECT_EQ(rs.busy, 0u);
  EXPECT_GE(rs.hits, 1u) << "the reader did not pick up the new agent's writes";
  CachedEntry e;
  ASSERT_EQ(reader.get(key_name(15), e, 1h), ReadOutcome::hit);
  EXPECT_EQ(e.mod_revision, rev);
}

class KvCacheWriterKill : public ringwire::test::ShmTest {
 protected:
  ReaderOptions reader_options() {
    ReaderOptions r;
    r.reattach_interval = 1ms;
    r.request_fills = false;
    return r;
  }
};

TEST_F(KvCacheWriterKill, KilledAtRandomMomentsWhileWriting) {
  Watchdog dog(500);
  const std::uint64_t rounds = ringwire::test::scaled_rounds(50, 12);
  std::mt19937_64 rng(static_cast<std::uint64_t>(::getpid()) * 7919u + now_ns());
  std::uint64_t held = 0, not_held = 0, unsure = 0, recoveries = 0, repaired = 0, child_ops = 0;
  ReadStats total;
  const auto t0 = now_ns();
  for (std::uint64_t round = 0; round < rounds; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    const CacheOptions o = cache_options();
    SharedPage pr;
    Pipe ready;
    const std::uint64_t seed = rng();
    Child child = Child::spawn([&] {
      ready.close_read();
      return child_random_writer(o, *pr, ready, seed);
    });
    ready.close_write();
    ASSERT_EQ(ready.receive(), '!') << "child failed to start (exit " << child.exit_code() << ")";

    // Read from this process while the child writes, for a random stretch, then kill it.
    CacheReader reader(o.name, reader_options());
    ASSERT_TRUE(reader.attached()) << reader.attach_error();
    auto view = attach_view(o.name);
    ASSERT_TRUE(view);
    ReadStats rs;
    std::vector<std::int64_t> last(kKeys, 0);
    const std::uint64_t stretch_us = rng() % 3 == 0 ? rng() % 300 : rng() % 20'000;
    const auto until = now_ns() + stretch_us * 1000;
    for (std::uint64_t i = 0; now_ns() < until || i < 4; ++i) {
      const std::uint64_t k = rng() % kKeys;
      if ((i & 1) != 0) {
        read_one(rs, last, k, view->table, 0, &pr->rev_started);
      } else {
        read_one(rs, last, k, reader, 0, &pr->rev_started);
      }
    }
    child.kill(SIGKILL);
    ASSERT_EQ(child.exit_code(), -SIGKILL) << "the child exited on its own";
    const int phase = pr->phase.load();
    const std::int64_t max_rev = pr->rev_started.load();
    child_ops += pr->ops.load();

    // The agent is dead with the lock perhaps held: reads still return, and stay right.
    for (std::uint64_t i = 0; i < 2 * kKeys; ++i) {
      if ((i & 1) != 0) {
        read_one(rs, last, i % kKeys, view->table, max_rev);
      } else {
        read_one(rs, last, i % kKeys, reader, max_rev);
      }
    }
    EXPECT_EQ(rs.errors, 0u) << rs.first_error;

    // A new agent takes over; its first writer lock repairs what the dead one left.
    auto opened = CacheWriter::open(o);
    ASSERT_TRUE(opened.has_value()) << opened.status().to_string();
    CacheWriter& w = **opened;
    EXPECT_TRUE(w.took_over());
    EXPECT_EQ(w.state().takeovers.load(), 1u);
    const std::uint64_t rec = w.state().lock_recoveries.load();
    if (phase == 2) {
      ++held;
      EXPECT_EQ(rec, 1u) << "killed holding the writer lock, but no EOWNERDEAD recovery";
    } else if (phase == 0) {
      ++not_held;
      EXPECT_EQ(rec, 0u) << "a recovery though the lock was free";
      EXPECT_EQ(w.repaired_slots(), 0u);
    } else {
      ++unsure;
      EXPECT_LE(rec, 1u);
    }
    recoveries += rec;
    repaired += w.repaired_slots();
    check_repaired(w);

    // Until the new agent confirms, readers do not serve the table; the table itself holds
    // only right entries.
    CachedEntry e;
    EXPECT_EQ(reader.get(key_name(0), e, 1h), ReadOutcome::stale);
    ReadStats after;
    for (std::uint64_t k = 0; k < kKeys; ++k)
      read_one(after, last, k, view->table, max_rev);
    EXPECT_EQ(after.errors, 0u) << after.first_error;
    EXPECT_EQ(after.busy, 0u) << "a slot still reads as mid-write after the repair";
    EXPECT_EQ(after.hits, w.state().entries.load()) << "entries the table counts, readers miss";
    check_new_writes(w, reader, max_rev, last);

    for (const ReadStats* x : {&rs, &after}) {
      total.lookups += x->lookups;
      total.hits += x->hits;
      total.misses += x->misses;
      total.busy += x->busy;
      total.max_lookup_ns = std::max(total.max_lookup_ns, x->max_lookup_ns);
    }
    view.reset();
    opened->reset();
    EXPECT_FALSE(ringwire::test::shm_name_exists(o.name)) << "the new agent did not unlink";
    EXPECT_EQ(reader.get(key_name(0), e, 1h), ReadOutcome::unavailable);
    if (HasFatalFailure()) return;
  }
  std::printf(
      "[ crash    ] %llu kills in %.1f s after %llu child writes: lock held at %llu, free at "
      "%llu, unsure %llu; %llu EOWNERDEAD recoveries, %llu slots repaired; %llu reads (%llu "
      "hits, %llu misses, %llu busy), slowest %.1f us\n",
      static_cast<unsigned long long>(rounds), ringwire::test::seconds_since(t0),
      static_cast<unsigned long long>(child_ops), static_cast<unsigned long long>(held),
      static_cast<unsigned long long>(not_held), static_cast<unsigned long long>(unsure),
      static_cast<unsigned long long>(recoveries), static_cast<unsigned long long>(repaired),
      static_cast<unsigned long long>(total.lookups), static_cast<unsigned long long>(total.hits),
      static_cast<unsigned long long>(total.misses), static_cast<unsigned long long>(total.busy),
      static_cast<double>(total.max_lookup_ns) / 1e3);
  // The child spends nearly all its time holding the lock: kills that never landed there
  // would mean this test never exercised the recovery.
  EXPECT_GT(held, 0u) << "no kill landed while the writer lock was held";
  EXPECT_GT(total.hits, 0u);
}

class KvCacheWriterDeath : public KvCacheWriterKill, public ::testing::WithParamInterface<Death> {};

TEST_P(KvCacheWriterDeath, DiesHoldingTheLockMidWrite) {
  Watchdog dog(120);
  const Death how = GetParam();
  const CacheOptions o = cache_options();
  Pipe ready, go;
  Child child = Child::spawn([&] {
    ready.close_read();
    go.close_write();
    return child_dies_holding(o, how, ready, go);
  });
  ready.close_write();
  go.close_read();
  ASSERT_EQ(ready.receive(), '!') << "child failed to set up (exit " << child.exit_code() << ")";

  // The child is alive and holds the lock: no second agent, and readers never wait for it.
  auto refused = CacheWriter::open(o);
  ASSERT_FALSE(refused.has_value()) << "a second agent got in beside a live one";
  EXPECT_EQ(refused.status().code(), Errc::already_exists) << refused.status().to_string();
  CacheReader reader(o.name, reader_options());
  ASSERT_TRUE(reader.attached()) << reader.attach_error();
  auto view = attach_view(o.name);
  ASSERT_TRUE(view);
  auto reads_before_takeover = [&](const char* when) {
    SCOPED_TRACE(when);
    std::vector<std::int64_t> last(kKeys, 0);
    ReadStats rs;
    const bool half = how != Death::sigkill_mid_rebuild;
    for (std::uint64_t k = 0; k < kKeys; ++k) {
      for (int via_reader = 0; via_reader < 2; ++via_reader) {
        const auto max_rev = static_cast<std::int64_t>(kFilled);
        const Lookup r = via_reader ? read_one(rs, last, k, reader, max_rev)
                                    : read_one(rs, last, k, view->table, max_rev);
        // The half-written slot is busy; a key whose probe window runs through it may be
        // busy too (the hash seed is random), but nothing else.
        if (half && k == kHalfKey) {
          EXPECT_EQ(r, Lookup::busy) << "a slot mid-write was not reported busy";
        } else if (k < kFilled) {
          EXPECT_TRUE(r == Lookup::hit || (half && r == Lookup::busy))
              << key_name(k) << " is in the table";
        } else {
          // Absent: a miss, or busy if its window meets the slot left mid-write.
          EXPECT_NE(r, Lookup::hit) << key_name(k) << " was never written";
          if (k == kAbsentKey && !half) {
            EXPECT_EQ(r, Lookup::busy) << "the rebuild's slot mid-write was not reported busy";
          }
        }
      }
    }
    EXPECT_EQ(rs.errors, 0u) << rs.first_error;
    EXPECT_GE(rs.busy, 2u);
  };
  reads_before_takeover("agent alive, holding the lock");
  go.send();
  const int code = child.exit_code();
  EXPECT_EQ(code, how == Death::exit_mid_write ? 0 : -SIGKILL);
  reads_before_takeover("agent dead, lock not recovered yet");

  auto opened = CacheWriter::open(o);
  ASSERT_TRUE(opened.has_value()) << opened.status().to_string();
  CacheWriter& w = **opened;
  EXPECT_TRUE(w.took_over());
  EXPECT_EQ(w.state().lock_recoveries.load(), 1u) << "no EOWNERDEAD on the writer lock";
  check_repaired(w);
  std::vector<std::int64_t> last(kKeys, 0);
  ReadStats rs;
  for (std::uint64_t k = 0; k < kKeys; ++k)
    read_one(rs, last, k, w.table(), static_cast<std::int64_t>(kFilled));
  EXPECT_EQ(rs.errors, 0u) << rs.first_error;
  EXPECT_EQ(rs.busy, 0u);
  if (how == Death::sigkill_mid_rebuild) {
    // Died rewriting the table: the repair starts it afresh (entries may be lost, none wrong).
    EXPECT_EQ(w.repaired_slots(), w.table().geometry().slots);
    EXPECT_EQ(rs.hits, 0u);
    EXPECT_EQ(w.state().entries.load(), 0u);
  } else {
    EXPECT_EQ(w.repaired_slots(), 1u) << "exactly the half-written slot is repaired";
    EXPECT_EQ(rs.hits, kFilled - 1);
    EXPECT_EQ(w.state().entries.load(), kFilled - 1);
    const std::int64_t at =
        raw_find(w.segment().payload(), w.table().geometry(), w.table().seed(), key_name(kHalfKey));
    EXPECT_LT(at, 0) << "the half-written entry is still in the table";
    CachedEntry e;
    EXPECT_EQ(w.table().lookup(key_name(kHalfKey), e), Lookup::miss);
  }
  // The same Guard no longer recovers anything, and new writes work.
  { CacheWriter::Guard g(w); }
  EXPECT_EQ(w.state().lock_recoveries.load(), 1u);
  check_new_writes(w, reader, 2000, last);
  view.reset();
  opened->reset();
  EXPECT_FALSE(ringwire::test::shm_name_exists(o.name)) << "the new agent did not unlink";
}

INSTANTIATE_TEST_SUITE_P(Deaths, KvCacheWriterDeath,
                         ::testing::Values(Death::sigkill_mid_write, Death::exit_mid_write,
                                           Death::sigkill_mid_rebuild),
                         [](const ::testing::TestParamInfo<Death>& i) {
                           switch (i.param) {
                             case Death::sigkill_mid_write:
                               return std::string("SigkillMidWrite");
                             case Death::exit_mid_write:
                               return std::string("ExitMidWrite");
                             default:
                               return std::string("SigkillMidRebuild");
                           }
                         });

}  // namespace
