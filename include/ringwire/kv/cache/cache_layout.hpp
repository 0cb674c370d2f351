// The shared-memory layout of the KV read cache (segment kind kv_cache).
//
//   payload
//   +-- CacheControl      geometry (written once, before mark_ready), the two robust mutexes
//   +-- CacheState        applied revision, last contact with the cluster, agent identity,
//   |                     counters (written by the agent, read by everyone)
//   +-- ReaderSlot[R]     one cache line per reader process: its own hit/miss counters
//   +-- CacheSlot[S]      the open-addressing table, S a power of two, linear probing
//
// Every slot is a seqlock: `seq` is odd while the writer changes the slot, and every field a
// reader looks at is read with relaxed atomics between an acquire load of seq and a re-read of
// seq after an acquire fence (Boehm, "Can seqlocks get along with programming language memory
// models?"), so torn reads are detected and retried, and the code is free of data races.
//
// Nothing here is trusted by a reader: the geometry is validated once at attach against the
// segment's size and copied into private memory; key and value lengths are checked against
// that private geometry before any copy; probing and retries are bounded.
#pragma once

#include <pthread.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "ringwire/core/cache_line.hpp"
#include "ringwire/shm/segment_header.hpp"

namespace ringwire::kv::cache {

inline constexpr std::uint32_t kMaxKeyBytes = 1024;        // key_max may not exceed this
inline constexpr std::uint32_t kMaxValueBytes = 1u << 20;  // value_max may not exceed this
inline constexpr std::uint64_t kMaxSlots = std::uint64_t{1} << 26;
inline constexpr std::uint32_t kMaxProbe = 64;
inline constexpr std::uint32_t kReaderSlots = 64;

enum class SlotState : std::uint32_t { empty = 0, full = 1, tombstone = 2 };

// Agent's view of its link to the cluster, for tools and for readers' fallback reasons.
enum class AgentState : std::uint32_t { starting = 0, serving = 1, disconnected = 2, stopped = 3 };

struct alignas(core::kFalseSharingRange) CacheControl {
  std::uint64_t slots;         // power of two
  std::uint64_t capacity;      // most entries the agent keeps (<= slots / 2)
  std::uint32_t key_max;       // longest key stored
  std::uint32_t value_max;     // longest value stored; longer ones are not cached
  std::uint32_t slot_size;     // bytes per CacheSlot including its data area
  std::uint32_t max_probe;     // probe window: a key lives within this many slots of its home
  std::uint32_t reader_slots;  // ReaderSlot count
  std::uint32_t reserved0;
  std::uint64_t state_offset;    // CacheState, from the payload start
  std::uint64_t readers_offset;  // ReaderSlot[0]
  std::uint64_t slots_offset;    // CacheSlot[0]
  std::uint64_t hash_seed;
  // Held by the writer while it changes slots or counters. Robust: if a writer dies holding
  // it, the next locker gets EOWNERDEAD and repairs the slot recorded in CacheState::dirty_slot.
  pthread_mutex_t writer_lock;
  // Held by the agent for its whole life: a second agent finds it busy; a new agent after a
  // crash gets EOWNERDEAD and takes the segment over.
  pthread_mutex_t agent_lock;
};

struct alignas(core::kFalseSharingRange) CacheState {
  // Every change with a revision <= applied_revision is in the table (the agent stores it
  // with release after the slots; readers load it with acquire before the slots).
  std::atomic<std::int64_t> applied_revision{0};
  // CLOCK_MONOTONIC ns: the table was known complete up to a revision the cluster had at this
  // time (a linearizable read, then a watch progress reply at or beyond its revision).
  std::atomic<std::uint64_t> contact_ns{0};
  std::atomic<std::uint32_t> agent_state{0};  // AgentState
  std::atomic<std::int32_t> agent_pid{0};
  std::atomic<std::uint64_t> agent_start_time{0};
  std::atomic<std::int64_t> compact_revision{0};
  std::atomic<std::uint64_t> generation{0};  // bumped when the table is cleared
  // Writer-side bookkeeping, changed under writer_lock only.
  std::atomic<std::int64_t> dirty_slot{-1};  // slot being written, for EOWNERDEAD repair
  std::atomic<std::uint32_t> rebuilding{0};  // 1 while the whole table is rewritten
  std::atomic<std::uint32_t> reserved0{0};
  std::atomic<std::uint64_t> entries{0};
  std::atomic<std::uint64_t> tombstones{0};
  std::atomic<std::uint64_t> clock_hand{0};
  // Counters, for `kv_client stats`.
  std::atomic<std::uint64_t> events_applied{0};
  std::atomic<std::uint64_t> fills{0};
  std::atomic<std::uint64_t> fill_requests{0};
  std::atomic<std::uint64_t> evictions{0};
  std::atomic<std::uint64_t> clears{0};
  std::atomic<std::uint64_t> lock_recoveries{0};
  std::atomic<std::uint64_t> takeovers{0};
  std::atomic<std::uint64_t> reconnects{0};
  // Totals folded in from reader slots whose process exited.
  std::atomic<std::uint64_t> retired_hits{0};
  std::atomic<std::uint64_t> retired_misses{0};
  std::atomic<std::uint64_t> retired_fallbacks{0};
};

// A reader process's counters: its own cache line, so counting costs no sharing.
struct alignas(core::kFalseSharingRange) ReaderSlot {
  std::atomic<std::int32_t> pid{0};  // 0 = free; claimed by CAS
  std::atomic<std::uint32_t> reserved0{0};
  std::atomic<std::uint64_t> start_time{0};
  std::atomic<std::uint64_t> hits{0};
  std::atomic<std::uint64_t> misses{0};     // not in the table (or too big to cache)
  std::atomic<std::uint64_t> fallbacks{0};  // in the table maybe, but stale/unavailable: RPC
};

// One table slot. The data area (key then value) follows the struct, slot_size in all.
struct CacheSlot {
  std::atomic<std::uint64_t> seq{0};
  std::atomic<std::uint64_t> hash{0};
  std::atomic<std::uint32_t> state{0};       // SlotState
  std::atomic<std::uint32_t> referenced{0};  // CLOCK bit, set by readers on a hit
  std::atomic<std::uint32_t> key_len{0};
  std::atomic<std::uint32_t> value_len{0};
  std::atomic<std::int64_t> mod_revision{0};
  std::atomic<std::int64_t> create_revision{0};
  std::atomic<std::int64_t> version{0};
};

static_assert(std::is_standard_layout_v<CacheControl>);
static_assert(std::is_standard_layout_v<CacheSlot>);
static_assert(sizeof(CacheSlot) == 56);
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);
static_assert(sizeof(ReaderSlot) == core::kFalseSharingRange);

inline constexpr std::uint64_t kCacheLayoutHash = shm::layout_fingerprint(
    0x4b564348 /* "KVCH" */, sizeof(CacheControl), offsetof(CacheControl, writer_lock),
    offsetof(CacheControl, agent_lock), sizeof(pthread_mutex_t), sizeof(CacheState),
    sizeof(ReaderSlot), sizeof(CacheSlot), offsetof(CacheSlot, mod_revision));

// Geometry derived from the agent's options; the same function validates it on attach.
struct CacheGeometry {
  std::uint64_t slots = 0;
  std::uint64_t capacity = 0;
  std::uint32_t key_max = 0;
  std::uint32_t value_max = 0;
  std::uint32_t slot_size = 0;
  std::uint32_t max_probe = 0;
  std::uint32_t reader_slots = 0;
  std::uint64_t state_offset = 0;
  std::uint64_t readers_offset = 0;
  std::uint64_t slots_offset = 0;
  std::uint64_t payload_size = 0;
};

constexpr std::uint64_t round_up(std::uint64_t v, std::uint64_t a) noexcept {
  return (v + a - 1) / a * a;
}

// Slot size for the given limits: header, key area, value area, 8-byte words, a cache line.
constexpr std::uint32_t slot_size_for(std::uint32_t key_max, std::uint32_t value_max) noexcept {
  return static_cast<std::uint32_t>(round_up(
      sizeof(CacheSlot) + round_up(key_max, 8) + round_up(value_max, 8), core::kCacheLine));
}

// Offsets for a table of `slots` slots; false if anything is out of range.
inline bool compute_geometry(CacheGeometry& g) noexcept {
  if (g.key_max == 0 || g.key_max > kMaxKeyBytes) return false;
  if (g.value_max > kMaxValueBytes) return false;
  if (g.slots < 2 || g.slots > kMaxSlots || (g.slots & (g.slots - 1)) != 0) return false;
  if (g.capacity == 0 || g.capacity > g.slots / 2) return false;
  if (g.max_probe == 0 || g.max_probe > kMaxProbe || g.max_probe > g.slots) return false;
  if (g.reader_slots == 0 || g.reader_slots > 4096) return false;
  g.slot_size = slot_size_for(g.key_max, g.value_max);
  g.state_offset = round_up(sizeof(CacheControl), core::kFalseSharingRange);
  g.readers_offset = round_up(g.state_offset + sizeof(CacheState), core::kFalseSharingRange);
  g.slots_offset =
      round_up(g.readers_offset + std::uint64_t{g.reader_slots} * sizeof(ReaderSlot), 4096);
  g.payload_size = g.slots_offset + g.slots * g.slot_size;
  return true;
}

// Writes a geometry (from compute_geometry) into a control block: what CacheTable::format
// does for a real table, and what the hostile-memory tests use to build implausible ones.
inline void store_geometry(CacheControl& c, const CacheGeometry& g, std::uint64_t hash_seed) {
  c.slots = g.slots;
  c.capacity = g.capacity;
  c.key_max = g.key_max;
  c.value_max = g.value_max;
  c.slot_size = g.slot_size;
  c.max_probe = g.max_probe;
  c.reader_slots = g.reader_slots;
  c.state_offset = g.state_offset;
  c.readers_offset = g.readers_offset;
  c.slots_offset = g.slots_offset;
  c.hash_seed = hash_seed;
}

// The word-wise data copies below are why slots and data areas are 8-byte aligned.
static_assert(sizeof(CacheSlot) % 8 == 0);

}  // namespace ringwire::kv::cache
