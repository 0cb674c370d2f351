#include "server/watch_hub.hpp"

namespace ringwire::kv::server {

bool WatchStream::push(etcdserverpb::WatchResponse r) {
  {
    std::lock_guard lk(mu_);
    if (closed_) return false;
    if (q_.size() >= kMaxQueued) {
      closed_ = true;
      reason_ = "watch stream consumer too slow";
      q_.clear();
    } else {
      q_.push_back(std::move(r));
    }
  }
  cv_.notify_one();
  return true;
}

std::optional<etcdserverpb::WatchResponse> WatchStream::pop(std::chrono::milliseconds timeout) {
  std::unique_lock lk(mu_);
  cv_.wait_for(lk, timeout, [&] { return !q_.empty() || closed_; });
  if (q_.empty()) return std::nullopt;
  auto r = std::move(q_.front());
  q_.pop_front();
  return r;
}

void WatchStream::close(std::string reason) {
  {
    std::lock_guard lk(mu_);
    if (!closed_ && !reason.empty()) reason_ = std::move(reason);
    closed_ = true;
  }
  cv_.notify_all();
}

bool WatchStream::closed() const {
  std::lock_guard lk(mu_);
  return closed_;
}

std::string WatchStream::close_reason() const {
  std::lock_guard lk(mu_);
  return reason_;
}

std::uint64_t WatchHub::add_stream(std::shared_ptr<WatchStream> s) {
  const std::uint64_t id = next_stream_++;
  streams_[id].out = std::move(s);
  return id;
}

void WatchHub::remove_stream(std::uint64_t stream) {
  streams_.erase(stream);
}

std::optional<std::int64_t> WatchHub::add_watcher(std::uint64_t stream, Watcher w) {
  auto it = streams_.find(stream);
  if (it == streams_.end()) return std::nullopt;
  auto& st = it->second;
  if (w.id == 0) {
    while (st.watchers.count(st.next_id) != 0)
      ++st.next_id;
    w.id = st.next_id++;
  } else if (st.watchers.count(w.id) != 0 || w.id < 0) {
    return std::nullopt;
  }
  const auto id = w.id;
  st.watchers.emplace(id, std::move(w));
  return id;
}

bool WatchHub::cancel(std::uint64_t stream, std::int64_t watch_id) {
  auto it = streams_.find(stream);
  return it != streams_.end() && it->second.watchers.erase(watch_id) > 0;
}

std::shared_ptr<WatchStream> WatchHub::stream(std::uint64_t id) const {
  auto it = streams_.find(id);
  return it == streams_.end() ? nullptr : it->second.out;
}

void WatchHub::filter(const Watcher& w, const std::vector<mvccpb::Event>& events,
                      google::protobuf::RepeatedPtrField<mvccpb::Event>* out) {
  for (const auto& e : events) {
    if (!w.range.contains(e.kv().key())) continue;
    if (e.type() == mvccpb::Event::PUT && w.no_put) continue;
    if (e.type() == mvccpb::Event::DELETE && w.no_delete) continue;
    auto* copy = out->Add();
    *copy = e;
    if (!w.prev_kv) copy->clear_prev_kv();
  }
}

void WatchHub::on_events(const etcdserverpb::ResponseHeader& header,
                         const std::vector<mvccpb::Event>& events) {
  std::vector<std::uint64_t> dead;
  for (auto& [sid, st] : streams_) {
    for (const auto& [wid, w] : st.watchers) {
      etcdserverpb::WatchResponse r;
      filter(w, events, r.mutable_events());
      if (r.events_size() == 0) continue;
      *r.mutable_header() = header;
      r.set_watch_id(wid);
      if (!st.out->push(std::move(r)) || st.out->closed()) {
        dead.push_back(sid);
        break;
      }
    }
  }
  for (auto sid : dead)
    streams_.erase(sid);
}

void WatchHub::notify_progress(const etcdserverpb::ResponseHeader& header) {
  for (auto& [sid, st] : streams_) {
    for (const auto& [wid, w] : st.watchers) {
      if (!w.progress_notify) continue;
      etcdserverpb::WatchResponse r;
      *r.mutable_header() = header;
      r.set_watch_id(wid);
      st.out->push(std::move(r));
    }
  }
}

void WatchHub::close_all(const std::string& reason) {
  for (auto& [sid, st] : streams_)
    st.out->close(reason);
  streams_.clear();
}

std::size_t WatchHub::watcher_count() const {
  std::size_t n = 0;
  for (const auto& [sid, st] : streams_)
    n += st.watchers.size();
  return n;
}

}  // namespace ringwire::kv::server
