#include "ringwire/kv/client/read_through.hpp"

namespace ringwire::kv::client {

ReadThrough::ReadThrough(Client& rpc, std::string cache_name, cache::ReaderOptions o)
    : rpc_(rpc), reader_(std::move(cache_name), o) {}

Result<ReadThroughResult> ReadThrough::get(const std::string& key, const Freshness& f) {
  ReadThroughResult out;
  if (!f.linearizable) {
    cache::ReadInfo info;
    out.outcome = reader_.get(key, entry_, f.max_staleness, &info);
    out.cache_revision = info.cache_revision;
    out.cache_age_ns = info.age_ns;
    if (out.outcome == cache::ReadOutcome::hit) {
      out.from_cache = true;
      out.result.header.revision = info.cache_revision;
      KeyValue kv;
      kv.key = key;
      kv.value = entry_.value;
      kv.mod_revision = entry_.mod_revision;
      kv.create_revision = entry_.create_revision;
      kv.version = entry_.version;
      out.result.kvs.push_back(std::move(kv));
      out.result.count = 1;
      return out;
    }
  }
  auto r = rpc_.get(key);
  if (!r) return r.status();
  out.result = std::move(*r);
  return out;
}

}  // namespace ringwire::kv::client
