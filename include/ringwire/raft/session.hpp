// Client request dedup for a replicated state machine (Raft thesis, section 6.3). A client
// numbers its requests 1, 2, 3, ... and retries a request with the same number until it sees
// the answer, so the log can hold a command more than once; every replica applies it only the
// first time. The table is part of the replicated state: it is rebuilt by replaying the log
// and must be included in snapshots.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

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

  // For snapshots: "client seq length:result ..." (results may hold any bytes).
  std::string encode() const {
    std::string out;
    for (const auto& [client, l] : last_) {
      out += std::to_string(client) + ' ' + std::to_string(l.seq) + ' ' +
             std::to_string(l.result.size()) + ':' + l.result + ' ';
    }
    return out;
  }
  static std::optional<SessionTable> decode(std::string_view s) {
    SessionTable t;
    std::size_t pos = 0;
    auto number = [&](char end, std::uint64_t& v) {
      const std::size_t stop = s.find(end, pos);
      if (stop == std::string_view::npos || stop == pos) return false;
      v = 0;
      for (std::size_t i = pos; i < stop; ++i) {
        if (s[i] < '0' || s[i] > '9') return false;
        v = v * 10 + static_cast<std::uint64_t>(s[i] - '0');
      }
      pos = stop + 1;
      return true;
    };
    while (pos < s.size()) {
      std::uint64_t client = 0, seq = 0, len = 0;
      if (!number(' ', client) || !number(' ', seq) || !number(':', len)) return std::nullopt;
      if (len > s.size() - pos || pos + len >= s.size() || s[pos + len] != ' ') return std::nullopt;
      t.record(client, seq, std::string(s.substr(pos, len)));
      pos += len + 1;
    }
    return t;
  }
  friend bool operator==(const SessionTable& a, const SessionTable& b) {
    return a.encode() == b.encode();
  }

 private:
  struct Last {
    std::uint64_t seq;
    std::string result;
  };
  std::map<std::uint64_t, Last> last_;
};

}  // namespace ringwire::raft
