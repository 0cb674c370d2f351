// Basic value types of the Raft core: node ids, log entries, hard state, read states.
#pragma once

#include <cstdint>
#include <string>

namespace ringwire::raft {

using NodeId = std::uint64_t;
inline constexpr NodeId kNone = 0;  // "no node": no vote, no known leader

struct Entry {
  std::uint64_t term = 0;
  std::uint64_t index = 0;
  std::string data;  // opaque to the core; empty for the leader's no-op

  friend bool operator==(const Entry&, const Entry&) = default;
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

  friend bool operator==(const Snapshot&, const Snapshot&) = default;
};

// A linearizable read became safe: serve it once applied index >= index.
struct ReadState {
  std::uint64_t index = 0;
  std::uint64_t context = 0;  // the caller's request id, echoed back
};

}  // namespace ringwire::raft
