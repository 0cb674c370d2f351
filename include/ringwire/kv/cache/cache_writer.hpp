// CacheWriter: the agent's side of a kv_cache segment: creates it, or takes over the segment
// of an agent that died (keeping its entries and applied revision, so the new agent resumes
// the cluster's Watch where the old one stopped), and serialises changes under the robust
// writer lock.
//
// Takeover protocol: open the existing segment (its creator may be dead), then trylock
// CacheControl::agent_lock, which every agent holds for its whole life:
//   EBUSY       another agent is alive (or is taking over right now): refuse.
//   EOWNERDEAD  the previous agent died: mark the mutex consistent and take the segment.
//   0           the previous agent let go without unlinking (it cannot, normally): take it.
// Only then does the header name us as creator (ShmSegment::take_ownership), so two agents
// racing for one dead segment cannot both win.
#pragma once

#include <pthread.h>

#include <cstdint>
#include <memory>
#include <string>

#include "ringwire/core/status.hpp"
#include "ringwire/kv/cache/cache_table.hpp"
#include "ringwire/shm/shm_segment.hpp"

namespace ringwire::kv::cache {

struct CacheOptions {
  std::string name;                // segment name (as for every ringwire segment)
  std::uint64_t capacity = 16384;  // most keys cached
  std::uint64_t memory = 0;        // if set, capacity is lowered to fit the table in this
  std::uint32_t key_max = 128;     // longer keys are not cached
  std::uint32_t value_max = 1024;  // larger values are not cached
  std::uint32_t max_probe = 32;
};

// Works out slots/capacity from the options; invalid_argument with a reason if impossible.
core::Result<CacheGeometry> geometry_for(const CacheOptions& o);

inline constexpr shm::SegmentSpec cache_spec() {
  shm::SegmentSpec s;
  s.kind = shm::SegmentKind::kv_cache;
  s.layout_hash = kCacheLayoutHash;
  return s;
}

class CacheWriter {
 public:
  // Creates the segment, or takes over a dead agent's one (same geometry), or replaces a
  // dead agent's segment whose geometry differs. already_exists if a live agent serves it.
  static core::Result<std::unique_ptr<CacheWriter>> open(const CacheOptions& o);
  ~CacheWriter();
  CacheWriter(const CacheWriter&) = delete;
  CacheWriter& operator=(const CacheWriter&) = delete;

  CacheTable& table() noexcept { return table_; }
  CacheState& state() noexcept { return table_.state(); }
  shm::ShmSegment& segment() noexcept { return *seg_; }
  bool took_over() const noexcept { return took_over_; }
  std::uint64_t repaired_slots() const noexcept { return repaired_; }

  // RAII writer lock. A previous holder that died leaves EOWNERDEAD: the table is repaired
  // (CacheTable::repair) before the guard returns, and the mutex made consistent again.
  class Guard {
   public:
    explicit Guard(CacheWriter& w);
    ~Guard();
    Guard(const Guard&) = delete;
    Guard& operator=(const Guard&) = delete;

   private:
    CacheWriter& w_;
  };

  // Agent state shown to readers; "serving" with a contact time is what lets them hit.
  void set_agent_state(AgentState s) noexcept;
  // The cache is complete up to `revision`, a revision the cluster had at `contact_ns`.
  void confirm(std::int64_t revision, std::uint64_t contact_ns) noexcept;
  // Readers that exited: fold their counters into the retired totals and free the slots.
  void reap_readers();

 private:
  CacheWriter() = default;
  void lock_writer();

  std::unique_ptr<shm::ShmSegment> seg_;
  CacheTable table_;
  bool took_over_ = false;
  bool agent_locked_ = false;
  std::uint64_t repaired_ = 0;
};

}  // namespace ringwire::kv::cache
