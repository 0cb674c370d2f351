// Wing & Gong style linearizability check of a single register (one key) history.
#pragma once

#include <cstdint>
#include <limits>
#include <set>
#include <utility>
#include <vector>

namespace ringwire::raft::sim {

inline constexpr std::uint64_t kNever = std::numeric_limits<std::uint64_t>::max();

struct RegisterOp {
  std::uint64_t invoke = 0;
  std::uint64_t end = kNever;  // kNever: no response seen (a write may or may not have happened)
  bool is_write = false;
  std::int64_t value = 0;  // written value, or the value a read returned
};

// True if the history has a linearization starting from `initial`. Histories are small (<= 64
// ops); a memo of (linearized set, register value) keeps the search polynomial in practice.
class RegisterChecker {
 public:
  explicit RegisterChecker(std::vector<RegisterOp> ops, std::int64_t initial = 0)
      : ops_(std::move(ops)), initial_(initial) {
    for (std::size_t i = 0; i < ops_.size(); ++i) {
      if (ops_[i].end != kNever) required_ |= bit(i);
    }
  }

  bool check() {
    if (ops_.size() > 64) return false;
    return search(0, initial_);
  }

 private:
  static std::uint64_t bit(std::size_t i) { return std::uint64_t{1} << i; }

  bool search(std::uint64_t done, std::int64_t value) {
    if ((done & required_) == required_) return true;
    if (!seen_.emplace(done, value).second) return false;
    std::uint64_t min_end = kNever;
    for (std::size_t i = 0; i < ops_.size(); ++i) {
      if (!(done & bit(i)) && ops_[i].end < min_end) min_end = ops_[i].end;
    }
    for (std::size_t i = 0; i < ops_.size(); ++i) {
      if (done & bit(i)) continue;
      const RegisterOp& op = ops_[i];
      if (op.invoke > min_end) continue;  // some pending op finished before this one began
      if (op.is_write) {
        if (search(done | bit(i), op.value)) return true;
      } else if (op.value == value) {
        if (search(done | bit(i), value)) return true;
      }
    }
    return false;
  }

  std::vector<RegisterOp> ops_;
  std::int64_t initial_;
  std::uint64_t required_ = 0;
  std::set<std::pair<std::uint64_t, std::int64_t>> seen_;
};

}  // namespace ringwire::raft::sim
