// CacheAgent: keeps a kv_cache segment coherent with the cluster (the body of `kv_cache`).
//
// Three jobs, one rule: the table never holds a value older than what `applied_revision`
// claims, and `contact_ns` only moves forward when the cluster proved it.
//   * Watch: one stream over the whole keyspace from applied_revision + 1. Every event is
//     applied under the writer lock: a put updates the key if it is cached, a delete removes
//     it. Uncached keys are not tracked (read-through cache, not a replica).
//   * Fills: readers that missed post the key to the "<name>.fill" Mailbox. The agent reads
//     it linearizably (header revision H) and inserts it only if no watch event newer than H
//     has been applied yet; otherwise it reads again. Events at or below H that arrive later
//     are ignored by the table's newer-only rule, so the insert cannot go backwards.
//   * Heartbeat (every `heartbeat`): note t0, read the cluster's revision R linearizably,
//     ask the watch for a progress reply; when one arrives at P >= R, every change committed
//     before t0 has been applied: confirm(P, t0). Readers serve a hit only if t0 is within
//     their max_staleness, so an agent cut off from the cluster (or dead) stops serving by
//     itself, without anyone having to notice.
// A watch that ends (server gone, compaction) is resumed from the applied revision on the
// next endpoint; if that revision was compacted away the table is cleared and refilled.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ringwire/core/status.hpp"
#include "ringwire/kv/cache/cache_writer.hpp"

namespace ringwire::kv::cache {

struct AgentOptions {
  CacheOptions cache;
  std::vector<std::string> endpoints;
  std::chrono::milliseconds heartbeat{20};
  std::chrono::milliseconds rpc_timeout{1000};
  // No confirmation for this long: drop the watch and open a new one (next endpoint).
  std::chrono::milliseconds resync_after{1500};
  std::uint32_t fill_lanes = 64;  // reader processes that can post fill requests at once
};

// What the agent did, for its log and --json summary.
struct AgentReport {
  std::uint64_t sessions = 0;  // watch streams opened
  std::uint64_t events = 0;
  std::uint64_t fills = 0;
  std::uint64_t clears = 0;
  std::int64_t applied_revision = 0;
  bool took_over = false;
  std::uint64_t repaired_slots = 0;
  std::string last_error;
};

class CacheAgent {
 public:
  // Opens (or takes over) the segment and the fill mailbox; connects lazily.
  static core::Result<std::unique_ptr<CacheAgent>> create(const AgentOptions& o);
  ~CacheAgent();
  CacheAgent(const CacheAgent&) = delete;
  CacheAgent& operator=(const CacheAgent&) = delete;

  // Serves until `stop` becomes true. Returns ok on stop; errors only for what retrying
  // cannot fix (the segment was taken from us).
  core::Status run(const std::atomic<bool>& stop);
  AgentReport report() const;
  CacheWriter& writer() noexcept;

 private:
  struct Impl;
  explicit CacheAgent(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ringwire::kv::cache
