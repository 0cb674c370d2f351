#include "server/kv_node.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <set>

namespace ringwire::kv::server {

namespace {

constexpr int kUnavailable = 14;
constexpr int kDeadlineExceeded = 4;
constexpr int kFailedPrecondition = 9;
constexpr int kInvalidArgument = 3;

pb::ApplyResult error_result(int code, std::string msg) {
  pb::ApplyResult r;
  r.set_grpc_code(static_cast<std::uint32_t>(code));
  r.set_error(std::move(msg));
  return r;
}

template <class P, class V>
void fulfil(P& promise, V&& value) {
  try {
    promise.set_value(std::forward<V>(value));
  } catch (const std::future_error&) {
    // Already answered (e.g. failed on a leader change, then applied): the first answer stands.
  }
}

// gRPC deadlines are wall-clock; ours are monotonic.
std::chrono::system_clock::time_point to_system(Clock::time_point t) {
  return std::chrono::system_clock::now() +
         std::chrono::duration_cast<std::chrono::system_clock::duration>(t - Clock::now());
}

std::string hex(std::uint64_t v) {
  char b[20];
  std::snprintf(b, sizeof b, "%llx", static_cast<unsigned long long>(v));
  return b;
}

}  // namespace

KvNode::KvNode(const ServerConfig& cfg, Metrics* metrics) : cfg_(cfg), metrics_(metrics) {}

KvNode::~KvNode() {
  stop();
}

core::Result<std::unique_ptr<KvNode>> KvNode::open(const ServerConfig& cfg, Metrics* metrics) {
  std::unique_ptr<KvNode> n(new KvNode(cfg, metrics));
  storage::Options so;
  so.dir = cfg.data_dir;
  so.identity = "cluster=" + hex(cfg.cluster_id) + " member=" + hex(cfg.self_id);
  so.sync = cfg.fsync;
  storage::Recovered rec;
  auto st = storage::DiskStorage::open(so, &rec);
  if (!st) return st.status();
  for (const auto& note : rec.notes)
    spdlog::warn("recovery: {}", note);
  n->storage_ = std::move(st.value());
  n->storage_->set_fsync_observer([m = metrics](double s) { m->fsync_seconds.observe(s); });

  n->sm_.set_cluster_id(cfg.cluster_id);
  raft::Config rc;
  rc.id = cfg.self_id;
  bool founding = false;
  for (const auto& p : cfg.cluster) {
    rc.voters.push_back(p.id);
    founding = founding || p.id == cfg.self_id;
    pb::MemberRecord m;
    m.set_id(p.id);
    m.set_name(p.name);
    m.set_peer_url(p.peer_address);
    // No client URL here, not even our own: founding records must be identical on every
    // replica, and the attribute publisher only publishes while our record lacks it.
    n->sm_.add_founding_member(std::move(m));
  }
  rc.election_tick = cfg.election_ticks;
  rc.heartbeat_tick = cfg.heartbeat_ticks;
  rc.pre_vote = true;
  rc.check_quorum = true;
  rc.lease_reads = cfg.lease_reads;
  rc.seed = cfg.self_id ^ static_cast<std::uint64_t>(Clock::now().time_since_epoch().count());

  if (!rec.hard_state) {
    if (cfg.join_existing && founding) {
      return {core::Errc::invalid_argument,
              "data dir " + cfg.data_dir + " is empty but member " + cfg.name +
                  " is a founding member of an existing cluster (lost its disk?). It may have "
                  "voted or acknowledged writes it no longer remembers, so it must not rejoin "
                  "as itself: remove it (kv_client member remove " +
                  hex(cfg.self_id) +
                  "), then add it back under a new peer address (member add), or restore its "
                  "data dir"};
    }
    n->node_ = std::make_unique<raft::Node>(rc);
    spdlog::info("member {} ({:x}) starts with an empty data dir", cfg.name, cfg.self_id);
  } else {
    if (rec.snapshot) {
      if (!n->sm_.restore(rec.snapshot->data)) {
        return {core::Errc::corrupted, "snapshot at index " + std::to_string(rec.snapshot->index) +
                                           " in " + cfg.data_dir + " does not decode"};
      }
      n->applied_ = n->snapshot_index_ = rec.snapshot->index;
    }
    n->durable_hs_ = *rec.hard_state;
    raft::DurableState ds{rec.hard_state, std::move(rec.entries), rec.snapshot};
    auto r = raft::Node::restart(rc, ds);
    if (!r.node) return {core::Errc::invalid_argument, r.error};
    n->node_ = std::move(r.node);
    spdlog::info("member {} ({:x}) recovered: term {}, commit {}, snapshot {}, {} log entries",
                 cfg.name, cfg.self_id, rec.hard_state->term, rec.hard_state->commit,
                 n->snapshot_index_, ds.entries.size());
  }
  n->transport_ = std::make_unique<PeerTransport>(cfg.cluster_id, metrics);
  KvNode* self = n.get();
  n->sm_.store().set_event_sink([self](std::int64_t rev, const std::vector<mvccpb::Event>& evs) {
    etcdserverpb::ResponseHeader h;
    self->fill_header(&h, rev);
    self->hub_.on_events(h, evs);
  });
  n->sync_peers();
  n->publish_view();
  return n;
}

void KvNode::start() {
  next_tick_ = Clock::now() + std::chrono::milliseconds(cfg_.tick_ms);
  last_progress_notify_ = Clock::now();
  thread_ = std::thread([this] { run(); });
  attributes_thread_ = std::thread([this] { run_attribute_publisher(); });
}

void KvNode::stop() {
  if (stopped_.exchange(true)) return;
  stop_.store(true);
  inbox_.post([] {});
  if (thread_.joinable()) thread_.join();
  if (attributes_thread_.joinable()) attributes_thread_.join();
  // The loop is gone: run what was posted after its last turn on this thread (it only files
  // calls away), then answer every call still waiting so no handler sits out its deadline.
  inbox_.drain([](Inbox::Fn& fn) { fn(); });
  abort_pending();
  if (deferred_hs_ && !failed_.load()) storage_->save(std::nullopt, {}, deferred_hs_);
  if (transport_) transport_->stop();
  hub_.close_all("server shutting down");
}

void KvNode::abort_pending() {
  const auto stopping = error_result(kUnavailable, "ringwire: server stopping");
  for (auto& c : to_propose_)
    fulfil(c->done, stopping);
  for (auto& [id, c] : proposed_)
    fulfil(c->done, stopping);
  to_propose_.clear();
  proposed_.clear();
  const auto read_err =
      std::make_pair(grpc::Status(grpc::StatusCode::UNAVAILABLE, "ringwire: server stopping"),
                     etcdserverpb::RangeResponse{});
  for (auto& c : to_read_)
    fulfil(c->done, read_err);
  for (auto& [ctx, round] : read_rounds_) {
    for (auto& c : round.calls)
      fulfil(c->done, read_err);
  }
  for (auto& [idx, c] : ready_reads_)
    fulfil(c->done, read_err);
  to_read_.clear();
  read_rounds_.clear();
  ready_reads_.clear();
  const grpc::Status conf_err(grpc::StatusCode::UNAVAILABLE, "ringwire: server stopping");
  for (auto& c : to_conf_)
    fulfil(c->done, conf_err);
  for (auto& [idx, c] : conf_proposed_)
    fulfil(c->done, conf_err);
  to_conf_.clear();
  conf_proposed_.clear();
}

void KvNode::fatal(const std::string& what) {
  spdlog::critical("{}: stopping this member (it cannot keep its promises)", what);
  failed_.store(true);
  stop_.store(true);
}

// ---------------------------------------------------------------- the loop

void KvNode::run() {
  while (!stop_.load(std::memory_order_relaxed)) {
    turn();
    const auto now = Clock::now();
    if (now < next_tick_) {
      inbox_.wait(static_cast<std::uint64_t>(
          std::chrono::duration_cast<std::chrono::nanoseconds>(next_tick_ - now).count()));
    }
  }
}

void KvNode::turn() {
  const auto tick = std::chrono::milliseconds(cfg_.tick_ms);
  auto now = Clock::now();
  // Catch up every tick that passed (after a stall or SIGSTOP too): the election timer and
  // the lease must follow real time, not the number of loop turns.
  int ticks = 0;
  while (now >= next_tick_ && ticks < 100000) {
    node_->tick();
    next_tick_ += tick;
    ++ticks;
  }
  if (now >= next_tick_) next_tick_ = now + tick;

  inbox_.drain([](Inbox::Fn& fn) { fn(); });
  propose_pending();
  start_read_round();
  for (auto& c : to_conf_) {
    auto idx = node_->propose_conf_change(c->cc);
    if (!idx) {
      fulfil(c->done, grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                                   "ringwire: membership change refused now (not leader, "
                                   "another change pending or invalid change)"));
    } else {
      conf_proposed_[*idx] = c;
    }
  }
  to_conf_.clear();
  while (node_->has_ready() && !stop_.load(std::memory_order_relaxed))
    handle_ready();
  serve_ready_reads();

  const raft::NodeId lead = node_->leader();
  const bool leading = node_->role() == raft::Role::kLeader;
  if (lead != last_leader_) {
    metrics_->leader_changes.fetch_add(1, std::memory_order_relaxed);
    spdlog::info("leader is now {} (term {})", lead == raft::kNone ? "unknown" : hex(lead),
                 node_->term());
    last_leader_ = lead;
    view_dirty_ = true;
  }
  if (!leading && (was_leader_ || lead != last_leader_seen_)) {
    // Proposals we made as leader, or forwarded to the old leader, may or may not commit
    // under the next one: the caller must treat them as unknown (kv_client retries them with
    // the same request id, which is applied at most once).
    for (auto& [id, c] : proposed_) {
      fulfil(c->done, error_result(kUnavailable, "etcdserver: leader changed"));
    }
    proposed_.clear();
  }
  last_leader_seen_ = lead;
  was_leader_ = leading;
  leader_.store(lead, std::memory_order_relaxed);
  term_.store(node_->term(), std::memory_order_relaxed);
  metrics_->is_leader.store(leading ? 1 : 0, std::memory_order_relaxed);
  metrics_->term.store(node_->term(), std::memory_order_relaxed);
  metrics_->commit_index.store(node_->log().committed(), std::memory_order_relaxed);
  metrics_->applied_index.store(applied_, std::memory_order_relaxed);

  now = Clock::now();
  expire(now);
  maybe_compact();
  if (now - last_progress_notify_ >= std::chrono::seconds(1)) {
    etcdserverpb::ResponseHeader h;
    fill_header(&h, sm_.store().revision());
    hub_.notify_progress(h);
    last_progress_notify_ = now;
  }
  if (view_dirty_ || now >= next_view_) {
    publish_view();
    next_view_ = now + std::chrono::milliseconds(5);
  }
}

void KvNode::propose_pending() {
  if (to_propose_.empty() && forwarded_in_.empty()) return;
  std::vector<std::shared_ptr<WriteCall>> calls;
  calls.swap(to_propose_);
  const raft::NodeId lead = node_->leader();
  if (node_->role() != raft::Role::kLeader) {
    // Not ours to propose: whoever sent these fails them on the leader change it will see.
    forwarded_in_.clear();
    if (lead == raft::kNone) {
      to_propose_ = std::move(calls);  // wait for an election (expire() bounds the wait)
      return;
    }
    // Forward to the leader over our Peer stream, batched with the Raft traffic. We answer
    // the caller ourselves when we apply the entry (origin = us), as every member applies it.
    std::vector<std::string> out;
    std::vector<std::uint64_t> ids;
    for (auto& c : calls) {
      if (auto err = sm_.store().validate(c->cmd)) {
        fulfil(c->done, error_result(err->grpc_code, err->message));
        continue;
      }
      const std::uint64_t id = next_request_id_++;
      c->cmd.set_request_id(id);
      c->cmd.set_origin(cfg_.self_id);
      out.push_back(c->cmd.SerializeAsString());
      ids.push_back(id);
      proposed_[id] = c;
    }
    if (out.empty()) return;
    metrics_->forwarded.fetch_add(out.size(), std::memory_order_relaxed);
    if (!transport_->send_proposals(lead, std::move(out))) {
      for (auto id : ids) {
        fulfil(proposed_[id]->done, error_result(kUnavailable, "ringwire: leader unreachable"));
        proposed_.erase(id);
      }
    }
    return;
  }
  std::vector<std::string> batch;
  std::vector<std::uint64_t> ids;
  auto flush = [&] {
    if (batch.empty()) return;
    const std::size_t n = batch.size();
    if (!node_->propose_batch(std::move(batch))) {
      for (auto id : ids) {
        auto it = proposed_.find(id);
        if (it == proposed_.end()) continue;
        // Refused (a leadership transfer is running): try again next turn, as leader or by
        // forwarding to whoever leads then; expire() bounds the wait.
        to_propose_.push_back(std::move(it->second));
        proposed_.erase(it);
      }
    } else {
      metrics_->proposals.fetch_add(n, std::memory_order_relaxed);
    }
    batch.clear();
    ids.clear();
  };
  // Followers validated these; a retry of an applied request is answered from the session
  // table at apply time, so they need no dedup check here.
  for (auto& f : forwarded_in_) {
    batch.push_back(std::move(f));
    if (batch.size() >= cfg_.max_batch) flush();
  }
  forwarded_in_.clear();
  for (auto& c : calls) {
    if (auto err = sm_.store().validate(c->cmd)) {
      fulfil(c->done, error_result(err->grpc_code, err->message));
      continue;
    }
    if (sm_.is_duplicate(c->cmd.client_id(), c->cmd.seq())) {
      auto r = sm_.duplicate_result(c->cmd.client_id(), c->cmd.seq());
      fulfil(c->done, r ? *r
                        : error_result(kFailedPrecondition,
                                       "ringwire: request older than this client's latest"));
      continue;
    }
    const std::uint64_t id = next_request_id_++;
    c->cmd.set_request_id(id);
    c->cmd.set_origin(cfg_.self_id);
    batch.push_back(c->cmd.SerializeAsString());
    ids.push_back(id);
    proposed_[id] = c;
    if (batch.size() >= cfg_.max_batch) flush();
  }
  flush();
}

void KvNode::start_read_round() {
  if (to_read_.empty()) return;
  const std::uint64_t ctx = next_read_ctx_++;
  // One ReadIndex round answers every read that arrived in this turn.
  if (node_->read_index(ctx)) {
    read_rounds_[ctx] = ReadRound{std::move(to_read_), Clock::now()};
    to_read_.clear();
  }
}

void KvNode::handle_ready() {
  raft::Ready rd = node_->ready();
  // A leader may send before its own write is durable (Raft thesis 10.2.1): its appends
  // promise nothing about its disk, and the core counts the leader toward a commit only once
  // advance() reports its entries stable. So the leader's fsync overlaps the followers'.
  // Everyone else's messages (votes, acks) promise durability and wait for the fsync.
  const bool leading = node_->role() == raft::Role::kLeader && !rd.snapshot;
  if (leading && !rd.messages.empty()) transport_->send(std::move(rd.messages));
  // The commit index is volatile state in Raft (a restarted member relearns it), so a hard
  // state that only moved the commit index is not worth an fsync of its own: it rides along
  // with the next write that must be synced anyway. Term and vote are written at once.
  std::optional<raft::HardState> hs = rd.hard_state;
  if (hs && hs->term == durable_hs_.term && hs->vote == durable_hs_.vote && !rd.snapshot &&
      rd.entries.empty()) {
    deferred_hs_ = hs;
    hs.reset();
  }
  if (!hs && deferred_hs_ && (rd.snapshot || !rd.entries.empty())) hs = deferred_hs_;
  if (rd.snapshot || !rd.entries.empty() || hs) {
    auto st = storage_->save(rd.snapshot, rd.entries, hs);
    if (!st) {
      fatal("WAL write failed: " + st.to_string());
      return;
    }
    if (hs) {
      durable_hs_ = *hs;
      deferred_hs_.reset();
    }
  }
  if (!leading && !rd.messages.empty()) transport_->send(std::move(rd.messages));
  if (rd.snapshot) {
    if (!sm_.restore(rd.snapshot->data)) {
      fatal("snapshot from the leader at index " + std::to_string(rd.snapshot->index) +
            " does not decode");
      return;
    }
    applied_ = snapshot_index_ = rd.snapshot->index;
    metrics_->snapshots_installed.fetch_add(1, std::memory_order_relaxed);
    hub_.close_all("ringwire: member installed a snapshot; watch again from your revision");
    sync_peers();
    view_dirty_ = true;
    spdlog::info("installed snapshot at index {} (revision {})", rd.snapshot->index,
                 sm_.store().revision());
  }
  for (const auto& e : rd.committed_entries)
    apply_entry(e);
  for (const auto& rs : rd.read_states) {
    auto it = read_rounds_.find(rs.context);
    if (it == read_rounds_.end()) continue;
    for (auto& c : it->second.calls)
      ready_reads_.emplace(rs.index, std::move(c));
    read_rounds_.erase(it);
  }
  node_->advance(rd);
  serve_ready_reads();
}

void KvNode::apply_entry(const raft::Entry& e) {
  if (e.index <= applied_) return;  // covered by the snapshot we restored
  if (e.type == raft::EntryType::kConfChange) {
    auto cc = raft::ConfChange::decode(e.data);
    if (cc) {
      node_->apply_conf_change(e.index, *cc);
      sm_.apply_conf_change(*cc);
      sync_peers();
      publish_view();  // before the caller is answered: its reply lists the members
      spdlog::info("membership change applied at {}: {} {:x}", e.index,
                   cc->kind == raft::ConfChange::Kind::kRemove ? "remove" : "add", cc->node);
    } else {
      spdlog::error("conf change entry {} does not decode; skipped", e.index);
    }
    auto it = conf_proposed_.find(e.index);
    if (it != conf_proposed_.end()) {
      if (cc && *cc == it->second->cc) {
        fulfil(it->second->done, grpc::Status::OK);
      } else {
        fulfil(it->second->done,
               grpc::Status(grpc::StatusCode::ABORTED, "ringwire: membership change lost"));
      }
      conf_proposed_.erase(it);
    }
  } else {
    std::string err;
    auto a = sm_.apply(e, &err);
    if (!err.empty()) spdlog::error("apply: {}", err);
    if (a.members_changed) {
      sync_peers();
      publish_view();  // before the caller is answered
    }
    if (a.origin == cfg_.self_id && a.request_id != 0) {
      auto it = proposed_.find(a.request_id);
      if (it != proposed_.end()) {
        fulfil(it->second->done, std::move(a.result));
        proposed_.erase(it);
      }
    }
  }
  applied_ = e.index;
  metrics_->applied_entries.fetch_add(1, std::memory_order_relaxed);
}

void KvNode::serve_read(ReadCall& c) {
  etcdserverpb::RangeResponse resp;
  auto err = sm_.store().range(c.req, &resp);
  if (err) {
    fulfil(c.done,
           std::make_pair(grpc::Status(static_cast<grpc::StatusCode>(err->grpc_code), err->message),
                          etcdserverpb::RangeResponse{}));
    return;
  }
  fill_header(resp.mutable_header(), resp.header().revision());
  fulfil(c.done, std::make_pair(grpc::Status::OK, std::move(resp)));
}

void KvNode::serve_ready_reads() {
  while (!ready_reads_.empty() && ready_reads_.begin()->first <= applied_) {
    serve_read(*ready_reads_.begin()->second);
    metrics_->read_index_reads.fetch_add(1, std::memory_order_relaxed);
    ready_reads_.erase(ready_reads_.begin());
  }
}

void KvNode::maybe_compact() {
  if (cfg_.snapshot_entries == 0 || applied_ < snapshot_index_ + cfg_.snapshot_entries) return;
  if (!node_->compact(applied_, sm_.encode())) return;
  auto st = storage_->save_snapshot(node_->snapshot());
  if (!st) {
    fatal("snapshot write failed: " + st.to_string());
    return;
  }
  snapshot_index_ = applied_;
  metrics_->snapshots_taken.fetch_add(1, std::memory_order_relaxed);
}

void KvNode::expire(Clock::time_point now) {
  for (auto it = proposed_.begin(); it != proposed_.end();) {
    if (it->second->deadline < now) {
      metrics_->proposals_failed.fetch_add(1, std::memory_order_relaxed);
      it = proposed_.erase(it);
    } else {
      ++it;
    }
  }
  std::erase_if(to_read_, [&](const auto& c) { return c->deadline < now; });
  std::erase_if(to_propose_, [&](const auto& c) {
    if (c->deadline >= now) return false;
    fulfil(c->done, error_result(kUnavailable, "etcdserver: no leader"));
    return true;
  });
  // A ReadIndex request or its answer can be lost with a message: ask again.
  for (auto it = read_rounds_.begin(); it != read_rounds_.end();) {
    if (now - it->second.started >
        std::chrono::milliseconds(20 * cfg_.heartbeat_ticks * cfg_.tick_ms)) {
      for (auto& c : it->second.calls) {
        if (c->deadline >= now) to_read_.push_back(std::move(c));
      }
      it = read_rounds_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto it = conf_proposed_.begin(); it != conf_proposed_.end();) {
    it = it->second->deadline < now ? conf_proposed_.erase(it) : std::next(it);
  }
}

void KvNode::sync_peers() {
  std::set<raft::NodeId> ids;
  for (const auto& [id, m] : sm_.members()) {
    if (id == cfg_.self_id || m.peer_url().empty()) continue;
    transport_->set_peer(id, m.peer_url());
    ids.insert(id);
  }
  transport_->retain(ids);  // members that left
}

void KvNode::publish_view() {
  NodeView v;
  v.leader = node_->leader();
  v.term = node_->term();
  v.commit = node_->log().committed();
  v.applied = applied_;
  v.revision = sm_.store().revision();
  v.compact_revision = sm_.store().compact_revision();
  v.db_size = storage_->bytes_on_disk();
  v.db_in_use = sm_.store().approximate_bytes();
  v.learner = node_->is_learner(cfg_.self_id);
  v.role = node_->role();
  for (const auto& [id, m] : sm_.members())
    v.members.push_back(m);
  std::lock_guard lk(view_mu_);
  view_ = std::move(v);
  view_dirty_ = false;
}

NodeView KvNode::view() const {
  std::lock_guard lk(view_mu_);
  return view_;
}

void KvNode::fill_header(etcdserverpb::ResponseHeader* h, std::int64_t revision) const {
  h->set_cluster_id(cfg_.cluster_id);
  h->set_member_id(cfg_.self_id);
  h->set_revision(revision);
  h->set_raft_term(term_.load(std::memory_order_relaxed));
}

void KvNode::fill_members(google::protobuf::RepeatedPtrField<etcdserverpb::Member>* out) const {
  for (const auto& m : view().members) {
    auto* e = out->Add();
    e->set_id(m.id());
    e->set_name(m.name());
    e->add_peerurls("http://" + m.peer_url());
    if (!m.client_url().empty()) e->add_clienturls("http://" + m.client_url());
    e->set_islearner(m.learner());
  }
}

// ---------------------------------------------------------------- handler side

pb::ApplyResult KvNode::submit(pb::Command cmd, Clock::time_point deadline) {
  auto call = std::make_shared<WriteCall>();
  call->cmd = std::move(cmd);
  call->deadline = deadline;
  auto fut = call->done.get_future();
  inbox_.post([this, call] { to_propose_.push_back(call); });
  if (fut.wait_until(deadline) != std::future_status::ready) {
    return error_result(kDeadlineExceeded, "etcdserver: request timed out");
  }
  return fut.get();
}

pb::ApplyResult KvNode::write(pb::Command cmd, Clock::time_point deadline) {
  // The loop proposes it when leading, or forwards it to the leader over the Peer stream.
  return submit(std::move(cmd), deadline);
}

grpc::Status KvNode::range(const etcdserverpb::RangeRequest& req, etcdserverpb::RangeResponse* resp,
                           Clock::time_point deadline) {
  auto call = std::make_shared<ReadCall>();
  call->req = req;
  call->deadline = deadline;
  auto fut = call->done.get_future();
  const bool local = req.serializable() || cfg_.unsafe_local_reads;
  inbox_.post([this, call, local] {
    if (local) {
      serve_read(*call);
      metrics_->serializable_reads.fetch_add(1, std::memory_order_relaxed);
    } else {
      to_read_.push_back(call);
    }
  });
  if (fut.wait_until(deadline) != std::future_status::ready) {
    return {grpc::StatusCode::DEADLINE_EXCEEDED, leader_.load() == raft::kNone
                                                     ? "etcdserver: no leader"
                                                     : "etcdserver: request timed out"};
  }
  auto [status, r] = fut.get();
  if (status.ok()) *resp = std::move(r);
  return status;
}

void KvNode::propose_forwarded(std::vector<std::string> commands) {
  inbox_.post([this, c = std::move(commands)]() mutable {
    for (auto& cmd : c)
      forwarded_in_.push_back(std::move(cmd));
  });
}

void KvNode::step(std::vector<raft::Message> batch) {
  metrics_->peer_messages_received.fetch_add(batch.size(), std::memory_order_relaxed);
  inbox_.post([this, b = std::move(batch)] {
    for (const auto& m : b)
      node_->step(m);
  });
}

std::uint64_t KvNode::open_watch_stream(std::shared_ptr<WatchStream> s) {
  auto p = std::make_shared<std::promise<std::uint64_t>>();
  auto f = p->get_future();
  inbox_.post([this, s, p] { p->set_value(hub_.add_stream(s)); });
  if (f.wait_for(std::chrono::seconds(5)) != std::future_status::ready) return 0;
  return f.get();
}

void KvNode::close_watch_stream(std::uint64_t stream) {
  inbox_.post([this, stream] { hub_.remove_stream(stream); });
}

void KvNode::watch_request(std::uint64_t stream, etcdserverpb::WatchRequest req) {
  inbox_.post([this, stream, r = std::move(req)] {
    auto out = hub_.stream(stream);
    if (!out) return;
    etcdserverpb::WatchResponse resp;
    fill_header(resp.mutable_header(), sm_.store().revision());
    switch (r.request_union_case()) {
      case etcdserverpb::WatchRequest::kCreateRequest:
        watch_create(stream, r.create_request());
        return;
      case etcdserverpb::WatchRequest::kCancelRequest:
        hub_.cancel(stream, r.cancel_request().watch_id());
        resp.set_watch_id(r.cancel_request().watch_id());
        resp.set_canceled(true);
        out->push(std::move(resp));
        return;
      case etcdserverpb::WatchRequest::kProgressRequest:
        resp.set_watch_id(-1);
        out->push(std::move(resp));
        return;
      default:
        return;
    }
  });
}

void KvNode::watch_create(std::uint64_t stream, const etcdserverpb::WatchCreateRequest& c) {
  auto out = hub_.stream(stream);
  const auto& store = sm_.store();
  const std::int64_t rev = store.revision();
  etcdserverpb::WatchResponse created;
  fill_header(created.mutable_header(), rev);
  created.set_created(true);
  Watcher w;
  w.id = c.watch_id();
  w.range = store::KeyRange{c.key(), c.range_end()};
  w.prev_kv = c.prev_kv();
  w.progress_notify = c.progress_notify();
  for (auto f : c.filters()) {
    if (f == etcdserverpb::WatchCreateRequest::NOPUT) w.no_put = true;
    if (f == etcdserverpb::WatchCreateRequest::NODELETE) w.no_delete = true;
  }
  const std::int64_t start = c.start_revision() > 0 ? c.start_revision() : rev + 1;
  if (start < store.compact_revision()) {  // the compacted revision itself is served (etcd)
    created.set_watch_id(c.watch_id() != 0 ? c.watch_id() : -1);
    out->push(created);
    created.set_created(false);
    created.set_canceled(true);
    created.set_compact_revision(store.compact_revision());
    created.set_cancel_reason("etcdserver: mvcc: required revision has been compacted");
    out->push(std::move(created));
    return;
  }
  const Watcher copy = w;
  auto id = hub_.add_watcher(stream, std::move(w));
  if (!id) {
    created.set_watch_id(c.watch_id());
    created.set_canceled(true);
    created.set_cancel_reason("ringwire: watch id already in use on this stream");
    out->push(std::move(created));
    return;
  }
  created.set_watch_id(*id);
  out->push(std::move(created));
  if (start > rev) return;
  std::vector<mvccpb::Event> evs;
  if (auto err = store.events_since(c.key(), c.range_end(), start, c.prev_kv(), &evs)) return;
  // One response per revision, as live events are sent.
  std::size_t i = 0;
  while (i < evs.size()) {
    const std::int64_t r = evs[i].kv().mod_revision();
    std::vector<mvccpb::Event> group;
    while (i < evs.size() && evs[i].kv().mod_revision() == r)
      group.push_back(evs[i++]);
    etcdserverpb::WatchResponse resp;
    WatchHub::filter(copy, group, resp.mutable_events());
    if (resp.events_size() == 0) continue;
    fill_header(resp.mutable_header(), rev);
    resp.set_watch_id(*id);
    out->push(std::move(resp));
  }
}

// ---------------------------------------------------------------- membership

pb::ApplyResult KvNode::conf_change(raft::ConfChange cc, Clock::time_point deadline) {
  auto call = std::make_shared<ConfCall>();
  call->cc = cc;
  call->deadline = deadline;
  auto fut = call->done.get_future();
  inbox_.post([this, call] { to_conf_.push_back(call); });
  if (fut.wait_until(deadline) != std::future_status::ready) {
    return error_result(kDeadlineExceeded, "etcdserver: request timed out");
  }
  const grpc::Status s = fut.get();
  return s.ok() ? pb::ApplyResult{} : error_result(s.error_code(), s.error_message());
}

namespace {
grpc::Status to_status(const pb::ApplyResult& r) {
  if (r.grpc_code() == 0) return grpc::Status::OK;
  return {static_cast<grpc::StatusCode>(r.grpc_code()), r.error()};
}
}  // namespace

grpc::Status KvNode::member_add(const etcdserverpb::MemberAddRequest& req,
                                etcdserverpb::MemberAddResponse* resp, Clock::time_point deadline) {
  if (req.peerurls_size() != 1) {
    return {grpc::StatusCode::INVALID_ARGUMENT, "ringwire: give exactly one peer URL"};
  }
  const raft::NodeId lead = leader_.load();
  if (lead != cfg_.self_id) {
    auto stub = lead == raft::kNone ? nullptr : transport_->stub(lead);
    if (!stub) return {grpc::StatusCode::UNAVAILABLE, "etcdserver: no leader"};
    grpc::ClientContext ctx;
    ctx.set_deadline(to_system(deadline));
    return stub->MemberAdd(&ctx, req, resp);
  }
  const std::string url = normalize_address(req.peerurls(0));
  const raft::NodeId id = member_id_for(url);
  for (const auto& m : view().members) {
    if (m.id() == id || m.peer_url() == url) {
      return {grpc::StatusCode::FAILED_PRECONDITION, "etcdserver: Peer URLs already exists"};
    }
  }
  pb::Command cmd;
  cmd.mutable_add_member()->set_id(id);
  cmd.mutable_add_member()->set_peer_url(url);
  cmd.mutable_add_member()->set_learner(req.islearner());
  auto r = submit(cmd, deadline);
  if (r.grpc_code() != 0) return to_status(r);
  raft::ConfChange cc{
      req.islearner() ? raft::ConfChange::Kind::kAddLearner : raft::ConfChange::Kind::kAddVoter,
      id};
  r = conf_change(cc, deadline);
  if (r.grpc_code() != 0) return to_status(r);
  fill_header(resp->mutable_header(), view().revision);
  resp->mutable_member()->set_id(id);
  resp->mutable_member()->add_peerurls("http://" + url);
  resp->mutable_member()->set_islearner(req.islearner());
  fill_members(resp->mutable_members());
  return grpc::Status::OK;
}

grpc::Status KvNode::member_remove(const etcdserverpb::MemberRemoveRequest& req,
                                   etcdserverpb::MemberRemoveResponse* resp,
                                   Clock::time_point deadline) {
  const raft::NodeId lead = leader_.load();
  if (lead != cfg_.self_id) {
    auto stub = lead == raft::kNone ? nullptr : transport_->stub(lead);
    if (!stub) return {grpc::StatusCode::UNAVAILABLE, "etcdserver: no leader"};
    grpc::ClientContext ctx;
    ctx.set_deadline(to_system(deadline));
    return stub->MemberRemove(&ctx, req, resp);
  }
  bool known = false;
  for (const auto& m : view().members)
    known = known || m.id() == req.id();
  if (!known) return {grpc::StatusCode::NOT_FOUND, "etcdserver: member not found"};
  auto r = conf_change({raft::ConfChange::Kind::kRemove, req.id()}, deadline);
  if (r.grpc_code() != 0) return to_status(r);
  fill_header(resp->mutable_header(), view().revision);
  fill_members(resp->mutable_members());
  return grpc::Status::OK;
}

grpc::Status KvNode::member_promote(const etcdserverpb::MemberPromoteRequest& req,
                                    etcdserverpb::MemberPromoteResponse* resp,
                                    Clock::time_point deadline) {
  const raft::NodeId lead = leader_.load();
  if (lead != cfg_.self_id) {
    auto stub = lead == raft::kNone ? nullptr : transport_->stub(lead);
    if (!stub) return {grpc::StatusCode::UNAVAILABLE, "etcdserver: no leader"};
    grpc::ClientContext ctx;
    ctx.set_deadline(to_system(deadline));
    return stub->MemberPromote(&ctx, req, resp);
  }
  auto r = conf_change({raft::ConfChange::Kind::kAddVoter, req.id()}, deadline);
  if (r.grpc_code() != 0) return to_status(r);
  fill_header(resp->mutable_header(), view().revision);
  fill_members(resp->mutable_members());
  return grpc::Status::OK;
}

grpc::Status KvNode::move_leader(raft::NodeId target, Clock::time_point deadline) {
  auto p = std::make_shared<std::promise<bool>>();
  auto f = p->get_future();
  inbox_.post([this, target, p] { p->set_value(node_->transfer_leadership(target)); });
  if (f.wait_until(deadline) != std::future_status::ready) {
    return {grpc::StatusCode::DEADLINE_EXCEEDED, "etcdserver: request timed out"};
  }
  if (!f.get()) {
    return {grpc::StatusCode::FAILED_PRECONDITION,
            "etcdserver: not leader, or the target is not another voting member"};
  }
  while (Clock::now() < deadline) {
    if (leader_.load() == target) return grpc::Status::OK;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return {grpc::StatusCode::DEADLINE_EXCEEDED, "etcdserver: leadership transfer timed out"};
}

void KvNode::run_attribute_publisher() {
  // Publishes this member's name and client address once, so MemberList shows how to reach
  // it (the founding list only has peer addresses of the others).
  while (!stop_.load()) {
    bool done = false;
    for (const auto& m : view().members) {
      if (m.id() == cfg_.self_id) done = m.name() == cfg_.name && m.client_url() == cfg_.listen;
    }
    if (done) return;
    if (leader_.load() != raft::kNone) {
      pb::Command cmd;
      cmd.mutable_attributes()->set_id(cfg_.self_id);
      cmd.mutable_attributes()->set_name(cfg_.name);
      cmd.mutable_attributes()->set_client_url(cfg_.listen);
      write(cmd, Clock::now() + std::chrono::seconds(2));
    }
    for (int i = 0; i < 20 && !stop_.load(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
}

}  // namespace ringwire::kv::server
