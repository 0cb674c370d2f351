#include "ringwire/raft/message.hpp"

namespace ringwire::raft {

std::string_view to_string(MessageType t) {
  switch (t) {
    case MessageType::kPreVote:
      return "PreVote";
    case MessageType::kPreVoteResp:
      return "PreVoteResp";
    case MessageType::kVote:
      return "Vote";
    case MessageType::kVoteResp:
      return "VoteResp";
    case MessageType::kAppend:
      return "Append";
    case MessageType::kAppendResp:
      return "AppendResp";
    case MessageType::kHeartbeat:
      return "Heartbeat";
    case MessageType::kHeartbeatResp:
      return "HeartbeatResp";
    case MessageType::kReadIndex:
      return "ReadIndex";
    case MessageType::kTimeoutNow:
      return "TimeoutNow";
    case MessageType::kReadIndexResp:
      return "ReadIndexResp";
    case MessageType::kSnapshot:
      return "Snapshot";
  }
  return "?";
}

}  // namespace ringwire::raft
