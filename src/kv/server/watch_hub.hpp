// Watch fan-out. The Raft loop owns the hub (no lock): it registers watchers, hands every
// applied revision's events to the matching ones, and answers progress requests. Each Watch
// RPC stream has an outbound queue (WatchStream) that the loop fills and the stream's gRPC
// handler thread drains; that queue is the only thing shared between threads.
//
// No gap between history and live events: a watcher from an old revision is created inside
// the loop, which replays the history (MvccStore::events_since) and registers the watcher
// before it applies the next entry.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "etcdserverpb/rpc.pb.h"
#include "ringwire/kv/store/key_range.hpp"

namespace ringwire::kv::server {

class WatchStream {
 public:
  // A consumer this far behind is cut off rather than letting the member run out of memory.
  static constexpr std::size_t kMaxQueued = 65536;

  // Loop thread. False when the stream is closed (or was just closed for being too slow).
  bool push(etcdserverpb::WatchResponse r);
  // Handler thread: waits up to `timeout` for a response. nullopt on timeout or when closed and
  // drained (check closed()).
  std::optional<etcdserverpb::WatchResponse> pop(std::chrono::milliseconds timeout);
  void close(std::string reason = {});
  bool closed() const;
  std::string close_reason() const;

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<etcdserverpb::WatchResponse> q_;
  bool closed_ = false;
  std::string reason_;
};

struct Watcher {
  std::int64_t id = 0;
  store::KeyRange range;
  bool prev_kv = false;
  bool no_put = false;
  bool no_delete = false;
  bool progress_notify = false;
};

class WatchHub {
 public:
  std::uint64_t add_stream(std::shared_ptr<WatchStream> s);
  void remove_stream(std::uint64_t stream);
  // Registers a watcher; id 0 picks the next free id. nullopt when the id is taken.
  std::optional<std::int64_t> add_watcher(std::uint64_t stream, Watcher w);
  bool cancel(std::uint64_t stream, std::int64_t watch_id);
  std::shared_ptr<WatchStream> stream(std::uint64_t id) const;

  // One revision's events: to every matching watcher, one response each.
  void on_events(const etcdserverpb::ResponseHeader& header,
                 const std::vector<mvccpb::Event>& events);
  // Empty responses carrying header.revision to every progress_notify watcher.
  void notify_progress(const etcdserverpb::ResponseHeader& header);
  std::size_t watcher_count() const;
  // Ends every stream (after a snapshot install the history they were following is gone).
  void close_all(const std::string& reason);

  // Applies the watcher's filters and prev_kv choice to `events` (used for history replay).
  static void filter(const Watcher& w, const std::vector<mvccpb::Event>& events,
                     google::protobuf::RepeatedPtrField<mvccpb::Event>* out);

 private:
  struct StreamState {
    std::shared_ptr<WatchStream> out;
    std::map<std::int64_t, Watcher> watchers;
    std::int64_t next_id = 1;
  };
  std::map<std::uint64_t, StreamState> streams_;
  std::uint64_t next_stream_ = 1;
};

}  // namespace ringwire::kv::server
