#include "server/state_machine.hpp"

namespace ringwire::kv::server {

StateMachine::Applied StateMachine::apply(const raft::Entry& e, std::string* error) {
  Applied out;
  if (e.data.empty()) return out;  // the leader's no-op
  pb::Command cmd;
  if (!cmd.ParseFromString(e.data)) {
    *error = "entry " + std::to_string(e.index) + " does not decode; skipped";
    return out;
  }
  out.origin = cmd.origin();
  out.request_id = cmd.request_id();
  switch (cmd.op_case()) {
    case pb::Command::kAttributes: {
      auto it = members_.find(cmd.attributes().id());
      if (it != members_.end()) {
        it->second.set_name(cmd.attributes().name());
        it->second.set_client_url(cmd.attributes().client_url());
        out.members_changed = true;
      }
      out.has_result = true;
      return out;
    }
    case pb::Command::kAddMember: {
      auto& m = members_[cmd.add_member().id()];
      const std::string name = m.name();
      m = cmd.add_member();
      if (m.name().empty()) m.set_name(name);
      out.members_changed = true;
      out.has_result = true;
      return out;
    }
    case pb::Command::OP_NOT_SET:
      *error = "entry " + std::to_string(e.index) + " has no operation; skipped";
      return out;
    default:
      break;
  }
  out.has_result = true;
  if (cmd.client_id() != 0 && !sessions_.is_new(cmd.client_id(), cmd.seq())) {
    // A retry of something already applied: answer it as the first time, change nothing.
    if (auto r = duplicate_result(cmd.client_id(), cmd.seq())) {
      out.result = std::move(*r);
    } else {
      out.result.set_grpc_code(9);  // FAILED_PRECONDITION
      out.result.set_error("ringwire: request " + std::to_string(cmd.seq()) +
                           " of this client is older than its latest one");
    }
    return out;
  }
  out.result = store_.apply(cmd);
  if (cmd.client_id() != 0) {
    sessions_.record(cmd.client_id(), cmd.seq(), out.result.SerializeAsString());
  }
  return out;
}

void StateMachine::apply_conf_change(const raft::ConfChange& cc) {
  auto it = members_.find(cc.node);
  switch (cc.kind) {
    case raft::ConfChange::Kind::kRemove:
      if (it != members_.end()) members_.erase(it);
      break;
    case raft::ConfChange::Kind::kAddVoter:
      if (it != members_.end()) it->second.set_learner(false);
      break;
    case raft::ConfChange::Kind::kAddLearner:
      if (it != members_.end()) it->second.set_learner(true);
      break;
  }
}

std::optional<pb::ApplyResult> StateMachine::duplicate_result(std::uint64_t client,
                                                              std::uint64_t seq) const {
  auto s = sessions_.result(client, seq);
  if (!s) return std::nullopt;
  pb::ApplyResult r;
  if (!r.ParseFromString(*s)) return std::nullopt;
  return r;
}

std::string StateMachine::encode() const {
  pb::StoreSnapshot snap;
  store_.encode(&snap);
  snap.set_sessions(sessions_.encode());
  for (const auto& [id, m] : members_)
    *snap.add_members() = m;
  snap.set_cluster_id(cluster_id_);
  return snap.SerializeAsString();
}

bool StateMachine::restore(const std::string& data) {
  pb::StoreSnapshot snap;
  if (!snap.ParseFromString(data)) return false;
  auto sessions = raft::SessionTable::decode(snap.sessions());
  if (!sessions) return false;
  store::MvccStore fresh;
  if (!fresh.restore(snap)) return false;
  // Keep the event sink: it belongs to the host, not to the state.
  store_.restore(snap);
  sessions_ = std::move(*sessions);
  members_.clear();
  for (const auto& m : snap.members())
    members_[m.id()] = m;
  cluster_id_ = snap.cluster_id();
  return true;
}

}  // namespace ringwire::kv::server
