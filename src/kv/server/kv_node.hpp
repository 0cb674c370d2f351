// One kv_server member's core: the Raft loop. A single thread owns the Raft node, the WAL,
// the state machine and the watch hub (no locks on any of them). Everything else (gRPC
// handlers, peer streams) talks to it by posting closures to its Inbox and waiting for a
// promise. Per loop turn: catch up ticks, run posted work, propose the turn's writes as one
// batch and start one ReadIndex round for the turn's reads, then handle Ready: one WAL
// write + one fdatasync for everything (group commit), send, apply, answer.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "etcdserverpb/rpc.pb.h"
#include "ringwire/kv/internal.pb.h"
#include "ringwire/kv/storage/disk_storage.hpp"
#include "ringwire/raft/node.hpp"
#include "server/cluster_config.hpp"
#include "server/inbox.hpp"
#include "server/metrics.hpp"
#include "server/peer_transport.hpp"
#include "server/state_machine.hpp"
#include "server/watch_hub.hpp"

namespace ringwire::kv::server {

using Clock = std::chrono::steady_clock;

// A snapshot of the loop's state for status queries from other threads.
struct NodeView {
  raft::NodeId leader = raft::kNone;
  std::uint64_t term = 0;
  std::uint64_t commit = 0;
  std::uint64_t applied = 0;
  std::int64_t revision = 1;
  std::int64_t compact_revision = 0;
  std::uint64_t db_size = 0;
  std::uint64_t db_in_use = 0;
  bool learner = false;
  raft::Role role = raft::Role::kFollower;
  std::vector<pb::MemberRecord> members;
};

class KvNode {
 public:
  // Opens the data dir and recovers. Errors are for the operator (exit code 2).
  static core::Result<std::unique_ptr<KvNode>> open(const ServerConfig& cfg, Metrics* metrics);
  ~KvNode();

  void start();
  void stop();

  // ---- gRPC handler threads (each blocks until answered or `deadline`) ----
  // A write: proposed here when leading, else forwarded to the leader over the Peer stream;
  // answered once this member applied it (every member applies every entry).
  pb::ApplyResult write(pb::Command cmd, Clock::time_point deadline);
  pb::ApplyResult submit(pb::Command cmd, Clock::time_point deadline);
  grpc::Status range(const etcdserverpb::RangeRequest& req, etcdserverpb::RangeResponse* resp,
                     Clock::time_point deadline);
  grpc::Status member_add(const etcdserverpb::MemberAddRequest& req,
                          etcdserverpb::MemberAddResponse* resp, Clock::time_point deadline);
  grpc::Status member_remove(const etcdserverpb::MemberRemoveRequest& req,
                             etcdserverpb::MemberRemoveResponse* resp, Clock::time_point deadline);
  grpc::Status member_promote(const etcdserverpb::MemberPromoteRequest& req,
                              etcdserverpb::MemberPromoteResponse* resp,
                              Clock::time_point deadline);
  grpc::Status move_leader(raft::NodeId target, Clock::time_point deadline);
  void step(std::vector<raft::Message> batch);  // messages from a peer (no wait)
  // Commands a follower forwarded over its Peer stream (no wait; the follower answers).
  void propose_forwarded(std::vector<std::string> commands);

  // Watch streams: registration and requests run on the loop; responses go to the stream.
  std::uint64_t open_watch_stream(std::shared_ptr<WatchStream> s);
  void watch_request(std::uint64_t stream, etcdserverpb::WatchRequest req);
  void close_watch_stream(std::uint64_t stream);

  NodeView view() const;
  void fill_header(etcdserverpb::ResponseHeader* h, std::int64_t revision) const;
  void fill_members(google::protobuf::RepeatedPtrField<etcdserverpb::Member>* out) const;
  raft::NodeId id() const { return cfg_.self_id; }
  std::uint64_t cluster_id() const { return cfg_.cluster_id; }
  const ServerConfig& config() const { return cfg_; }
  bool failed() const { return failed_.load(); }

 private:
  KvNode(const ServerConfig& cfg, Metrics* metrics);

  struct WriteCall {
    pb::Command cmd;
    std::promise<pb::ApplyResult> done;
    Clock::time_point deadline;
  };
  std::vector<std::string> forwarded_in_;  // leader: commands followers asked us to propose
  struct ReadCall {
    etcdserverpb::RangeRequest req;
    std::promise<std::pair<grpc::Status, etcdserverpb::RangeResponse>> done;
    Clock::time_point deadline;
  };
  struct ConfCall {
    raft::ConfChange cc;
    std::promise<grpc::Status> done;
    Clock::time_point deadline;
  };
  struct ReadRound {
    std::vector<std::shared_ptr<ReadCall>> calls;
    Clock::time_point started;
  };

  void run();
  void turn();
  void propose_pending();
  void start_read_round();
  void handle_ready();
  void apply_entry(const raft::Entry& e);
  void serve_ready_reads();
  void serve_read(ReadCall& c);
  void maybe_compact();
  void expire(Clock::time_point now);
  void publish_view();
  void sync_peers();
  void publish_attributes();
  void fatal(const std::string& what);
  void abort_pending();
  void watch_create(std::uint64_t stream, const etcdserverpb::WatchCreateRequest& c);
  void run_attribute_publisher();
  pb::ApplyResult conf_change(raft::ConfChange cc, Clock::time_point deadline);

  ServerConfig cfg_;
  Metrics* metrics_;
  std::unique_ptr<storage::DiskStorage> storage_;
  std::unique_ptr<raft::Node> node_;
  StateMachine sm_;
  WatchHub hub_;
  std::unique_ptr<PeerTransport> transport_;
  Inbox inbox_;

  // Loop-thread state.
  std::vector<std::shared_ptr<WriteCall>> to_propose_;
  std::map<std::uint64_t, std::shared_ptr<WriteCall>> proposed_;  // by request id
  std::uint64_t next_request_id_ = 1;
  std::vector<std::shared_ptr<ReadCall>> to_read_;
  std::map<std::uint64_t, ReadRound> read_rounds_;  // by ReadIndex context
  std::uint64_t next_read_ctx_ = 1;
  std::multimap<std::uint64_t, std::shared_ptr<ReadCall>> ready_reads_;  // by read index
  std::vector<std::shared_ptr<ConfCall>> to_conf_;
  std::map<std::uint64_t, std::shared_ptr<ConfCall>> conf_proposed_;  // by entry index
  std::uint64_t applied_ = 0;
  raft::HardState durable_hs_;                  // the hard state the WAL holds
  std::optional<raft::HardState> deferred_hs_;  // a commit-only change not written yet
  std::uint64_t snapshot_index_ = 0;
  raft::NodeId last_leader_ = raft::kNone;
  raft::NodeId last_leader_seen_ = raft::kNone;
  Clock::time_point next_tick_;
  Clock::time_point last_progress_notify_;
  bool was_leader_ = false;
  Clock::time_point next_view_;
  bool view_dirty_ = true;
  std::thread attributes_thread_;

  mutable std::mutex view_mu_;
  NodeView view_;
  std::atomic<raft::NodeId> leader_{raft::kNone};
  std::atomic<std::uint64_t> term_{0};
  std::atomic<bool> stop_{false};
  std::atomic<bool> failed_{false};
  std::atomic<bool> stopped_{false};
  std::thread thread_;
};

}  // namespace ringwire::kv::server
