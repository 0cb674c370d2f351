// Outbound Raft traffic to the other members. One link per peer, each with its own thread,
// queue and long-lived gRPC client stream (Peer.Stream), so a peer that is down or slow only
// delays its own messages: the Raft loop never blocks on the network. Messages queued while
// a link is down are dropped (Raft retransmits what matters); the link reconnects with
// exponential backoff (50 ms .. 1 s).
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "ringwire/kv/internal.grpc.pb.h"
#include "ringwire/raft/message.hpp"
#include "server/metrics.hpp"

namespace ringwire::kv::server {

// Channel arguments shared by peers and clients of peers: big messages (snapshots) and
// keepalive pings that notice a dead connection within about 2 s.
grpc::ChannelArguments peer_channel_args();

class PeerTransport {
 public:
  PeerTransport(std::uint64_t cluster_id, Metrics* metrics);
  ~PeerTransport();
  PeerTransport(const PeerTransport&) = delete;
  PeerTransport& operator=(const PeerTransport&) = delete;

  // Adds the peer or changes its address (the link reconnects).
  void set_peer(raft::NodeId id, const std::string& address);
  void remove_peer(raft::NodeId id);
  // Closes the links to every peer not in `ids`.
  void retain(const std::set<raft::NodeId>& ids);
  // Loop thread; never blocks on the network.
  void send(std::vector<raft::Message> messages);
  // Follower -> leader: commands to propose, batched with the Raft traffic. False when the
  // peer is unknown (the caller answers its callers).
  bool send_proposals(raft::NodeId leader, std::vector<std::string> proposals);
  // A stub for request/response calls to a peer (forwarded writes, member changes); null
  // when the peer is unknown.
  std::shared_ptr<pb::Peer::Stub> stub(raft::NodeId id);
  bool connected(raft::NodeId id);
  void stop();

 private:
  class Link;
  std::uint64_t cluster_id_;
  Metrics* metrics_;
  std::mutex mu_;
  std::map<raft::NodeId, std::shared_ptr<Link>> links_;
};

}  // namespace ringwire::kv::server
