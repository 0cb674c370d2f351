#include "ringwire/raft/node.hpp"

#include <algorithm>
#include <cassert>
#include <functional>
#include <utility>

namespace ringwire::raft {

namespace {

// splitmix64: a tiny, fully specified PRNG, so a seed means the same run everywhere.
std::uint64_t next_random(std::uint64_t& s) {
  s += 0x9E3779B97F4A7C15ULL;
  std::uint64_t z = s;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

std::size_t payload_bytes(const std::vector<Entry>& ents) {
  std::size_t n = 0;
  for (const auto& e : ents)
    n += e.data.size();
  return n;
}

}  // namespace

std::string_view to_string(Role r) {
  switch (r) {
    case Role::kFollower:
      return "follower";
    case Role::kPreCandidate:
      return "pre-candidate";
    case Role::kCandidate:
      return "candidate";
    case Role::kLeader:
      return "leader";
  }
  return "?";
}

Node::Node(const Config& cfg) : Node(cfg, DurableState{HardState{}, {}}) {
  force_hs_ = true;
}

Node::Node(const Config& cfg, const DurableState& durable)
    : cfg_(cfg),
      rng_(cfg.seed ^ (cfg.id * 0xD1B54A32D192ED03ULL)),
      log_(durable.snapshot
               ? Log(*durable.snapshot, durable.entries,
                     durable.hard_state ? durable.hard_state->commit : 0)
               : Log(durable.entries, durable.hard_state ? durable.hard_state->commit : 0)) {
  if (durable.snapshot) {
    snapshot_ = *durable.snapshot;
    conf_ = durable.snapshot->conf;
  } else {
    conf_ = ConfState{cfg.voters, cfg.learners};
  }
  conf_history_.push_back({log_.snapshot_index(), conf_});
  assert(cfg_.id != kNone && cfg_.election_tick > cfg_.heartbeat_tick && cfg_.heartbeat_tick > 0);
  if (durable.hard_state) {
    term_ = durable.hard_state->term;
    vote_ = durable.hard_state->vote;
  }
  // After a torn write (entries durable, hard state not) the log may hold entries of a later
  // term. Adopt that term with no vote: a vote lost with the hard state was never sent.
  if (log_.last_term() > term_) {
    term_ = log_.last_term();
    vote_ = kNone;
  }
  persisted_hs_ = durable.hard_state.value_or(HardState{});  // a bumped term gets persisted
  become_follower(term_, kNone);
}

Node::RestartResult Node::restart(const Config& cfg, const DurableState& durable) {
  if (!durable.hard_state) {
    return {nullptr,
            "refusing to start: the disk holds no Raft state (never initialized or wiped); a "
            "member that lost its disk may have voted or acknowledged entries and must rejoin "
            "as a new member"};
  }
  const std::uint64_t base = durable.snapshot ? durable.snapshot->index : 0;
  std::uint64_t prev_term = durable.snapshot ? durable.snapshot->term : 0;
  for (std::size_t i = 0; i < durable.entries.size(); ++i) {
    const Entry& e = durable.entries[i];
    if (e.index != base + i + 1 || e.term < prev_term || e.term == 0) {
      return {nullptr,
              "refusing to start: the durable log is not contiguous or its terms decrease"};
    }
    prev_term = e.term;
  }
  std::unique_ptr<Node> n(new Node(cfg, durable));
  // With leases, an acknowledgement must not outlive a crash: a restarted node behaves as if it
  // had just heard from a leader and refuses votes for an election timeout.
  n->quiet_after_restart_ = cfg.lease_reads;
  return {std::move(n), {}};
}

const Progress* Node::progress(NodeId peer) const {
  auto it = prs_.find(peer);
  return it == prs_.end() ? nullptr : &it->second;
}

void Node::send(Message m) {
  m.from = cfg_.id;
  msgs_.push_back(std::move(m));
}

void Node::reset_randomized_timeout() {
  randomized_timeout_ =
      cfg_.election_tick +
      static_cast<int>(next_random(rng_) % static_cast<std::uint64_t>(cfg_.election_tick));
}

void Node::reset(std::uint64_t term) {
  if (term_ != term) {
    term_ = term;
    vote_ = kNone;
  }
  lead_ = kNone;
  election_elapsed_ = 0;
  heartbeat_elapsed_ = 0;
  reset_randomized_timeout();
  votes_.clear();
  prs_.clear();
  for (NodeId v : conf_.voters)
    add_progress(v);
  for (NodeId v : conf_.learners)
    add_progress(v);
  pending_reads_.clear();
  read_acked_.clear();
  lead_transferee_ = kNone;
  ack_tick_.clear();
  transfer_in_term_ = false;
}

void Node::become_follower(std::uint64_t term, NodeId lead) {
  reset(term);
  lead_ = lead;
  role_ = Role::kFollower;
}

void Node::become_pre_candidate() {
  // Pre-vote changes neither term nor vote: a partitioned node cannot inflate terms.
  role_ = Role::kPreCandidate;
  votes_.clear();
  lead_ = kNone;
}

void Node::become_candidate() {
  reset(term_ + 1);
  vote_ = cfg_.id;
  role_ = Role::kCandidate;
}

void Node::become_leader() {
  reset(term_);
  lead_ = cfg_.id;
  role_ = Role::kLeader;
  // Our own entries count toward a quorum only once durable (see advance()).
  prs_.at(cfg_.id).maybe_update(log_.stable());
  prs_.at(cfg_.id).become_replicate();
  // A change still in the log may be unapplied: no new one until everything is applied.
  pending_conf_index_ = log_.last_index();
  // A no-op of the new term: committing it commits everything before it (Figure 8).
  log_.append({Entry{term_, log_.last_index() + 1, {}}});
  bcast_append(true);
}

bool Node::committed_in_current_term() const {
  return log_.term(log_.committed()) == term_;
}

void Node::campaign() {
  if (role_ == Role::kLeader || !is_voter(cfg_.id)) return;  // learners and non-members wait
  start_election(cfg_.pre_vote);
}

void Node::start_election(bool pre, bool transfer) {
  if (pre) {
    become_pre_candidate();
  } else {
    become_candidate();
  }
  const std::uint64_t term = pre ? term_ + 1 : term_;
  poll(cfg_.id, true);
  if (role_ == Role::kLeader || (pre && role_ != Role::kPreCandidate)) return;
  if (!pre && role_ != Role::kCandidate) return;
  for (NodeId v : conf_.voters) {
    if (v == cfg_.id) continue;
    Message m;
    m.type = pre ? MessageType::kPreVote : MessageType::kVote;
    m.to = v;
    m.term = term;
    m.index = log_.last_index();
    m.log_term = log_.last_term();
    m.transfer = transfer;
    send(std::move(m));
  }
}

void Node::poll(NodeId from, bool granted) {
  votes_.emplace(from, granted);
  std::size_t yes = 0;
  std::size_t no = 0;
  for (const auto& [id, g] : votes_) {
    if (is_voter(id)) (g ? yes : no) += 1;  // only the current voters' answers count
  }
  if (yes >= quorum()) {
    if (role_ == Role::kPreCandidate) {
      start_election(false);
    } else {
      become_leader();
    }
  } else if (no >= quorum()) {
    become_follower(term_, kNone);
  }
}

void Node::tick() {
  ++tick_count_;
  if (role_ == Role::kLeader) {
    tick_heartbeat();
  } else {
    tick_election();
  }
}

void Node::tick_election() {
  ++election_elapsed_;
  if (election_elapsed_ >= cfg_.election_tick) quiet_after_restart_ = false;
  if (election_elapsed_ >= randomized_timeout_) {
    election_elapsed_ = 0;
    reset_randomized_timeout();
    campaign();
  }
}

void Node::tick_heartbeat() {
  ++heartbeat_elapsed_;
  ++election_elapsed_;
  if (election_elapsed_ >= cfg_.election_tick) {
    election_elapsed_ = 0;
    lead_transferee_ = kNone;  // a transfer that did not finish within a timeout is abandoned
    if (cfg_.check_quorum) {
      std::size_t active = 0;
      for (auto& [id, pr] : prs_) {
        if (is_voter(id) && (id == cfg_.id || pr.recent_active)) ++active;
        pr.recent_active = false;
      }
      if (active < quorum()) {
        become_follower(term_, kNone);  // cannot reach a majority: stop acting as leader
        return;
      }
    }
  }
  if (heartbeat_elapsed_ >= cfg_.heartbeat_tick) {
    heartbeat_elapsed_ = 0;
    bcast_heartbeat();
  }
}

void Node::step(const Message& m) {
  if (m.term > term_) {
    const bool vote_req = m.type == MessageType::kPreVote || m.type == MessageType::kVote;
    if (vote_req && !m.transfer && cfg_.check_quorum && (lead_ != kNone || quiet_after_restart_) &&
        election_elapsed_ < cfg_.election_tick) {
      return;  // we heard from a live leader within the election timeout: ignore disruption
    }
    if (m.type == MessageType::kPreVote || (m.type == MessageType::kPreVoteResp && !m.reject)) {
      // A pre-vote (or a grant of ours) names a future term; it changes nothing yet.
    } else {
      const bool from_leader = m.type == MessageType::kAppend || m.type == MessageType::kHeartbeat;
      // Raft's timer restarts only on hearing the leader or granting a vote, not on a term
      // bump: otherwise a node with a stale log and a fast clock could keep the others from
      // ever timing out (found by the simulator with pre-vote off and clock skew).
      const int elapsed = election_elapsed_;
      become_follower(m.term, from_leader ? m.from : kNone);
      if (!from_leader) election_elapsed_ = elapsed;
    }
  } else if (m.term < term_) {
    if ((cfg_.check_quorum || cfg_.pre_vote) &&
        (m.type == MessageType::kAppend || m.type == MessageType::kHeartbeat)) {
      // Tell a stale leader our term so it steps down (it may never see a vote request).
      Message r;
      r.type = MessageType::kAppendResp;
      r.to = m.from;
      r.term = term_;
      send(std::move(r));
    } else if (m.type == MessageType::kPreVote) {
      Message r;
      r.type = MessageType::kPreVoteResp;
      r.to = m.from;
      r.term = term_;
      r.reject = true;
      send(std::move(r));
    }
    return;
  }

  if (m.type == MessageType::kPreVote || m.type == MessageType::kVote) {
    handle_vote_request(m);
    return;
  }
  switch (role_) {
    case Role::kLeader:
      step_leader(m);
      break;
    case Role::kPreCandidate:
    case Role::kCandidate:
      step_candidate(m);
      break;
    case Role::kFollower:
      step_follower(m);
      break;
  }
}

void Node::handle_vote_request(const Message& m) {
  const bool pre = m.type == MessageType::kPreVote;
  bool can_vote = vote_ == m.from || (vote_ == kNone && lead_ == kNone) || (pre && m.term > term_);
  if (!pre && cfg_.unsafe_double_vote) can_vote = true;  // MUTATION (tests only)
  Message r;
  r.type = pre ? MessageType::kPreVoteResp : MessageType::kVoteResp;
  r.to = m.from;
  if (can_vote && log_.is_up_to_date(m.index, m.log_term)) {
    r.term = m.term;  // for a pre-vote: the future term, so the requester does not drop it
    if (!pre) {
      election_elapsed_ = 0;
      vote_ = m.from;
    }
  } else {
    r.term = term_;
    r.reject = true;
  }
  send(std::move(r));
}

void Node::step_leader(const Message& m) {
  auto it = prs_.find(m.from);
  switch (m.type) {
    case MessageType::kAppendResp: {
      if (it == prs_.end()) return;
      Progress& pr = it->second;
      pr.recent_active = true;
      if (m.reject) {
        // Fast backtracking: skip every entry of ours whose term is above the follower's hint.
        const std::uint64_t hint = log_.find_conflict_by_term(m.reject_hint, m.log_term);
        if (pr.maybe_decrease(m.index, hint)) {
          if (pr.state() == Progress::State::kReplicate) pr.become_probe();
          send_append(m.from, true);
        }
        return;
      }
      if (!pr.maybe_update(m.index)) return;
      if (pr.state() == Progress::State::kProbe) {
        pr.become_replicate();
      } else {
        pr.inflights().free_le(m.index);
      }
      if (maybe_commit()) bcast_append(true);
      while (send_append(m.from, false)) {
      }
      if (m.from == lead_transferee_ && pr.match() == log_.last_index()) send_timeout_now(m.from);
      return;
    }
    case MessageType::kHeartbeatResp: {
      if (it == prs_.end()) return;
      it->second.recent_active = true;
      {
        auto& t = ack_tick_[m.from];
        t = std::max(t, m.index);  // the send tick of the heartbeat it answers
      }
      it->second.heartbeat_ack();
      if (it->second.match() < log_.last_index()) send_append(m.from, true);
      auto& acked = read_acked_[m.from];
      acked = std::max(acked, m.context);
      check_pending_reads();
      return;
    }
    case MessageType::kReadIndex: {
      if (!committed_in_current_term()) return;  // the follower's client retries
      pending_reads_.push_back({next_read_id_++, log_.committed(), m.from, m.context});
      if (conf_.voters.size() == 1) {
        check_pending_reads();
      } else {
        bcast_heartbeat();
      }
      return;
    }
    default:
      return;
  }
}

void Node::step_candidate(const Message& m) {
  switch (m.type) {
    case MessageType::kAppend:
      become_follower(m.term, m.from);
      handle_append(m);
      return;
    case MessageType::kHeartbeat:
      become_follower(m.term, m.from);
      handle_heartbeat(m);
      return;
    case MessageType::kSnapshot:
      become_follower(m.term, m.from);
      handle_snapshot(m);
      return;
    case MessageType::kPreVoteResp:
      if (role_ == Role::kPreCandidate) poll(m.from, !m.reject);
      return;
    case MessageType::kVoteResp:
      if (role_ == Role::kCandidate) poll(m.from, !m.reject);
      return;
    default:
      return;
  }
}

void Node::step_follower(const Message& m) {
  switch (m.type) {
    case MessageType::kAppend:
      election_elapsed_ = 0;
      lead_ = m.from;
      handle_append(m);
      return;
    case MessageType::kHeartbeat:
      election_elapsed_ = 0;
      lead_ = m.from;
      handle_heartbeat(m);
      return;
    case MessageType::kReadIndexResp:
      read_states_.push_back({m.index, m.context});
      return;
    case MessageType::kTimeoutNow:
      // The leader asked us to take over: campaign at once, no pre-vote, past the lease.
      if (is_voter(cfg_.id)) start_election(false, true);
      return;
    case MessageType::kSnapshot:
      election_elapsed_ = 0;
      lead_ = m.from;
      handle_snapshot(m);
      return;
    default:
      return;
  }
}

void Node::handle_append(const Message& m) {
  Message r;
  r.type = MessageType::kAppendResp;
  r.to = m.from;
  r.term = term_;
  if (m.index < log_.committed()) {
    r.index = log_.committed();
    send(std::move(r));
    return;
  }
  if (auto last = log_.maybe_append(m.index, m.log_term, m.commit, m.entries)) {
    r.index = *last;
  } else {
    // Hint: the largest index <= the probed one whose term is <= the leader's term there.
    const std::uint64_t hint =
        log_.find_conflict_by_term(std::min(m.index, log_.last_index()), m.log_term);
    r.reject = true;
    r.index = m.index;
    r.reject_hint = hint;
    r.log_term = log_.term(hint).value_or(0);
  }
  send(std::move(r));
}

void Node::handle_snapshot(const Message& m) {
  const Snapshot& snap = m.snapshot;
  Message r;
  r.type = MessageType::kAppendResp;
  r.to = m.from;
  r.term = term_;
  if (snap.index <= log_.committed()) {
    r.index = log_.committed();  // stale: we have all of it already
  } else if (log_.match_term(snap.index, snap.term)) {
    log_.commit_to(snap.index);  // our log already holds it: just catch up the commit
    r.index = snap.index;
  } else {
    // Our log diverges or ends before the snapshot: replace it.
    log_.restore(snap);
    snapshot_ = snap;
    pending_snapshot_ = snap;
    conf_ = snap.conf;
    conf_history_.assign(1, {snap.index, snap.conf});
    const std::uint64_t term = term_;
    const NodeId lead = lead_;
    const int elapsed = election_elapsed_;
    reset(term);  // progress for the snapshot's membership
    lead_ = lead;
    election_elapsed_ = elapsed;
    r.index = snap.index;
  }
  send(std::move(r));
}

void Node::send_snapshot(NodeId to) {
  Progress& pr = prs_.at(to);
  Message m;
  m.type = MessageType::kSnapshot;
  m.to = to;
  m.term = term_;
  m.snapshot = snapshot_;
  pr.sent_snapshot(snapshot_.index);
  send(std::move(m));
}

bool Node::compact(std::uint64_t index, std::string data) {
  if (index <= log_.snapshot_index() || index > log_.applied()) return false;
  snapshot_ = Snapshot{index, *log_.term(index), std::move(data), conf_at(index)};
  log_.compact(index);
  // Keep the membership as of the snapshot and every change after it.
  while (conf_history_.size() > 1 && conf_history_[1].first <= index)
    conf_history_.erase(conf_history_.begin());
  return true;
}

bool Node::is_voter(NodeId id) const {
  return std::find(conf_.voters.begin(), conf_.voters.end(), id) != conf_.voters.end();
}
bool Node::is_learner(NodeId id) const {
  return std::find(conf_.learners.begin(), conf_.learners.end(), id) != conf_.learners.end();
}

ConfState Node::conf_at(std::uint64_t index) const {
  ConfState c = conf_history_.front().second;
  for (const auto& [i, conf] : conf_history_) {
    if (i <= index) c = conf;
  }
  return c;
}

void Node::add_progress(NodeId id) {
  prs_.emplace(id,
               Progress(log_.last_index() + 1, cfg_.max_inflight_msgs, cfg_.max_inflight_bytes));
}

std::optional<std::uint64_t> Node::propose_conf_change(const ConfChange& cc) {
  if (role_ != Role::kLeader || lead_transferee_ != kNone || !committed_in_current_term() ||
      pending_conf_index_ > log_.applied() || cc.node == kNone) {
    return std::nullopt;
  }
  const bool voter = is_voter(cc.node), learner = is_learner(cc.node);
  switch (cc.kind) {
    case ConfChange::Kind::kAddVoter:
      if (voter) return std::nullopt;
      break;
    case ConfChange::Kind::kAddLearner:
      if (voter || learner) return std::nullopt;  // no demotion of a voter
      break;
    case ConfChange::Kind::kRemove:
      if (!voter && !learner) return std::nullopt;
      if (voter && conf_.voters.size() == 1) return std::nullopt;
      break;
  }
  const std::uint64_t index = log_.last_index() + 1;
  log_.append({Entry{term_, index, cc.encode(), EntryType::kConfChange}});
  pending_conf_index_ = index;
  bcast_append(false);
  return index;
}

ConfState Node::apply_conf_change(std::uint64_t index, const ConfChange& cc) {
  auto erase = [](std::vector<NodeId>& v, NodeId id) {
    v.erase(std::remove(v.begin(), v.end(), id), v.end());
  };
  const NodeId id = cc.node;
  switch (cc.kind) {
    case ConfChange::Kind::kAddVoter:
      erase(conf_.learners, id);  // a promotion keeps the learner's progress
      if (!is_voter(id)) conf_.voters.push_back(id);
      break;
    case ConfChange::Kind::kAddLearner:
      if (!is_voter(id) && !is_learner(id)) conf_.learners.push_back(id);
      break;
    case ConfChange::Kind::kRemove:
      erase(conf_.voters, id);
      erase(conf_.learners, id);
      break;
  }
  std::sort(conf_.voters.begin(), conf_.voters.end());
  std::sort(conf_.learners.begin(), conf_.learners.end());
  conf_history_.push_back({index, conf_});
  const bool member = is_voter(id) || is_learner(id);
  if (member && !prs_.contains(id)) add_progress(id);
  if (!member) {
    prs_.erase(id);
    read_acked_.erase(id);
    ack_tick_.erase(id);
    if (lead_transferee_ == id) lead_transferee_ = kNone;
  }
  if (role_ == Role::kLeader) {
    if (id == cfg_.id && !member) {
      become_follower(term_, kNone);  // removed ourselves: someone else must lead
      return conf_;
    }
    // The quorum may have shrunk, and a new member needs the log.
    if (maybe_commit()) bcast_append(true);
    if (member && id != cfg_.id) send_append(id, true);
    check_pending_reads();
  }
  return conf_;
}

void Node::handle_heartbeat(const Message& m) {
  log_.commit_to(m.commit);
  Message r;
  r.type = MessageType::kHeartbeatResp;
  r.to = m.from;
  r.term = term_;
  r.context = m.context;
  r.index = m.index;  // echo the leader's send tick (leases)
  send(std::move(r));
}

bool Node::send_append(NodeId to, bool send_if_empty) {
  if (to == cfg_.id) return false;
  Progress& pr = prs_.at(to);
  if (pr.is_paused()) return false;
  Message m;
  m.type = MessageType::kAppend;
  m.to = to;
  m.term = term_;
  m.index = pr.next() - 1;
  if (m.index < log_.snapshot_index()) {
    // The entries it needs are compacted away: send the snapshot instead.
    send_snapshot(to);
    return true;
  }
  auto prev_term = log_.term(m.index);
  if (!prev_term) {  // next never passes our last index + 1; be safe anyway
    pr.become_probe();
    m.index = pr.next() - 1;
    prev_term = log_.term(m.index);
    if (!prev_term) {
      send_snapshot(to);
      return true;
    }
  }
  m.log_term = prev_term.value_or(0);
  m.entries = log_.slice(pr.next(), log_.last_index() + 1, cfg_.max_entries_per_msg,
                         cfg_.max_bytes_per_msg);
  if (m.entries.empty() && !send_if_empty) return false;
  m.commit = log_.committed();
  const bool any = !m.entries.empty();
  pr.sent_entries(any ? m.entries.back().index : 0, payload_bytes(m.entries), any);
  send(std::move(m));
  return true;
}

void Node::bcast_append(bool send_if_empty) {
  std::vector<NodeId> peers;
  for (const auto& [id, pr] : prs_)
    peers.push_back(id);
  for (NodeId v : peers)
    send_append(v, send_if_empty);
}

void Node::bcast_heartbeat() {
  for (const auto& [v, pr] : prs_) {
    if (v == cfg_.id) continue;
    Message m;
    m.type = MessageType::kHeartbeat;
    m.to = v;
    m.term = term_;
    m.commit = std::min(prs_.at(v).match(), log_.committed());
    m.context = next_read_id_ - 1;  // confirms every read registered before this heartbeat
    m.index = tick_count_;          // send tick, echoed back: the start of a lease
    send(std::move(m));
  }
}

bool Node::maybe_commit() {
  std::vector<std::uint64_t> matches;
  matches.reserve(conf_.voters.size());
  for (NodeId v : conf_.voters)
    matches.push_back(prs_.at(v).match());
  if (matches.empty()) return false;
  std::sort(matches.begin(), matches.end(), std::greater<>());
  const std::uint64_t mci = matches[quorum() - 1];
  if (mci <= log_.committed()) return false;
  // Figure 8: only an entry of the current term is committed by counting replicas.
  if (log_.term(mci) != term_ && !cfg_.unsafe_commit_old_term_by_count) return false;
  log_.commit_to(mci);
  return true;
}

void Node::check_pending_reads() {
  while (!pending_reads_.empty()) {
    const PendingRead& r = pending_reads_.front();
    std::size_t acks = 1;  // ourselves
    for (const auto& [peer, id] : read_acked_) {
      if (peer != cfg_.id && id >= r.id && is_voter(peer)) ++acks;
    }
    if (acks < quorum()) return;
    if (r.from == cfg_.id) {
      read_states_.push_back({r.index, r.context});
    } else {
      Message m;
      m.type = MessageType::kReadIndexResp;
      m.to = r.from;
      m.term = term_;
      m.index = r.index;
      m.context = r.context;
      send(std::move(m));
    }
    pending_reads_.erase(pending_reads_.begin());
  }
}

std::optional<std::uint64_t> Node::propose(std::string data) {
  if (role_ != Role::kLeader || lead_transferee_ != kNone) return std::nullopt;
  const std::uint64_t index = log_.last_index() + 1;
  log_.append({Entry{term_, index, std::move(data)}});
  bcast_append(false);
  return index;
}

std::optional<std::uint64_t> Node::propose_batch(std::vector<std::string> data) {
  if (role_ != Role::kLeader || lead_transferee_ != kNone || data.empty()) return std::nullopt;
  const std::uint64_t first = log_.last_index() + 1;
  std::vector<Entry> ents;
  ents.reserve(data.size());
  for (auto& d : data)
    ents.push_back(Entry{term_, first + ents.size(), std::move(d)});
  log_.append(std::move(ents));
  bcast_append(false);
  return first;
}

bool Node::transfer_leadership(NodeId to) {
  if (role_ != Role::kLeader || to == cfg_.id || !is_voter(to)) return false;
  lead_transferee_ = to;
  transfer_in_term_ = true;  // the transferee may win before our lease ends: no more leases
  election_elapsed_ = 0;     // the transfer gets one election timeout
  if (prs_.at(to).match() == log_.last_index()) {
    send_timeout_now(to);
  } else {
    send_append(to, true);
  }
  return true;
}

void Node::send_timeout_now(NodeId to) {
  Message m;
  m.type = MessageType::kTimeoutNow;
  m.to = to;
  m.term = term_;
  send(std::move(m));
}

bool Node::lease_valid() const {
  if (!cfg_.lease_reads || !cfg_.check_quorum || role_ != Role::kLeader || transfer_in_term_) {
    return false;
  }
  // The quorum-th newest acknowledged send tick (our own "ack" is now).
  std::vector<std::uint64_t> ticks{tick_count_};
  for (NodeId v : conf_.voters) {
    if (v == cfg_.id) continue;
    auto it = ack_tick_.find(v);
    if (it != ack_tick_.end()) ticks.push_back(it->second);
  }
  if (ticks.size() < quorum()) return false;
  std::sort(ticks.begin(), ticks.end(), std::greater<>());
  const std::uint64_t start = ticks[quorum() - 1];
  return tick_count_ < start + static_cast<std::uint64_t>(cfg_.lease_ticks);
}

bool Node::read_index(std::uint64_t context) {
  if (role_ == Role::kLeader) {
    if (!committed_in_current_term()) return false;
    if (lease_valid()) {
      read_states_.push_back({log_.committed(), context});  // no heartbeat round
      ++lease_reads_served_;
      return true;
    }
    pending_reads_.push_back({next_read_id_++, log_.committed(), cfg_.id, context});
    if (conf_.voters.size() == 1) {
      check_pending_reads();
    } else {
      bcast_heartbeat();
    }
    return true;
  }
  if (role_ != Role::kFollower || lead_ == kNone) return false;
  Message m;
  m.type = MessageType::kReadIndex;
  m.to = lead_;
  m.term = term_;
  m.context = context;
  send(std::move(m));
  return true;
}

bool Node::has_ready() const {
  return pending_snapshot_.has_value() || !msgs_.empty() || !read_states_.empty() ||
         log_.has_unstable() || force_hs_ || hard_state() != persisted_hs_ ||
         log_.has_next_committed();
}

Ready Node::ready() {
  Ready rd;
  rd.snapshot = pending_snapshot_;
  const HardState hs = hard_state();
  if (force_hs_ || hs != persisted_hs_) rd.hard_state = hs;
  rd.entries = log_.unstable_entries();
  rd.messages = std::move(msgs_);
  msgs_.clear();
  rd.committed_entries = log_.next_committed();
  rd.read_states = std::move(read_states_);
  read_states_.clear();
  return rd;
}

void Node::advance(const Ready& rd) {
  if (rd.snapshot && pending_snapshot_ && pending_snapshot_->index == rd.snapshot->index) {
    pending_snapshot_.reset();
  }
  if (rd.hard_state) {
    persisted_hs_ = *rd.hard_state;
    force_hs_ = false;
  }
  if (!rd.entries.empty()) log_.stable_to(rd.entries.back().index);
  if (!rd.committed_entries.empty()) log_.applied_to(rd.committed_entries.back().index);
  if (role_ == Role::kLeader && !rd.entries.empty()) {
    prs_.at(cfg_.id).maybe_update(log_.stable());
    if (maybe_commit()) bcast_append(true);
  }
}

}  // namespace ringwire::raft
