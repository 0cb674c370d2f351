#include "ringwire/raft/log.hpp"

#include <algorithm>
#include <cassert>
#include <utility>

namespace ringwire::raft {

Log::Log(std::vector<Entry> durable, std::uint64_t commit)
    : entries_(std::move(durable)),
      stable_(entries_.size()),
      unstable_from_(entries_.size() + 1),
      committed_(std::min<std::uint64_t>(commit, entries_.size())) {}

Log::Log(const Snapshot& snap, std::vector<Entry> durable, std::uint64_t commit)
    : entries_(std::move(durable)), offset_(snap.index), offset_term_(snap.term) {
  stable_ = last_index();
  unstable_from_ = last_index() + 1;
  // Everything in the snapshot is committed and, once the host restored it, applied.
  committed_ = std::clamp(commit, offset_, last_index());
  applied_ = offset_;
}

std::optional<std::uint64_t> Log::term(std::uint64_t i) const {
  if (i == offset_) return offset_term_;
  if (i < offset_ || i > last_index()) return std::nullopt;
  return entries_[i - offset_ - 1].term;
}

bool Log::is_up_to_date(std::uint64_t last_idx, std::uint64_t last_t) const {
  return last_t > last_term() || (last_t == last_term() && last_idx >= last_index());
}

void Log::append(std::vector<Entry> ents) {
  for (auto& e : ents) {
    assert(e.index == last_index() + 1);
    entries_.push_back(std::move(e));
  }
}

std::optional<std::uint64_t> Log::maybe_append(std::uint64_t prev_index, std::uint64_t prev_term,
                                               std::uint64_t commit, std::vector<Entry> ents) {
  if (!match_term(prev_index, prev_term)) return std::nullopt;
  const std::uint64_t last_new = prev_index + ents.size();
  std::size_t k = 0;  // first entry that is new or conflicts
  while (k < ents.size() && match_term(ents[k].index, ents[k].term))
    ++k;
  if (k < ents.size()) {
    const std::uint64_t from = ents[k].index;
    assert(from > committed_ && "a leader never overwrites a committed entry");
    if (from <= last_index()) {
      entries_.resize(from - offset_ - 1);
      stable_ = std::min(stable_, from - 1);
    }
    unstable_from_ = std::min(unstable_from_, from);
    for (std::size_t j = k; j < ents.size(); ++j)
      entries_.push_back(std::move(ents[j]));
  }
  commit_to(std::min(commit, last_new));
  return last_new;
}

std::uint64_t Log::find_conflict_by_term(std::uint64_t index, std::uint64_t t) const {
  index = std::min(index, last_index());
  if (index <= offset_) return index;  // compacted: committed, so it matches
  while (index > offset_ && entries_[index - offset_ - 1].term > t)
    --index;
  return index;
}

std::vector<Entry> Log::slice(std::uint64_t lo, std::uint64_t hi, std::size_t max_count,
                              std::size_t max_bytes) const {
  std::vector<Entry> out;
  assert(lo > offset_ && "slice of compacted entries");
  hi = std::min(hi, last_index() + 1);
  std::size_t bytes = 0;
  for (std::uint64_t i = lo; i < hi && out.size() < max_count; ++i) {
    const Entry& e = at(i);
    if (!out.empty() && bytes + e.data.size() > max_bytes) break;
    bytes += e.data.size();
    out.push_back(e);
  }
  return out;
}

void Log::commit_to(std::uint64_t i) {
  i = std::min(i, last_index());
  if (i > committed_) committed_ = i;
}

void Log::compact(std::uint64_t i) {
  assert(i <= applied_ && i <= stable_);
  if (i <= offset_) return;
  offset_term_ = *term(i);
  entries_.erase(entries_.begin(), entries_.begin() + static_cast<std::ptrdiff_t>(i - offset_));
  offset_ = i;
}

void Log::restore(const Snapshot& snap) {
  entries_.clear();
  offset_ = snap.index;
  offset_term_ = snap.term;
  // The snapshot comes in the same Ready as the messages that acknowledge it, and the host
  // persists it before sending them: from the acknowledgement's point of view it is stable.
  stable_ = snap.index;
  unstable_from_ = snap.index + 1;
  committed_ = snap.index;
  applied_ = snap.index;  // the host restores its state machine from the snapshot first
}

std::vector<Entry> Log::unstable_entries() const {
  if (!has_unstable()) return {};
  return {entries_.begin() + static_cast<std::ptrdiff_t>(unstable_from_ - offset_ - 1),
          entries_.end()};
}

void Log::stable_to(std::uint64_t i) {
  i = std::min(i, last_index());
  stable_ = std::max(stable_, i);
  unstable_from_ = std::max(unstable_from_, i + 1);
}

bool Log::has_next_committed() const {
  return std::min(committed_, stable_) > applied_;
}

std::vector<Entry> Log::next_committed() const {
  const std::uint64_t hi = std::min(committed_, stable_);
  if (hi <= applied_) return {};
  return {entries_.begin() + static_cast<std::ptrdiff_t>(applied_ - offset_),
          entries_.begin() + static_cast<std::ptrdiff_t>(hi - offset_)};
}

void Log::applied_to(std::uint64_t i) {
  assert(i <= committed_);
  applied_ = std::max(applied_, i);
}

}  // namespace ringwire::raft
