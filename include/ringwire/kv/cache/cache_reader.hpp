// CacheReader: a process's read-only use of a kv_cache segment.
//
// get() answers from shared memory only when the answer is fresh enough:
//   * the segment is attached, still ready and still the session we attached to;
//   * the agent says it is serving, and it confirmed the table complete up to a revision the
//     cluster had no longer than `max_staleness` ago (CacheState::contact_ns);
//   * the key is in the table (seqlock read, bounded retries).
// Anything else is a non-hit the caller answers by RPC; the reason is returned and counted.
// A miss also asks the agent (through the "<name>.fill" Mailbox, never blocking) to cache the
// key. When the segment goes away or is replaced, the reader re-attaches on its own, at most
// every `reattach_interval`.
//
// One CacheReader per thread (it is not thread-safe: its counters and buffers are its own).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "ringwire/core/status.hpp"
#include "ringwire/core/tsc_clock.hpp"
#include "ringwire/ipc/mailbox.hpp"
#include "ringwire/kv/cache/cache_table.hpp"
#include "ringwire/shm/shm_segment.hpp"

namespace ringwire::kv::cache {

enum class ReadOutcome {
  hit,          // served from the cache
  miss,         // fresh cache, key not in it (a fill was requested)
  too_big,      // the key is longer than the cache stores
  stale,        // the agent has not confirmed the table within max_staleness
  busy,         // the key's slot stayed mid-write through every retry
  unavailable,  // no segment, agent stopped, or the segment was replaced
};
const char* outcome_name(ReadOutcome o) noexcept;

struct ReaderOptions {
  std::chrono::nanoseconds reattach_interval = std::chrono::milliseconds(100);
  bool request_fills = true;
};

struct ReadInfo {
  std::int64_t cache_revision = 0;  // applied revision when the read started
  std::uint64_t age_ns = 0;         // now - contact time
};

// Snapshot of the shared counters, for `kv_client stats`.
struct CacheStats {
  std::string name;
  std::string agent_state;
  std::int32_t agent_pid = 0;
  bool agent_alive = false;
  std::int64_t applied_revision = 0;
  std::uint64_t age_ms = 0;  // since the last confirmation
  std::uint64_t entries = 0, capacity = 0, slots = 0, tombstones = 0;
  std::uint32_t key_max = 0, value_max = 0;
  std::uint64_t hits = 0, misses = 0, fallbacks = 0, readers = 0;
  std::uint64_t events_applied = 0, fills = 0, fill_requests = 0, evictions = 0, clears = 0;
  std::uint64_t lock_recoveries = 0, takeovers = 0, reconnects = 0, generation = 0;
  double hit_rate = 0;  // hits / (hits + misses + fallbacks)
};

class CacheReader {
 public:
  // Attaches now if it can; a reader that could not attach still works (everything is
  // `unavailable`) and retries later.
  explicit CacheReader(std::string name, ReaderOptions o = {});
  ~CacheReader();
  CacheReader(const CacheReader&) = delete;
  CacheReader& operator=(const CacheReader&) = delete;

  ReadOutcome get(std::string_view key, CachedEntry& out, std::chrono::nanoseconds max_staleness,
                  ReadInfo* info = nullptr);

  bool attached() const noexcept { return seg_ != nullptr; }
  const std::string& name() const noexcept { return name_; }
  // Why the last attach failed (empty when attached).
  const std::string& attach_error() const noexcept { return attach_error_; }
  core::Result<CacheStats> stats() const;

 private:
  bool ensure_attached(std::uint64_t now);
  bool try_attach();
  void detach();
  void request_fill(std::string_view key);
  void count(ReadOutcome o) noexcept;

  std::string name_;
  ReaderOptions opts_;
  std::unique_ptr<shm::ShmSegment> seg_;
  CacheTable table_;
  ReaderSlot* slot_ = nullptr;  // our counters in the segment, if a slot was free
  std::uint64_t session_ = 0;
  std::uint64_t next_attach_ns_ = 0;
  std::uint64_t next_name_check_ns_ = 0;
  std::string attach_error_;
  std::optional<ipc::MailboxProducer> fill_;
  std::uint64_t next_fill_open_ns_ = 0;
  core::TscClock clock_;
  // Counted here when no reader slot was free.
  std::uint64_t local_hits_ = 0, local_misses_ = 0, local_fallbacks_ = 0;
};

// Name of the fill-request mailbox that goes with cache `name`.
std::string fill_mailbox_name(std::string_view name);

}  // namespace ringwire::kv::cache
