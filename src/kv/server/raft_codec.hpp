// raft::Message <-> the wire form sent between members (pb::RaftMessage). The receiving side
// never trusts the bytes: an unknown message or entry type is refused, not cast.
#pragma once

#include <optional>

#include "ringwire/kv/internal.pb.h"
#include "ringwire/raft/message.hpp"

namespace ringwire::kv::server {

void to_wire(const raft::Message& m, pb::RaftMessage* out);
std::optional<raft::Message> from_wire(const pb::RaftMessage& m);

void to_wire(const raft::Snapshot& s, pb::RaftSnapshot* out);
std::optional<raft::Snapshot> from_wire(const pb::RaftSnapshot& s);

}  // namespace ringwire::kv::server
