// The leader's view of each follower: match/next indices, probe vs replicate state and the
// flow-control window of in-flight append messages (count and bytes).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>

namespace ringwire::raft {

// Sliding window of append messages sent but not yet acknowledged.
class Inflights {
 public:
  Inflights(std::size_t max_msgs, std::size_t max_bytes)
      : max_msgs_(max_msgs), max_bytes_(max_bytes) {}
  void add(std::uint64_t last_index, std::size_t bytes);
  void free_le(std::uint64_t index);  // everything acknowledged up to index
  void free_first();
  void reset();
  bool full() const { return items_.size() >= max_msgs_ || bytes_ >= max_bytes_; }
  std::size_t count() const { return items_.size(); }
  std::size_t bytes() const { return bytes_; }

 private:
  struct Item {
    std::uint64_t last_index;
    std::size_t bytes;
  };
  std::deque<Item> items_;
  std::size_t bytes_ = 0;
  std::size_t max_msgs_;
  std::size_t max_bytes_;
};

class Progress {
 public:
  enum class State : std::uint8_t { kProbe, kReplicate };

  Progress(std::uint64_t next, std::size_t max_msgs, std::size_t max_bytes)
      : next_(next), inflights_(max_msgs, max_bytes) {}

  std::uint64_t match() const { return match_; }
  std::uint64_t next() const { return next_; }
  State state() const { return state_; }
  Inflights& inflights() { return inflights_; }
  std::size_t inflights_count() const { return inflights_.count(); }

  bool recent_active = false;

  void become_probe();
  void become_replicate();
  // An acknowledgement up to n. Returns true if match advanced.
  bool maybe_update(std::uint64_t n);
  // A rejection of an append whose prev index was `rejected`; `hint` is where to probe next.
  // Returns false for a stale rejection.
  bool maybe_decrease(std::uint64_t rejected, std::uint64_t hint);
  // Bookkeeping after sending entries up to last (bytes of payload); empty appends pass 0/0.
  void sent_entries(std::uint64_t last, std::size_t bytes, bool any);
  // A snapshot at `index` went out: probe from just after it, paused until an answer.
  void sent_snapshot(std::uint64_t index);
  void heartbeat_ack();  // a heartbeat response: allow another probe, unclog a full window
  bool is_paused() const;

 private:
  std::uint64_t match_ = 0;
  std::uint64_t next_ = 1;
  State state_ = State::kProbe;
  bool probe_sent_ = false;
  Inflights inflights_;
};

}  // namespace ringwire::raft
