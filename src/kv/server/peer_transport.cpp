#include "server/peer_transport.hpp"

#include "server/raft_codec.hpp"

namespace ringwire::kv::server {

grpc::ChannelArguments peer_channel_args() {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(512 << 20);
  args.SetMaxSendMessageSize(512 << 20);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 1000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 1000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 50);
  // Also the minimum connect timeout: 50 ms would fail every handshake on a loaded machine.
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 2000);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  // Each link gets its own TCP connection (no sharing between a stream and unary calls that
  // could queue behind a big snapshot).
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return args;
}

class PeerTransport::Link {
 public:
  static constexpr std::size_t kMaxQueued = 8192;

  Link(raft::NodeId id, std::string address, std::uint64_t cluster_id, Metrics* metrics)
      : id_(id), address_(std::move(address)), cluster_id_(cluster_id), metrics_(metrics) {
    channel_ = grpc::CreateCustomChannel(address_, grpc::InsecureChannelCredentials(),
                                         peer_channel_args());
    stub_ = pb::Peer::NewStub(channel_);
    thread_ = std::thread([this] { run(); });
  }
  ~Link() {
    stop();
    thread_.join();
  }

  void enqueue(pb::RaftMessage m) {
    {
      std::lock_guard lk(mu_);
      if (q_.size() >= kMaxQueued) {
        q_.pop_front();
        metrics_->peer_messages_dropped.fetch_add(1, std::memory_order_relaxed);
      }
      q_.push_back(std::move(m));
    }
    cv_.notify_one();
  }
  void enqueue_proposals(std::vector<std::string> proposals) {
    {
      std::lock_guard lk(mu_);
      for (auto& p : proposals)
        proposals_.push_back(std::move(p));
    }
    cv_.notify_one();
  }
  void stop() {
    {
      std::lock_guard lk(mu_);
      stop_ = true;
      if (ctx_) ctx_->TryCancel();  // unblocks a Write stuck on a peer that stopped reading
    }
    cv_.notify_one();
  }
  std::shared_ptr<pb::Peer::Stub> stub() const { return stub_; }
  bool connected() const { return connected_.load(std::memory_order_relaxed); }
  const std::string& address() const { return address_; }

 private:
  void run() {
    auto backoff = std::chrono::milliseconds(50);
    std::unique_ptr<grpc::ClientWriter<pb::RaftBatch>> writer;
    pb::PeerAck ack;
    for (;;) {
      pb::RaftBatch batch;
      {
        std::unique_lock lk(mu_);
        cv_.wait_for(lk, std::chrono::milliseconds(200),
                     [&] { return stop_ || !q_.empty() || !proposals_.empty(); });
        if (stop_) break;
        if (q_.empty() && proposals_.empty()) continue;
        batch.set_cluster_id(cluster_id_);
        std::size_t bytes = 0;
        while (!q_.empty() && bytes < (4u << 20)) {
          bytes += q_.front().ByteSizeLong();
          *batch.add_messages() = std::move(q_.front());
          q_.pop_front();
        }
        while (!proposals_.empty() && bytes < (8u << 20)) {
          bytes += proposals_.front().size();
          batch.add_proposals(std::move(proposals_.front()));
          proposals_.pop_front();
        }
      }
      const auto n = static_cast<std::uint64_t>(batch.messages_size());
      if (!writer) {
        if (!channel_->WaitForConnected(std::chrono::system_clock::now() + backoff)) {
          metrics_->peer_messages_dropped.fetch_add(n, std::memory_order_relaxed);
          backoff = std::min(backoff * 2, std::chrono::milliseconds(1000));
          continue;
        }
        std::lock_guard lk(mu_);
        if (stop_) break;
        ctx_ = std::make_unique<grpc::ClientContext>();
        writer = stub_->Stream(ctx_.get(), &ack);
      }
      if (writer->Write(batch)) {
        connected_.store(true, std::memory_order_relaxed);
        backoff = std::chrono::milliseconds(50);
        metrics_->peer_messages_sent.fetch_add(n, std::memory_order_relaxed);
        continue;
      }
      metrics_->peer_messages_dropped.fetch_add(n, std::memory_order_relaxed);
      connected_.store(false, std::memory_order_relaxed);
      writer->Finish();
      writer.reset();
      std::lock_guard lk(mu_);
      ctx_.reset();
    }
    if (writer) {
      writer->WritesDone();
      std::lock_guard lk(mu_);
      if (ctx_) ctx_->TryCancel();
    }
    if (writer) writer->Finish();
  }

  raft::NodeId id_;
  std::string address_;
  std::uint64_t cluster_id_;
  Metrics* metrics_;
  std::shared_ptr<grpc::Channel> channel_;
  std::shared_ptr<pb::Peer::Stub> stub_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<pb::RaftMessage> q_;
  std::deque<std::string> proposals_;
  std::unique_ptr<grpc::ClientContext> ctx_;
  bool stop_ = false;
  std::atomic<bool> connected_{false};
  std::thread thread_;
};

PeerTransport::PeerTransport(std::uint64_t cluster_id, Metrics* metrics)
    : cluster_id_(cluster_id), metrics_(metrics) {}

PeerTransport::~PeerTransport() {
  stop();
}

void PeerTransport::set_peer(raft::NodeId id, const std::string& address) {
  std::shared_ptr<Link> old;
  {
    std::lock_guard lk(mu_);
    auto it = links_.find(id);
    if (it != links_.end() && it->second->address() == address) return;
    if (it != links_.end()) old = std::move(it->second);
    links_[id] = std::make_shared<Link>(id, address, cluster_id_, metrics_);
  }
  old.reset();  // joins the old link's thread outside the lock
}

void PeerTransport::remove_peer(raft::NodeId id) {
  std::shared_ptr<Link> old;
  {
    std::lock_guard lk(mu_);
    auto it = links_.find(id);
    if (it == links_.end()) return;
    old = std::move(it->second);
    links_.erase(it);
  }
}

void PeerTransport::retain(const std::set<raft::NodeId>& ids) {
  std::vector<std::shared_ptr<Link>> old;
  {
    std::lock_guard lk(mu_);
    for (auto it = links_.begin(); it != links_.end();) {
      if (ids.count(it->first) == 0) {
        old.push_back(std::move(it->second));
        it = links_.erase(it);
      } else {
        ++it;
      }
    }
  }
}

void PeerTransport::send(std::vector<raft::Message> messages) {
  std::lock_guard lk(mu_);
  for (auto& m : messages) {
    auto it = links_.find(m.to);
    if (it == links_.end()) {
      metrics_->peer_messages_dropped.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    pb::RaftMessage w;
    to_wire(m, &w);
    it->second->enqueue(std::move(w));
  }
}

bool PeerTransport::send_proposals(raft::NodeId leader, std::vector<std::string> proposals) {
  std::lock_guard lk(mu_);
  auto it = links_.find(leader);
  if (it == links_.end()) return false;
  it->second->enqueue_proposals(std::move(proposals));
  return true;
}

std::shared_ptr<pb::Peer::Stub> PeerTransport::stub(raft::NodeId id) {
  std::lock_guard lk(mu_);
  auto it = links_.find(id);
  return it == links_.end() ? nullptr : it->second->stub();
}

bool PeerTransport::connected(raft::NodeId id) {
  std::lock_guard lk(mu_);
  auto it = links_.find(id);
  return it != links_.end() && it->second->connected();
}

void PeerTransport::stop() {
  std::map<raft::NodeId, std::shared_ptr<Link>> links;
  {
    std::lock_guard lk(mu_);
    links.swap(links_);
  }
  links.clear();
}

}  // namespace ringwire::kv::server
