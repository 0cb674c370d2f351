// What a kv_server member is told at start: who it is, where it listens, who the founding
// members are, where its data lives, and the Raft timing.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ringwire/core/status.hpp"
#include "ringwire/raft/types.hpp"

namespace ringwire::kv::server {

struct PeerSpec {
  std::string name;
  std::string peer_address;  // host:port of its peer (Raft) listener
  raft::NodeId id = raft::kNone;
};

struct ServerConfig {
  std::string name = "default";
  std::string listen = "127.0.0.1:2379";       // client API (etcd-compatible gRPC)
  std::string peer_listen = "127.0.0.1:2380";  // Raft traffic and forwarded writes
  std::vector<PeerSpec> cluster;               // founding members; empty = just this node
  std::string data_dir;
  std::string metrics_listen;  // "" = no /metrics endpoint
  bool join_existing = false;  // --initial-cluster-state existing
  int tick_ms = 10;
  int election_ticks = 50;   // 0.5 .. 1 s election timeout at 10 ms ticks
  int heartbeat_ticks = 5;   // 50 ms
  bool lease_reads = false;  // ReadIndex by leader lease (clock-drift assumption, see raft.md)
  std::uint64_t snapshot_entries = 10000;  // compact the log after this many applied entries
  std::size_t max_batch = 512;             // proposals per Raft append
  bool fsync = true;
  // Test-only: serve linearizable reads locally without ReadIndex (the fault checker must
  // catch the stale reads this allows).
  bool unsafe_local_reads = false;

  raft::NodeId self_id = raft::kNone;
  std::uint64_t cluster_id = 0;
};

// Member ids are derived from the peer address (as etcd derives them from peer URLs), so a
// member added by address gets the id it will compute for itself when it starts.
raft::NodeId member_id_for(std::string_view peer_address);
// "http://127.0.0.1:9101/" -> "127.0.0.1:9101"
std::string normalize_address(std::string_view url);

// Parses "n1=127.0.0.1:9101,n2=..." into specs (ids filled). Errors name the bad element.
core::Result<std::vector<PeerSpec>> parse_cluster(std::string_view text);

// Fills self_id / cluster_id and checks that this member is in the founding list (or joins),
// that names and addresses are unique, the timing is sane. Error text is for the operator.
core::Status finalize(ServerConfig& cfg);

}  // namespace ringwire::kv::server
