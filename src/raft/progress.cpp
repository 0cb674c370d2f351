#include "ringwire/raft/progress.hpp"

#include <algorithm>

namespace ringwire::raft {

void Inflights::add(std::uint64_t last_index, std::size_t bytes) {
  items_.push_back({last_index, bytes});
  bytes_ += bytes;
}

void Inflights::free_le(std::uint64_t index) {
  while (!items_.empty() && items_.front().last_index <= index)
    free_first();
}

void Inflights::free_first() {
  if (items_.empty()) return;
  bytes_ -= items_.front().bytes;
  items_.pop_front();
}

void Inflights::reset() {
  items_.clear();
  bytes_ = 0;
}

void Progress::become_probe() {
  state_ = State::kProbe;
  next_ = match_ + 1;
  probe_sent_ = false;
  inflights_.reset();
}

void Progress::become_replicate() {
  state_ = State::kReplicate;
  next_ = match_ + 1;
  probe_sent_ = false;
  inflights_.reset();
}

bool Progress::maybe_update(std::uint64_t n) {
  bool updated = false;
  if (match_ < n) {
    match_ = n;
    updated = true;
    probe_sent_ = false;
  }
  next_ = std::max(next_, n + 1);
  return updated;
}

bool Progress::maybe_decrease(std::uint64_t rejected, std::uint64_t hint) {
  if (state_ == State::kReplicate) {
    if (rejected <= match_) return false;  // stale: already known to match further
    next_ = match_ + 1;
    return true;
  }
  if (next_ - 1 != rejected) return false;  // not a response to our current probe
  next_ = std::max(std::min(rejected, hint + 1), match_ + 1);
  probe_sent_ = false;
  return true;
}

void Progress::sent_entries(std::uint64_t last, std::size_t bytes, bool any) {
  if (state_ == State::kReplicate) {
    if (any) {
      next_ = last + 1;
      inflights_.add(last, bytes);
    }
  } else {
    probe_sent_ = true;
  }
}

void Progress::sent_snapshot(std::uint64_t index) {
  state_ = State::kProbe;
  inflights_.reset();
  next_ = std::max(index, match_) + 1;
  probe_sent_ = true;
}

void Progress::heartbeat_ack() {
  probe_sent_ = false;
  if (state_ == State::kReplicate && inflights_.full()) inflights_.free_first();
}

bool Progress::is_paused() const {
  return state_ == State::kProbe ? probe_sent_ : inflights_.full();
}

}  // namespace ringwire::raft
