// Turns the WAL's batches, in order, into the durable Raft log, then reconciles it with the
// snapshot file that open() could actually read.
//
// Replay rules: an entry with index i truncates the log at i and is appended (that is how a
// replaced suffix is written); a mark that replaces the log (installed snapshot) empties it,
// and the log then continues at mark.index + 1; a compaction mark changes nothing yet, so the
// entries after an *older* snapshot are still at hand if the newest snapshot file is damaged.
// The last hard-state record wins.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "ringwire/core/status.hpp"
#include "ringwire/raft/types.hpp"
#include "storage/wal.hpp"

namespace ringwire::kv::storage {

class LogRebuilder {
 public:
  core::Status apply(const Segment& seg, const std::vector<Record>& batch) {
    for (const Record& r : batch) {
      switch (r.type) {
        case RecordType::kEntry:
          if (auto s = apply_entry(seg, r); !s) return s;
          break;
        case RecordType::kHardState:
          hard_state_ = r.hard_state;
          break;
        case RecordType::kSnapshotMark:
          if (r.mark.replaces_log) {
            entries_.clear();
            next_ = r.mark.index + 1;
          }
          need_ = r.mark;
          need_where_ = seg.path.string() + " at offset " + std::to_string(r.offset);
          break;
      }
    }
    return {};
  }

  // `snap` is the newest snapshot file that validated (none: nullopt). On success the log in
  // *entries starts at snap->index + 1 (or 1) and is contiguous.
  core::Status finish(const std::optional<raft::Snapshot>& snap, std::vector<raft::Entry>* entries,
                      std::vector<std::string>* notes) {
    const std::uint64_t base = snap ? snap->index : 0;
    entries->clear();
    // The WAL was written on top of the snapshot at need_->index; an older one will do only
    // if the entries in between are all still here (their segments not yet deleted).
    if (need_ && need_->index > base && !covers(base + 1, need_->index)) {
      return {core::Errc::corrupted, "WAL needs the snapshot at index " +
                                         std::to_string(need_->index) + " term " +
                                         std::to_string(need_->term) + " (marked in " +
                                         need_where_ + ") but no valid snapshot file covers it"};
    }
    if (entries_.empty() || entries_.back().index <= base) return {};
    const std::uint64_t front = entries_.front().index;
    if (front > base + 1) {
      return {core::Errc::corrupted, "WAL corrupted: the log resumes at index " +
                                         std::to_string(front) + " but the snapshot ends at " +
                                         std::to_string(base) + ": entries are missing"};
    }
    if (base > 0 && front <= base && entries_[base - front].term != snap->term) {
      // The snapshot file was written (installed from the leader) but the crash came before
      // its WAL mark: the entries after it are from a different history.
      notes->push_back("entries after snapshot index " + std::to_string(base) +
                       " dropped: they do not follow the snapshot (term " +
                       std::to_string(snap->term) + ")");
      return {};
    }
    const std::size_t skip = base >= front ? static_cast<std::size_t>(base - front + 1) : 0;
    entries->assign(std::make_move_iterator(entries_.begin() + static_cast<std::ptrdiff_t>(skip)),
                    std::make_move_iterator(entries_.end()));
    entries_.clear();
    return {};
  }

  const std::optional<raft::HardState>& hard_state() const { return hard_state_; }

 private:
  core::Status apply_entry(const Segment& seg, const Record& r) {
    const std::uint64_t i = r.entry.index;
    if (!entries_.empty()) {
      const std::uint64_t front = entries_.front().index;
      const std::uint64_t back = entries_.back().index;
      if (i > back + 1) return gap(seg, r, back + 1);
      // Truncate at i: everything from i on is replaced by what follows in the WAL.
      entries_.resize(i >= front ? static_cast<std::size_t>(i - front) : 0);
    } else if (next_ && i > *next_) {
      return gap(seg, r, *next_);
    }
    entries_.push_back(r.entry);
    return {};
  }

  static core::Status gap(const Segment& seg, const Record& r, std::uint64_t expected) {
    return {core::Errc::corrupted, "WAL corrupted: " + seg.path.string() + " at offset " +
                                       std::to_string(r.offset) + ": entry index " +
                                       std::to_string(r.entry.index) + " leaves a gap after " +
                                       std::to_string(expected - 1)};
  }

  bool covers(std::uint64_t lo, std::uint64_t hi) const {
    return !entries_.empty() && entries_.front().index <= lo && entries_.back().index >= hi;
  }

  std::vector<raft::Entry> entries_;   // contiguous, as of the last batch applied
  std::optional<std::uint64_t> next_;  // where the log must continue after a log-replacing mark
  std::optional<raft::HardState> hard_state_;
  std::optional<SnapshotMark> need_;  // the latest mark: the snapshot this WAL builds on
  std::string need_where_;
};

}  // namespace ringwire::kv::storage
