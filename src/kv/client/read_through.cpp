#include "ringwire/kv/client/read_through.hpp"

namespace ringwire::kv::client {

ReadThrough::ReadThrough(Client& rpc, std::string cache_name, cache::ReaderOptions o)
    : rpc_(rpc), reader_(std::move(cache_name), o) {}

Result<ReadThroughResult> ReadThrough::get(const std::string& key, const Freshness& f) {
  ReadThroughResult out;
  if (auto st = get_into(key, out, f); !st) return st;
  return out;
}

Status ReadThrough::get_into(const std::string& key, ReadThroughResult& out, const Freshness& f) {
  out.from_cache = false;
  out.outcome = cache::ReadOutcome::unavailable;
  out.cache_revision = 0;
  out.cache_age_ns = 0;
  if (!f.linearizable) {
    cache::ReadInfo info;
    out.outcome = reader_.get(key, entry_, f.max_staleness, &info);
    out.cache_revision = info.cache_revision;
    out.cache_age_ns = info.age_ns;
    if (out.outcome == cache::ReadOutcome::hit) {
      out.from_cache = true;
      out.result.header = Header{};
      out.result.header.revision = info.cache_revision;
      out.result.kvs.resize(1);
      out.result.more = false;
      out.result.count = 1;
      KeyValue& kv = out.result.kvs[0];
      kv.key.assign(key);
      // Swap rather than copy: the caller's old value buffer becomes the next lookup's, so
      // a reused `out` reaches a steady state with no allocation.
      kv.value.swap(entry_.value);
      kv.mod_revision = entry_.mod_revision;
      kv.create_revision = entry_.create_revision;
      kv.version = entry_.version;
      kv.lease = 0;
      return Status::ok();
    }
  }
  auto r = rpc_.get(key);
  if (!r) return r.status();
  out.result = std::move(*r);
  return Status::ok();
}

}  // namespace ringwire::kv::client
