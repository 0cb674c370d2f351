// The replicated state machine of one member: the MVCC key space, the client session table
// (exactly-once retries) and the member table. Deterministic: every replica that applies the
// same entries in the same order holds the same state. Owned by the Raft loop thread.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "ringwire/kv/internal.pb.h"
#include "ringwire/kv/store/mvcc_store.hpp"
#include "ringwire/raft/session.hpp"
#include "ringwire/raft/types.hpp"

namespace ringwire::kv::server {

class StateMachine {
 public:
  struct Applied {
    pb::ApplyResult result;
    bool has_result = false;  // false for entries with no caller-visible result (no-op, attrs)
    std::uint64_t origin = 0;
    std::uint64_t request_id = 0;
    bool members_changed = false;
  };

  // Applies one committed normal entry. A malformed entry (cannot happen unless the log is
  // corrupted; checksums make that unlikely) is skipped and reported in `error`.
  Applied apply(const raft::Entry& e, std::string* error);
  // A committed membership change (after raft::Node::apply_conf_change).
  void apply_conf_change(const raft::ConfChange& cc);

  std::string encode() const;
  // Replaces the whole state; false (state unchanged) when the bytes do not decode.
  bool restore(const std::string& data);

  store::MvccStore& store() { return store_; }
  const store::MvccStore& store() const { return store_; }
  const std::map<std::uint64_t, pb::MemberRecord>& members() const { return members_; }
  void add_founding_member(pb::MemberRecord m) { members_[m.id()] = std::move(m); }
  std::uint64_t cluster_id() const { return cluster_id_; }
  void set_cluster_id(std::uint64_t id) { cluster_id_ = id; }
  // The cached answer of a request already applied (a client retry), if any.
  std::optional<pb::ApplyResult> duplicate_result(std::uint64_t client, std::uint64_t seq) const;
  bool is_duplicate(std::uint64_t client, std::uint64_t seq) const {
    return client != 0 && !sessions_.is_new(client, seq);
  }

 private:
  store::MvccStore store_;
  raft::SessionTable sessions_;
  std::map<std::uint64_t, pb::MemberRecord> members_;
  std::uint64_t cluster_id_ = 0;
};

}  // namespace ringwire::kv::server
