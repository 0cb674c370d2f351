// ReadThrough: single-key reads that are served from the host's kv_cache segment when it is
// fresh enough, and by RPC otherwise (the miss also asks the agent to cache the key).
//
// Freshness is the caller's choice per read:
//   * bounded (default, max_staleness = 100 ms): a cached value reflects every write the
//     cluster committed up to at least max_staleness before the read;
//   * linearizable: always RPC (the cache is not consulted).
// When the cache is absent, its agent stopped or died, or lost the cluster, reads fall back to
// RPC by themselves; the outcome says why and the cache's reader counters record it.
//
// Not thread-safe (one per thread, as CacheReader); the Client it uses may be shared.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "ringwire/kv/cache/cache_reader.hpp"
#include "ringwire/kv/client/client.hpp"

namespace ringwire::kv::client {

struct Freshness {
  bool linearizable = false;
  std::chrono::nanoseconds max_staleness = std::chrono::milliseconds(100);
};

struct ReadThroughResult {
  GetResult result;  // on a hit: one kv, header.revision = the cache's applied revision
  bool from_cache = false;
  cache::ReadOutcome outcome = cache::ReadOutcome::unavailable;
  std::int64_t cache_revision = 0;
  std::uint64_t cache_age_ns = 0;  // how old the cache's last confirmation was
};

class ReadThrough {
 public:
  ReadThrough(Client& rpc, std::string cache_name, cache::ReaderOptions o = {});

  Result<ReadThroughResult> get(const std::string& key, const Freshness& f = {});
  // The same into a caller-owned result whose strings and vector are reused: a hit then
  // allocates nothing once the buffers have grown (the hot-loop form).
  Status get_into(const std::string& key, ReadThroughResult& out, const Freshness& f = {});
  cache::CacheReader& cache() noexcept { return reader_; }

 private:
  Client& rpc_;
  cache::CacheReader reader_;
  cache::CachedEntry entry_;
};

}  // namespace ringwire::kv::client
