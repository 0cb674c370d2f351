// Basic value types of the Raft core: node ids, log entries, hard state, read states.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ringwire::raft {

using NodeId = std::uint64_t;
inline constexpr NodeId kNone = 0;  // "no node": no vote, no known leader

enum class EntryType : std::uint8_t {
  kNormal,      // a client command (opaque) or the leader's no-op (empty)
  kConfChange,  // a membership change: data = ConfChange::encode()
};

struct Entry {
  std::uint64_t term = 0;
  std::uint64_t index = 0;
  std::string data;  // opaque to the core; empty for the leader's no-op
  EntryType type = EntryType::kNormal;

  friend bool operator==(const Entry&, const Entry&) = default;
};

// Who takes part: voters elect and count toward quorums; learners only receive the log.
struct ConfState {
  std::vector<NodeId> voters;
  std::vector<NodeId> learners;

  friend bool operator==(const ConfState&, const ConfState&) = default;
};

// One membership change at a time (single-server changes). It takes effect on a node when
// the host applies the entry and calls Node::apply_conf_change.
struct ConfChange {
  enum class Kind : std::uint8_t {
    kAddVoter,    // add a voter, or promote a learner
    kAddLearner,  // add a non-voting member that catches up before promotion
    kRemove,      // remove a voter or a learner
  };
  Kind kind = Kind::kAddVoter;
  NodeId node = kNone;

  std::string encode() const;
  static std::optional<ConfChange> decode(const std::string& data);
  friend bool operator==(const ConfChange&, const ConfChange&) = default;
};

// What must be durable before any message of the same Ready is sent.
struct HardState {
  std::uint64_t term = 0;
  NodeId vote = kNone;
  std::uint64_t commit = 0;

  friend bool operator==(const HardState&, const HardState&) = default;
};

// The state machine as of `index` (whose term is `term`): everything up to it is compacted
// out of the log. `data` is the host's encoding of its state machine (including the client
// session table); the core only carries it.
struct Snapshot {
  std::uint64_t index = 0;
  std::uint64_t term = 0;
  std::string data;
  ConfState conf = {};  // the membership as of `index`

  friend bool operator==(const Snapshot&, const Snapshot&) = default;
};

// A linearizable read became safe: serve it once applied index >= index.
struct ReadState {
  std::uint64_t index = 0;
  std::uint64_t context = 0;  // the caller's request id, echoed back
};

}  // namespace ringwire::raft
