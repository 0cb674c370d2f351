#include "server/services.hpp"

#include <spdlog/spdlog.h>

#include <charconv>
#include <thread>

#include "etcdserverpb/rpc.grpc.pb.h"
#include "ringwire/kv/grpc_runtime.hpp"
#include "ringwire/kv/internal.grpc.pb.h"
#include "server/raft_codec.hpp"

namespace ringwire::kv::server {

namespace {

// A client's deadline, capped so a handler never waits forever on a call without one.
Clock::time_point deadline_of(const grpc::ServerContext* ctx) {
  const auto now_sys = std::chrono::system_clock::now();
  auto remaining = ctx->deadline() - now_sys;
  const auto cap = std::chrono::seconds(30);
  if (remaining > cap) remaining = cap;
  return Clock::now() + std::chrono::duration_cast<Clock::duration>(remaining);
}

std::uint64_t metadata_u64(const grpc::ServerContext* ctx, const char* key) {
  const auto& md = ctx->client_metadata();
  auto it = md.find(key);
  if (it == md.end()) return 0;
  std::uint64_t v = 0;
  const char* b = it->second.data();
  const char* e = b + it->second.size();
  if (std::from_chars(b, e, v).ptr != e) return 0;
  return v;
}

// Exactly-once retries for clients that identify their requests (kv_client does).
void tag(const grpc::ServerContext* ctx, pb::Command* cmd) {
  const std::uint64_t client = metadata_u64(ctx, "ringwire-client-id");
  const std::uint64_t seq = metadata_u64(ctx, "ringwire-seq");
  if (client != 0 && seq != 0) {
    cmd->set_client_id(client);
    cmd->set_seq(seq);
  }
}

grpc::Status status_of(const pb::ApplyResult& r) {
  if (r.grpc_code() == 0) return grpc::Status::OK;
  return {static_cast<grpc::StatusCode>(r.grpc_code()), r.error()};
}

class Timer {
 public:
  explicit Timer(Metrics* m) : m_(m), start_(Clock::now()) {}
  ~Timer() {
    m_->rpc_seconds.observe(std::chrono::duration<double>(Clock::now() - start_).count());
  }
  grpc::Status done(grpc::Status s) {
    if (!s.ok()) m_->rpc_errors.fetch_add(1, std::memory_order_relaxed);
    return s;
  }

 private:
  Metrics* m_;
  Clock::time_point start_;
};

class KvService final : public etcdserverpb::KV::Service {
 public:
  KvService(KvNode* n, Metrics* m) : node_(n), m_(m) {}

  grpc::Status Range(grpc::ServerContext* ctx, const etcdserverpb::RangeRequest* req,
                     etcdserverpb::RangeResponse* resp) override {
    Timer t(m_);
    m_->rpc_range.fetch_add(1, std::memory_order_relaxed);
    return t.done(node_->range(*req, resp, deadline_of(ctx)));
  }

  grpc::Status Put(grpc::ServerContext* ctx, const etcdserverpb::PutRequest* req,
                   etcdserverpb::PutResponse* resp) override {
    Timer t(m_);
    m_->rpc_put.fetch_add(1, std::memory_order_relaxed);
    pb::Command cmd;
    *cmd.mutable_put() = *req;
    tag(ctx, &cmd);
    auto r = node_->write(std::move(cmd), deadline_of(ctx));
    if (r.grpc_code() != 0) return t.done(status_of(r));
    *resp = std::move(*r.mutable_put());
    node_->fill_header(resp->mutable_header(), resp->header().revision());
    return grpc::Status::OK;
  }

  grpc::Status DeleteRange(grpc::ServerContext* ctx, const etcdserverpb::DeleteRangeRequest* req,
                           etcdserverpb::DeleteRangeResponse* resp) override {
    Timer t(m_);
    m_->rpc_delete.fetch_add(1, std::memory_order_relaxed);
    pb::Command cmd;
    *cmd.mutable_delete_range() = *req;
    tag(ctx, &cmd);
    auto r = node_->write(std::move(cmd), deadline_of(ctx));
    if (r.grpc_code() != 0) return t.done(status_of(r));
    *resp = std::move(*r.mutable_delete_range());
    node_->fill_header(resp->mutable_header(), resp->header().revision());
    return grpc::Status::OK;
  }

  grpc::Status Txn(grpc::ServerContext* ctx, const etcdserverpb::TxnRequest* req,
                   etcdserverpb::TxnResponse* resp) override {
    Timer t(m_);
    m_->rpc_txn.fetch_add(1, std::memory_order_relaxed);
    pb::Command cmd;
    *cmd.mutable_txn() = *req;
    tag(ctx, &cmd);
    auto r = node_->write(std::move(cmd), deadline_of(ctx));
    if (r.grpc_code() != 0) return t.done(status_of(r));
    *resp = std::move(*r.mutable_txn());
    node_->fill_header(resp->mutable_header(), resp->header().revision());
    return grpc::Status::OK;
  }

  grpc::Status Compact(grpc::ServerContext* ctx, const etcdserverpb::CompactionRequest* req,
                       etcdserverpb::CompactionResponse* resp) override {
    Timer t(m_);
    m_->rpc_compact.fetch_add(1, std::memory_order_relaxed);
    pb::Command cmd;
    *cmd.mutable_compact() = *req;
    tag(ctx, &cmd);
    auto r = node_->write(std::move(cmd), deadline_of(ctx));
    if (r.grpc_code() != 0) return t.done(status_of(r));
    *resp = std::move(*r.mutable_compact());
    node_->fill_header(resp->mutable_header(), resp->header().revision());
    return grpc::Status::OK;
  }

 private:
  KvNode* node_;
  Metrics* m_;
};

class WatchService final : public etcdserverpb::Watch::Service {
 public:
  WatchService(KvNode* n, Metrics* m) : node_(n), m_(m) {}

  grpc::Status Watch(grpc::ServerContext* ctx,
                     grpc::ServerReaderWriter<etcdserverpb::WatchResponse,
                                              etcdserverpb::WatchRequest>* stream) override {
    m_->rpc_watch.fetch_add(1, std::memory_order_relaxed);
    auto out = std::make_shared<WatchStream>();
    const std::uint64_t sid = node_->open_watch_stream(out);
    if (sid == 0) return {grpc::StatusCode::UNAVAILABLE, "ringwire: server busy"};
    // One thread reads create/cancel/progress requests, this one writes responses.
    std::thread reader([&] {
      etcdserverpb::WatchRequest req;
      while (stream->Read(&req))
        node_->watch_request(sid, req);
    });
    while (!ctx->IsCancelled()) {
      auto r = out->pop(std::chrono::milliseconds(100));
      if (r) {
        if (!stream->Write(*r)) break;
      } else if (out->closed()) {
        break;
      }
    }
    node_->close_watch_stream(sid);
    ctx->TryCancel();
    reader.join();
    const std::string reason = out->close_reason();
    if (!reason.empty() && !ctx->IsCancelled()) return {grpc::StatusCode::UNAVAILABLE, reason};
    return grpc::Status::OK;
  }

 private:
  KvNode* node_;
  Metrics* m_;
};

class ClusterService final : public etcdserverpb::Cluster::Service {
 public:
  ClusterService(KvNode* n, Metrics* m) : node_(n), m_(m) {}

  grpc::Status MemberList(grpc::ServerContext*, const etcdserverpb::MemberListRequest*,
                          etcdserverpb::MemberListResponse* resp) override {
    m_->rpc_other.fetch_add(1, std::memory_order_relaxed);
    node_->fill_header(resp->mutable_header(), node_->view().revision);
    node_->fill_members(resp->mutable_members());
    return grpc::Status::OK;
  }
  grpc::Status MemberAdd(grpc::ServerContext* ctx, const etcdserverpb::MemberAddRequest* req,
                         etcdserverpb::MemberAddResponse* resp) override {
    m_->rpc_other.fetch_add(1, std::memory_order_relaxed);
    return node_->member_add(*req, resp, deadline_of(ctx));
  }
  grpc::Status MemberRemove(grpc::ServerContext* ctx, const etcdserverpb::MemberRemoveRequest* req,
                            etcdserverpb::MemberRemoveResponse* resp) override {
    m_->rpc_other.fetch_add(1, std::memory_order_relaxed);
    return node_->member_remove(*req, resp, deadline_of(ctx));
  }
  grpc::Status MemberPromote(grpc::ServerContext* ctx,
                             const etcdserverpb::MemberPromoteRequest* req,
                             etcdserverpb::MemberPromoteResponse* resp) override {
    m_->rpc_other.fetch_add(1, std::memory_order_relaxed);
    return node_->member_promote(*req, resp, deadline_of(ctx));
  }

 private:
  KvNode* node_;
  Metrics* m_;
};

class MaintenanceService final : public etcdserverpb::Maintenance::Service {
 public:
  MaintenanceService(KvNode* n, Metrics* m) : node_(n), m_(m) {}

  grpc::Status Status(grpc::ServerContext*, const etcdserverpb::StatusRequest*,
                      etcdserverpb::StatusResponse* resp) override {
    m_->rpc_other.fetch_add(1, std::memory_order_relaxed);
    const NodeView v = node_->view();
    node_->fill_header(resp->mutable_header(), v.revision);
    resp->mutable_header()->set_raft_term(v.term);
    // The etcd API level served (clients compare it); ringwire's own version is in the logs.
    resp->set_version("3.4.0");
    resp->set_dbsize(static_cast<std::int64_t>(v.db_size));
    resp->set_dbsizeinuse(static_cast<std::int64_t>(v.db_in_use));
    resp->set_leader(v.leader);
    resp->set_raftindex(v.commit);
    resp->set_raftterm(v.term);
    resp->set_raftappliedindex(v.applied);
    resp->set_islearner(v.learner);
    if (v.leader == raft::kNone) resp->add_errors("etcdserver: no leader");
    return grpc::Status::OK;
  }
  grpc::Status MoveLeader(grpc::ServerContext* ctx, const etcdserverpb::MoveLeaderRequest* req,
                          etcdserverpb::MoveLeaderResponse* resp) override {
    m_->rpc_other.fetch_add(1, std::memory_order_relaxed);
    auto s = node_->move_leader(req->targetid(), deadline_of(ctx));
    node_->fill_header(resp->mutable_header(), node_->view().revision);
    return s;
  }

 private:
  KvNode* node_;
  Metrics* m_;
};

class PeerService final : public pb::Peer::Service {
 public:
  explicit PeerService(KvNode* n) : node_(n) {}

  grpc::Status Stream(grpc::ServerContext*, grpc::ServerReader<pb::RaftBatch>* reader,
                      pb::PeerAck*) override {
    pb::RaftBatch batch;
    while (reader->Read(&batch)) {
      if (batch.cluster_id() != node_->cluster_id()) {
        spdlog::warn("refusing Raft traffic from another cluster ({:x})", batch.cluster_id());
        return {grpc::StatusCode::FAILED_PRECONDITION, "ringwire: cluster id mismatch"};
      }
      std::vector<raft::Message> msgs;
      msgs.reserve(static_cast<std::size_t>(batch.messages_size()));
      for (const auto& w : batch.messages()) {
        auto m = from_wire(w);
        if (!m || m->to != node_->id() || m->from == raft::kNone) continue;
        msgs.push_back(std::move(*m));
      }
      if (!msgs.empty()) node_->step(std::move(msgs));
      if (batch.proposals_size() > 0) {
        node_->propose_forwarded(
            std::vector<std::string>(batch.proposals().begin(), batch.proposals().end()));
      }
    }
    return grpc::Status::OK;
  }
  grpc::Status Forward(grpc::ServerContext* ctx, const pb::ForwardRequest* req,
                       pb::ApplyResult* resp) override {
    *resp = node_->submit(req->command(), deadline_of(ctx));
    return grpc::Status::OK;
  }
  grpc::Status MemberAdd(grpc::ServerContext* ctx, const etcdserverpb::MemberAddRequest* req,
                         etcdserverpb::MemberAddResponse* resp) override {
    return node_->member_add(*req, resp, deadline_of(ctx));
  }
  grpc::Status MemberRemove(grpc::ServerContext* ctx, const etcdserverpb::MemberRemoveRequest* req,
                            etcdserverpb::MemberRemoveResponse* resp) override {
    return node_->member_remove(*req, resp, deadline_of(ctx));
  }
  grpc::Status MemberPromote(grpc::ServerContext* ctx,
                             const etcdserverpb::MemberPromoteRequest* req,
                             etcdserverpb::MemberPromoteResponse* resp) override {
    return node_->member_promote(*req, resp, deadline_of(ctx));
  }

 private:
  KvNode* node_;
};

void tune(grpc::ServerBuilder& b) {
  // The sync server hands each call to a thread from a pool that grows when every thread is
  // busy and shrinks past MAX_POLLERS idle ones. With the default (2) a burst of concurrent
  // calls made it create and destroy threads constantly (mmap/munmap of stacks was a top
  // kernel cost); keep enough threads for the concurrency we serve.
  b.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MIN_POLLERS, 2);
  b.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MAX_POLLERS, 256);
  b.SetMaxReceiveMessageSize(512 << 20);
  b.SetMaxSendMessageSize(512 << 20);
  // Peers ping every second (peer_channel_args); allow it.
  b.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  b.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 500);
  b.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
}

}  // namespace

struct Server::Services {
  Services(KvNode* n, Metrics* m)
      : kv(n, m), watch(n, m), cluster(n, m), maintenance(n, m), peer(n) {}
  KvService kv;
  WatchService watch;
  ClusterService cluster;
  MaintenanceService maintenance;
  PeerService peer;
};

core::Result<std::unique_ptr<Server>> Server::start(const ServerConfig& cfg) {
  tune_grpc_runtime();
  std::unique_ptr<Server> s(new Server());
  auto node = KvNode::open(cfg, &s->metrics_);
  if (!node) return node.status();
  s->node_ = std::move(node.value());
  s->services_ = std::make_unique<Services>(s->node_.get(), &s->metrics_);

  int peer_port = 0;
  grpc::ServerBuilder pb;
  tune(pb);
  pb.AddListeningPort(cfg.peer_listen, grpc::InsecureServerCredentials(), &peer_port);
  pb.RegisterService(&s->services_->peer);
  s->peer_server_ = pb.BuildAndStart();
  if (!s->peer_server_ || peer_port == 0) {
    return {core::Errc::invalid_argument,
            "cannot listen on --peer-listen " + cfg.peer_listen + " (address in use?)"};
  }
  int client_port = 0;
  grpc::ServerBuilder cb;
  tune(cb);
  cb.AddListeningPort(cfg.listen, grpc::InsecureServerCredentials(), &client_port);
  cb.RegisterService(&s->services_->kv);
  cb.RegisterService(&s->services_->watch);
  cb.RegisterService(&s->services_->cluster);
  cb.RegisterService(&s->services_->maintenance);
  s->client_server_ = cb.BuildAndStart();
  if (!s->client_server_ || client_port == 0) {
    s->peer_server_->Shutdown();
    return {core::Errc::invalid_argument,
            "cannot listen on --listen " + cfg.listen + " (address in use?)"};
  }
  if (!cfg.metrics_listen.empty()) {
    auto m = MetricsEndpoint::start(cfg.metrics_listen, &s->metrics_);
    if (!m) {
      s->client_server_->Shutdown();
      s->peer_server_->Shutdown();
      return m.status();
    }
    s->metrics_endpoint_ = std::move(m.value());
  }
  s->node_->start();
  return s;
}

void Server::shutdown() {
  if (down_) return;
  down_ = true;
  // The loop first: it answers every waiting handler, so the servers' shutdown below does
  // not wait on handlers blocked for up to their deadline.
  if (node_) node_->stop();  // null when KvNode::open failed (refused start)
  const auto grace = std::chrono::system_clock::now() + std::chrono::milliseconds(500);
  if (client_server_) client_server_->Shutdown(grace);
  if (peer_server_) peer_server_->Shutdown(std::chrono::system_clock::now());
  metrics_endpoint_.reset();
}

Server::~Server() {
  shutdown();
}

}  // namespace ringwire::kv::server
