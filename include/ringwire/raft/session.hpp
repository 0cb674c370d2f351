// Client request dedup for a replicated state machine (Raft thesis, section 6.3). A client
// numbers its requests 1, 2, 3, ... and retries a request with the same number until it sees
// the answer, so the log can hold a command more than once; every replica applies it only the
// first time. The table is part of the replicated state: it is rebuilt by replaying the log
// and must be included in snapshots (when those exist).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace ringwire::raft {

class SessionTable {
 public:
  // True when (client, seq) has not been applied yet: apply the command, then record().
  // A client has at most one request outstanding, so anything <= its last seq is a duplicate.
  bool is_new(std::uint64_t client, std::uint64_t seq) const {
    auto it = last_.find(client);
    return it == last_.end() || seq > it->second.seq;
  }
  void record(std::uint64_t client, std::uint64_t seq, std::string result) {
    last_[client] = {seq, std::move(result)};
  }
  // The answer to a duplicate of the client's latest request (to reply to a retry).
  std::optional<std::string> result(std::uint64_t client, std::uint64_t seq) const {
    auto it = last_.find(client);
    if (it == last_.end() || it->second.seq != seq) return std::nullopt;
    return it->second.result;
  }
  void clear() { last_.clear(); }

 private:
  struct Last {
    std::uint64_t seq;
    std::string result;
  };
  std::map<std::uint64_t, Last> last_;
};

}  // namespace ringwire::raft
