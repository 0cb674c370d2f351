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

std::string ConfChange::encode() const {
  const char* k = kind == Kind::kAddVoter     ? "voter"
                  : kind == Kind::kAddLearner ? "learner"
                                              : "remove";
  return std::string(k) + ' ' + std::to_string(node);
}

std::optional<ConfChange> ConfChange::decode(const std::string& data) {
  const std::size_t sp = data.find(' ');
  if (sp == std::string::npos || sp + 1 >= data.size()) return std::nullopt;
  const std::string k = data.substr(0, sp);
  ConfChange cc;
  if (k == "voter") {
    cc.kind = Kind::kAddVoter;
  } else if (k == "learner") {
    cc.kind = Kind::kAddLearner;
  } else if (k == "remove") {
    cc.kind = Kind::kRemove;
  } else {
    return std::nullopt;
  }
  std::uint64_t id = 0;
  for (std::size_t i = sp + 1; i < data.size(); ++i) {
    if (data[i] < '0' || data[i] > '9' || id > (UINT64_MAX - 9) / 10) return std::nullopt;
    id = id * 10 + static_cast<std::uint64_t>(data[i] - '0');
  }
  if (id == kNone) return std::nullopt;
  cc.node = id;
  return cc;
}

}  // namespace ringwire::raft
