// The gRPC front of a member: the etcd-compatible client services (KV, Watch, Cluster,
// Maintenance) on --listen and the Peer service on --peer-listen. Handlers translate between
// the wire and KvNode; they hold no state of their own.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>

#include "ringwire/core/status.hpp"
#include "server/cluster_config.hpp"
#include "server/kv_node.hpp"
#include "server/metrics.hpp"

namespace ringwire::kv::server {

class Server {
 public:
  // Opens the data dir, binds both listeners and starts the Raft loop.
  static core::Result<std::unique_ptr<Server>> start(const ServerConfig& cfg);
  ~Server();
  // Graceful stop: refuse new RPCs, finish the running ones (bounded), stop the loop.
  void shutdown();
  bool failed() const { return node_->failed(); }
  KvNode& node() { return *node_; }

 private:
  Server() = default;
  struct Services;
  Metrics metrics_;
  std::unique_ptr<KvNode> node_;
  std::unique_ptr<Services> services_;
  std::unique_ptr<grpc::Server> client_server_;
  std::unique_ptr<grpc::Server> peer_server_;
  std::unique_ptr<MetricsEndpoint> metrics_endpoint_;
  bool down_ = false;
};

}  // namespace ringwire::kv::server
