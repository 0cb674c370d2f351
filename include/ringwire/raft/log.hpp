// The in-memory replicated log owned by a node. Indices start at 1; index 0 is the empty
// prefix (term 0). Entries up to `snapshot_index()` may be compacted away into a snapshot:
// the log then remembers only that index and its term. The log tracks which suffix the host
// has not persisted yet ("unstable"), what is committed and what the host has applied.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "ringwire/raft/types.hpp"

namespace ringwire::raft {

class Log {
 public:
  Log() = default;
  // Restart from the durable log (entries 1..n, all stable) and durable commit index.
  Log(std::vector<Entry> durable, std::uint64_t commit);
  // Restart from a durable snapshot and the entries after it (snap.index + 1 ...).
  Log(const Snapshot& snap, std::vector<Entry> durable, std::uint64_t commit);

  std::uint64_t snapshot_index() const { return offset_; }
  std::uint64_t snapshot_term() const { return offset_term_; }
  std::uint64_t first_index() const { return offset_ + 1; }
  std::uint64_t last_index() const { return offset_ + entries_.size(); }
  std::uint64_t last_term() const { return term(last_index()).value_or(0); }
  // Term of entry i; 0 for i == 0; nullopt when i is past the end or compacted away (below
  // the snapshot index; the snapshot index itself keeps its term).
  std::optional<std::uint64_t> term(std::uint64_t i) const;
  bool match_term(std::uint64_t i, std::uint64_t t) const { return term(i) == t; }
  // True if a log ending at (last_index, last_term) is at least as up to date as ours.
  bool is_up_to_date(std::uint64_t last_idx, std::uint64_t last_t) const;

  std::uint64_t committed() const { return committed_; }
  std::uint64_t applied() const { return applied_; }
  std::uint64_t stable() const { return stable_; }

  // Leader: append new entries at the end (their index/term are already set).
  void append(std::vector<Entry> ents);
  // Follower: accept entries after (prev_index, prev_term). Returns the last index known to
  // match the leader, or nullopt when (prev_index, prev_term) does not match. Truncates a
  // conflicting suffix (never a committed entry) and raises commit to min(commit, last new).
  std::optional<std::uint64_t> maybe_append(std::uint64_t prev_index, std::uint64_t prev_term,
                                            std::uint64_t commit, std::vector<Entry> ents);
  // Largest index <= index whose term <= t (the conflict hint for fast backtracking); never
  // below the snapshot index (compacted entries are committed, so they match).
  std::uint64_t find_conflict_by_term(std::uint64_t index, std::uint64_t t) const;

  // Entries [lo, hi) limited to max_count entries and max_bytes payload (at least one entry).
  std::vector<Entry> slice(std::uint64_t lo, std::uint64_t hi, std::size_t max_count,
                           std::size_t max_bytes) const;
  // i in [first_index(), last_index()].
  const Entry& at(std::uint64_t i) const { return entries_[i - offset_ - 1]; }

  void commit_to(std::uint64_t i);

  // Drops entries up to i (applied, so durable and committed), keeping i's term.
  void compact(std::uint64_t i);
  // Replaces the whole log by a snapshot from the leader (everything up to it committed and,
  // once the host has restored it, applied).
  void restore(const Snapshot& snap);

  // Persistence handshake: entries the host must still write (first index = truncation point).
  std::vector<Entry> unstable_entries() const;
  bool has_unstable() const { return unstable_from_ <= last_index(); }
  void stable_to(std::uint64_t i);  // the host made entries up to i durable

  // Application: committed entries that are also durable here and not yet applied.
  std::vector<Entry> next_committed() const;
  bool has_next_committed() const;
  void applied_to(std::uint64_t i);

 private:
  std::vector<Entry> entries_;  // entries_[i - offset_ - 1] is index i
  std::uint64_t offset_ = 0;    // snapshot index: entries up to here are compacted
  std::uint64_t offset_term_ = 0;
  std::uint64_t stable_ = 0;         // durable on the host up to here (before truncations)
  std::uint64_t unstable_from_ = 1;  // first index the host must (re)write
  std::uint64_t committed_ = 0;
  std::uint64_t applied_ = 0;
};

}  // namespace ringwire::raft
