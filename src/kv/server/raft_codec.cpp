#include "server/raft_codec.hpp"

namespace ringwire::kv::server {

namespace {
constexpr std::uint32_t kMaxMessageType = static_cast<std::uint32_t>(raft::MessageType::kSnapshot);
constexpr std::uint32_t kMaxEntryType = static_cast<std::uint32_t>(raft::EntryType::kConfChange);
}  // namespace

void to_wire(const raft::Snapshot& s, pb::RaftSnapshot* out) {
  out->set_index(s.index);
  out->set_term(s.term);
  for (auto v : s.conf.voters)
    out->add_voters(v);
  for (auto l : s.conf.learners)
    out->add_learners(l);
  out->set_data(s.data);
}

std::optional<raft::Snapshot> from_wire(const pb::RaftSnapshot& s) {
  raft::Snapshot out;
  out.index = s.index();
  out.term = s.term();
  out.conf.voters.assign(s.voters().begin(), s.voters().end());
  out.conf.learners.assign(s.learners().begin(), s.learners().end());
  out.data = s.data();
  return out;
}

void to_wire(const raft::Message& m, pb::RaftMessage* out) {
  out->set_type(static_cast<std::uint32_t>(m.type));
  out->set_from(m.from);
  out->set_to(m.to);
  out->set_term(m.term);
  out->set_log_term(m.log_term);
  out->set_index(m.index);
  out->set_commit(m.commit);
  out->set_reject_hint(m.reject_hint);
  out->set_context(m.context);
  out->set_reject(m.reject);
  out->set_transfer(m.transfer);
  out->mutable_entries()->Reserve(static_cast<int>(m.entries.size()));
  for (const auto& e : m.entries) {
    auto* w = out->add_entries();
    w->set_term(e.term);
    w->set_index(e.index);
    w->set_type(static_cast<std::uint32_t>(e.type));
    w->set_data(e.data);
  }
  if (m.type == raft::MessageType::kSnapshot) to_wire(m.snapshot, out->mutable_snapshot());
}

std::optional<raft::Message> from_wire(const pb::RaftMessage& w) {
  if (w.type() > kMaxMessageType) return std::nullopt;
  raft::Message m;
  m.type = static_cast<raft::MessageType>(w.type());
  m.from = w.from();
  m.to = w.to();
  m.term = w.term();
  m.log_term = w.log_term();
  m.index = w.index();
  m.commit = w.commit();
  m.reject_hint = w.reject_hint();
  m.context = w.context();
  m.reject = w.reject();
  m.transfer = w.transfer();
  m.entries.reserve(static_cast<std::size_t>(w.entries_size()));
  for (const auto& e : w.entries()) {
    if (e.type() > kMaxEntryType) return std::nullopt;
    m.entries.push_back({e.term(), e.index(), e.data(), static_cast<raft::EntryType>(e.type())});
  }
  if (m.type == raft::MessageType::kSnapshot) {
    auto s = from_wire(w.snapshot());
    if (!s) return std::nullopt;
    m.snapshot = std::move(*s);
  }
  return m;
}

}  // namespace ringwire::kv::server
