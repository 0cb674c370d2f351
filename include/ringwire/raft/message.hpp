// Messages between Raft nodes: one plain struct with a type tag.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "ringwire/raft/types.hpp"

namespace ringwire::raft {

enum class MessageType : std::uint8_t {
  kPreVote,        // index/log_term: candidate's last entry; term: the term it would use
  kPreVoteResp,    // reject
  kVote,           // index/log_term: candidate's last entry
  kVoteResp,       // reject
  kAppend,         // index/log_term: entry preceding `entries`; commit: leader's commit
  kAppendResp,     // accept: index = last matching index; reject: index = rejected prev index,
                   //   reject_hint/log_term = follower's hint (largest index <= hint with term
                   //   <= log_term) for fast backtracking
  kHeartbeat,      // commit: min(follower's match, leader commit); context: read round
  kHeartbeatResp,  // context echoed
  kReadIndex,      // follower -> leader: context = follower's request id
  kReadIndexResp,  // leader -> follower: index = read index, context echoed
  kTimeoutNow,     // leader -> transferee: campaign now (leadership transfer)
  kSnapshot,       // leader -> follower whose next entry was compacted away: `snapshot`;
                   //   answered with kAppendResp (index = the follower's new match)
};

std::string_view to_string(MessageType t);

struct Message {
  MessageType type = MessageType::kAppend;
  NodeId from = kNone;
  NodeId to = kNone;
  std::uint64_t term = 0;
  std::uint64_t log_term = 0;
  std::uint64_t index = 0;
  std::uint64_t commit = 0;
  std::uint64_t reject_hint = 0;
  std::uint64_t context = 0;
  bool reject = false;
  bool transfer = false;  // kVote: the campaign was asked for by the leader (bypasses the lease)
  std::vector<Entry> entries;
  Snapshot snapshot;  // kSnapshot only
};

}  // namespace ringwire::raft
