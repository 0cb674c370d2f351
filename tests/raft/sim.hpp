// Deterministic cluster simulator for the Raft core. Everything derives from one seed: the
// network (delay, drop, duplicate, reorder, partitions), crashes that lose what was not yet
// durable, per-node clock skew, slow disks, and a client workload on a few keys. Invariants are
// checked after every step; the first violation ends the run with a message.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <sstream>
#include <string>
#include <vector>

#include "raft/linearizability.hpp"
#include "ringwire/raft/node.hpp"
#include "ringwire/raft/session.hpp"

namespace ringwire::raft::sim {

class Rng {
 public:
  explicit Rng(std::uint64_t seed) : s_(seed * 0x2545F4914F6CDD1DULL + 0x1234567ULL) {}
  std::uint64_t next() {
    s_ += 0x9E3779B97F4A7C15ULL;
    std::uint64_t z = s_;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  std::uint64_t below(std::uint64_t n) { return next() % n; }
  std::uint64_t range(std::uint64_t lo, std::uint64_t hi) { return lo + below(hi - lo + 1); }
  bool chance(std::uint64_t num, std::uint64_t den) { return below(den) < num; }

 private:
  std::uint64_t s_;
};

struct Options {
  std::uint64_t seed = 1;
  int nodes = 3;
  std::uint64_t fault_time = 3000;  // time units with faults (a tick is ~10 units)
  std::uint64_t heal_bound = 3000;  // after healing, a marker must be applied everywhere by then
  bool unsafe_double_vote = false;
  bool unsafe_commit_old_term_by_count = false;
  bool unsafe_local_reads = false;  // simulator mutation: reads skip ReadIndex
  bool unsafe_lying_disk = false;
  bool unsafe_no_dedup = false;  // simulator mutation: apply retried writes every time
  // simulator mutation: snapshots record the state one entry behind their index
  bool unsafe_stale_snapshot = false;
  int compact_every = -1;  // entries between snapshots; 0 = never; -1 = chosen by the seed
  int lease_reads = -1;    // leader-lease reads: 0 off, 1 on (if check_quorum), -1 by the seed
  bool unsafe_long_lease = false;  // mutation: a lease longer than the election timeout
  bool storm = false;  // force the harshest fault profile (leader crashes, 1 entry per append)
  bool trace = false;
};

struct Result {
  std::optional<std::string> failure;
  std::uint64_t steps = 0;
  std::uint64_t committed = 0;
  std::uint64_t ops = 0;
  std::uint64_t crashes = 0;
  std::uint64_t elections = 0;            // distinct leader terms
  std::uint64_t old_term_commits = 0;     // a leader committed an older-term entry by counting
  std::uint64_t writes_ok = 0;            // client writes seen applied
  std::uint64_t duplicates = 0;           // retried copies the session table skipped
  std::uint64_t reads_ok = 0;             // client reads answered through ReadIndex
  std::uint64_t snapshots_taken = 0;      // compactions by hosts
  std::uint64_t snapshots_installed = 0;  // snapshots a follower received and restored
  std::uint64_t lease_reads = 0;          // reads a leader answered from its lease
};

class Simulator {
 public:
  explicit Simulator(const Options& o) : opt_(o), rng_(o.seed) {
    drop_ = rng_.range(0, 8);  // percent
    dup_ = rng_.range(0, 5);
    max_delay_ = rng_.range(5, 40);
    disk_ready_pct_ = rng_.range(50, 100);
    // Fault intensity varies per seed: calm, busy, or a storm of leader crashes.
    const std::uint64_t crash[] = {700, 150, 40};
    const std::uint64_t level = o.storm ? 2 : rng_.below(3);
    storm_ = level == 2;
    crash_every_ = crash[level];
    max_down_ = level == 2 ? 80 : 600;
    const std::uint64_t part[] = {500, 200, 100};
    partition_every_ = part[rng_.below(3)];
    torn_every_ = rng_.chance(1, 2) ? 2000 : 200;
    base_.election_tick = 10;
    base_.heartbeat_tick = static_cast<int>(rng_.range(1, 3));
    base_.pre_vote = rng_.chance(3, 4);
    base_.check_quorum = rng_.chance(3, 4);
    const std::size_t ents[] = {1, 2, 4, 64};
    base_.max_entries_per_msg = o.storm ? 1 : ents[rng_.below(4)];
    const std::size_t infl[] = {1, 2, 4, 256};
    base_.max_inflight_msgs = infl[rng_.below(4)];
    base_.max_bytes_per_msg = rng_.chance(1, 4) ? 40 : (1u << 20);
    base_.max_inflight_bytes = rng_.chance(1, 4) ? 100 : (8u << 20);
    base_.unsafe_double_vote = o.unsafe_double_vote;
    base_.unsafe_commit_old_term_by_count = o.unsafe_commit_old_term_by_count;
    for (int i = 1; i <= o.nodes; ++i)
      base_.voters.push_back(static_cast<NodeId>(i));
    // Compaction from its own stream, so adding it did not reshuffle the other choices.
    Rng snap_rng(o.seed ^ 0x5A5A5A5A5A5AULL);
    const int every[] = {0, 3, 10, 50};
    compact_every_ = o.compact_every >= 0 ? static_cast<std::uint64_t>(o.compact_every)
                                          : static_cast<std::uint64_t>(every[snap_rng.below(4)]);
    // Leases need check_quorum. Ticks here run 7 to 13 time units apart, so one node's clock
    // is at most 13/7 = 1.86x another's: within the 10/4 = 2.5x a 4-tick lease assumes.
    const bool lease = o.lease_reads >= 0 ? o.lease_reads == 1 : snap_rng.chance(1, 2);
    base_.lease_reads = lease && base_.check_quorum;
    base_.lease_ticks = o.unsafe_long_lease ? 4 * base_.election_tick : 4;
    nodes_.resize(static_cast<std::size_t>(o.nodes) + 1);
    for (int i = 1; i <= o.nodes; ++i) {
      SimNode& n = nodes_[static_cast<std::size_t>(i)];
      n.tick_period = rng_.range(7, 13);  // clock skew between nodes
      n.next_tick = rng_.range(0, n.tick_period);
      n.group = 0;
      n.node = std::make_unique<Node>(config_for(static_cast<NodeId>(i)));
      process_ready(n, static_cast<std::size_t>(i), false);  // the first Ready initializes the disk
    }
    clients_.resize(3);
  }

  Result run() {
    Result res;
    const std::uint64_t end_faults = opt_.fault_time;
    while (!failure_ && now_ < end_faults) {
      step(true);
    }
    if (!failure_) heal_and_check_liveness();
    if (!failure_) check_durable_quorum();
    if (!failure_) check_linearizability();
    res.failure = failure_;
    res.steps = now_;
    res.committed = committed_.size();
    res.ops = history_.size();
    for (const auto& h : history_) {
      if (h.op.end == kNever || h.dropped) continue;
      (h.op.is_write ? res.writes_ok : res.reads_ok) += 1;
    }
    res.crashes = crashes_;
    res.old_term_commits = old_term_commits_;
    res.duplicates = duplicates_;
    res.elections = leaders_.size();
    res.snapshots_taken = snapshots_taken_;
    res.snapshots_installed = snapshots_installed_;
    res.lease_reads = lease_reads_;
    return res;
  }

 private:
  struct SimNode {
    std::unique_ptr<Node> node;  // null while crashed
    DurableState disk;
    std::uint64_t tick_period = 10;
    std::uint64_t next_tick = 0;
    std::uint64_t down_until = 0;
    int group = 0;
    std::map<std::int64_t, std::int64_t> sm;  // key -> value
    SessionTable sessions;                    // client dedup, part of the state machine
    std::uint64_t sm_applied = 0;
    std::uint64_t commit_checked = 0;
    std::uint64_t leader_checked_term = 0;
    std::uint64_t kill_at = 0;  // storm: a new leader dies soon after its election
    struct PendingRead {
      ReadState rs;
      bool ready = false;
    };
    std::map<std::uint64_t, PendingRead> reads;  // context -> read
  };
  struct InFlight {
    std::uint64_t at;
    std::uint64_t seq;
    Message m;
    bool operator>(const InFlight& o) const { return at != o.at ? at > o.at : seq > o.seq; }
  };
  struct Client {
    bool busy = false;
    std::size_t op = 0;  // index into history_
    std::uint64_t deadline = 0;
    std::uint64_t seq = 0;
    NodeId hint = kNone;
    NodeId read_node = kNone;
    std::uint64_t read_ctx = 0;
    std::string write;  // the pending write's command, resent on timeout with the same seq
    int retries = 0;
  };
  struct Op {
    std::int64_t key;
    RegisterOp op;
    bool dropped = false;  // a read that never returned: no effect, not part of the history
  };

  Config config_for(NodeId id) const {
    Config c = base_;
    c.id = id;
    c.seed = opt_.seed * 1000003ULL + id * 7919ULL + restarts_;
    return c;
  }

  void fail(const std::string& what) {
    if (failure_) return;
    std::ostringstream os;
    os << "t=" << now_ << ": " << what;
    failure_ = os.str();
  }

  void trace(const std::string& s) {
    if (opt_.trace)
      std::fprintf(stderr, "[t=%llu] %s\n", static_cast<unsigned long long>(now_), s.c_str());
  }

  bool reachable(NodeId a, NodeId b) const { return nodes_[a].group == nodes_[b].group; }

  // ---- one time unit ---------------------------------------------------------------------
  void step(bool faults) {
    ++now_;
    if (faults) inject_faults();
    deliver();
    for (std::size_t i = 1; i < nodes_.size(); ++i) {
      SimNode& n = nodes_[i];
      if (!n.node) continue;
      while (now_ >= n.next_tick) {
        n.node->tick();
        n.next_tick += n.tick_period;
      }
    }
    if (faults) drive_clients();
    for (std::size_t i = 1; i < nodes_.size(); ++i) {
      SimNode& n = nodes_[i];
      if (!n.node) continue;
      // A slow disk: the Ready waits (and is lost if we crash first).
      if (!faults || rng_.below(100) < disk_ready_pct_) process_ready(n, i, faults);
    }
    serve_reads();
    check_leaders();
    check_potential_leaders();
    if (now_ % 256 == 0) check_durable_quorum();
  }

  void inject_faults() {
    if (rng_.chance(1, crash_every_)) {  // crash a node, often the leader
      NodeId v = 1 + rng_.below(nodes_.size() - 1);
      if (rng_.chance(1, 2)) {
        for (std::size_t i = 1; i < nodes_.size(); ++i) {
          if (nodes_[i].node && nodes_[i].node->role() == Role::kLeader) v = i;
        }
      }
      crash(v);
    }
    for (std::size_t i = 1; i < nodes_.size(); ++i) {
      if (nodes_[i].kill_at != 0 && now_ >= nodes_[i].kill_at) crash(i);
    }
    for (std::size_t i = 1; i < nodes_.size(); ++i) {
      if (!nodes_[i].node && now_ >= nodes_[i].down_until) restart(i);
    }
    if (rng_.chance(1, partition_every_)) {  // partition
      const int kind = static_cast<int>(rng_.below(3));
      for (std::size_t i = 1; i < nodes_.size(); ++i)
        nodes_[i].group = 0;
      if (kind == 0) {  // isolate one node
        nodes_[1 + rng_.below(nodes_.size() - 1)].group = 1;
      } else if (kind == 1) {  // isolate the leader, if any
        for (std::size_t i = 1; i < nodes_.size(); ++i) {
          if (nodes_[i].node && nodes_[i].node->role() == Role::kLeader) nodes_[i].group = 1;
        }
      } else {  // random split
        for (std::size_t i = 1; i < nodes_.size(); ++i)
          nodes_[i].group = static_cast<int>(rng_.below(2));
      }
      trace("partition");
    }
    if (rng_.chance(1, 300)) {  // ask the leader to hand over to a random node
      for (std::size_t i = 1; i < nodes_.size(); ++i) {
        if (nodes_[i].node && nodes_[i].node->role() == Role::kLeader) {
          const NodeId to = 1 + rng_.below(nodes_.size() - 1);
          if (nodes_[i].node->transfer_leadership(to)) {
            trace("transfer " + std::to_string(i) + " -> " + std::to_string(to));
          }
          break;
        }
      }
    }
    if (rng_.chance(1, 400)) {
      for (std::size_t i = 1; i < nodes_.size(); ++i)
        nodes_[i].group = 0;
      trace("heal");
    }
  }

  void crash(std::size_t v) {
    SimNode& n = nodes_[v];
    n.kill_at = 0;
    if (!n.node) return;
    trace("crash " + std::to_string(v));
    n.node.reset();  // everything not yet persisted is gone
    n.sm.clear();
    n.sessions.clear();
    n.sm_applied = 0;
    n.commit_checked = 0;
    n.reads.clear();
    n.down_until = now_ + rng_.range(5, max_down_);
    ++crashes_;
  }

  void restart(std::size_t i) {
    SimNode& n = nodes_[i];
    ++restarts_;
    auto r = Node::restart(config_for(static_cast<NodeId>(i)), n.disk);
    if (!r.node) {
      fail("restart of node " + std::to_string(i) + " refused: " + r.error);
      return;
    }
    n.node = std::move(r.node);
    if (n.disk.snapshot) {
      // The host restores its state machine from the durable snapshot before anything else.
      restore_state(n, *n.disk.snapshot);
      n.commit_checked = n.disk.snapshot->index;
    }
    n.tick_period = rng_.range(7, 13);
    n.next_tick = now_ + rng_.range(0, n.tick_period);
    trace("restart " + std::to_string(i));
  }

  void deliver() {
    while (!net_.empty() && net_.top().at <= now_) {
      Message m = net_.top().m;
      net_.pop();
      SimNode& to = nodes_[m.to];
      if (!to.node || !reachable(m.from, m.to)) continue;
      to.node->step(m);
    }
  }

  void send(const Message& m) {
    if (opt_.trace && now_ + 300 > opt_.fault_time + opt_.heal_bound) {
      trace(std::string(to_string(m.type)) + " " + std::to_string(m.from) + "->" +
            std::to_string(m.to) + " term=" + std::to_string(m.term) + (m.reject ? " reject" : ""));
    }
    if (rng_.below(100) < drop_) return;
    const int copies = rng_.below(100) < dup_ ? 2 : 1;
    for (int c = 0; c < copies; ++c) {
      std::uint64_t d = rng_.range(1, 10);
      if (rng_.chance(1, 5)) d = rng_.range(1, max_delay_);
      net_.push({now_ + d, net_seq_++, m});
    }
  }

  // ---- the host side of the Ready contract -----------------------------------------------
  void process_ready(SimNode& n, std::size_t id, bool faults) {
    Node& node = *n.node;
    while (!failure_ && node.has_ready()) {
      Ready rd = node.ready();
      check_new_entries(node, rd.entries);
      if (rd.snapshot) {
        // 1a. an installed snapshot replaces the durable snapshot and log
        check_snapshot(node, *rd.snapshot, "installed");
        n.disk.snapshot = rd.snapshot;
        n.disk.entries.clear();
        ++snapshots_installed_;
        trace("node " + std::to_string(id) + " installs snapshot at " +
              std::to_string(rd.snapshot->index));
      }
      // 1. persist entries, then hard state (a lying disk, a simulator mutation, drops entries
      // it was asked to write on one node, so acknowledgements promise more than is durable)
      const bool lie = opt_.unsafe_lying_disk && node.id() == 1;
      if (!rd.entries.empty() && !lie) {
        n.disk.entries.resize(rd.entries.front().index - 1 - disk_base(n.disk));
        for (const auto& e : rd.entries)
          n.disk.entries.push_back(e);
      }
      if (faults && rng_.chance(1, torn_every_)) {
        // A torn write: the entries reached the disk, the hard state and messages did not.
        trace("torn write on " + std::to_string(id));
        crash(id);
        return;
      }
      if (rd.hard_state) {
        if (n.disk.hard_state && rd.hard_state->term < n.disk.hard_state->term) {
          fail("node " + std::to_string(node.id()) + " persisted a lower term");
        }
        if (n.disk.hard_state && rd.hard_state->term == n.disk.hard_state->term &&
            n.disk.hard_state->vote != kNone && rd.hard_state->vote != n.disk.hard_state->vote) {
          // Not a failure by itself; election safety catches the consequence.
          trace("node " + std::to_string(node.id()) + " changed its vote within a term");
        }
        const std::uint64_t old_commit = n.disk.hard_state ? n.disk.hard_state->commit : 0;
        if (node.role() == Role::kLeader && rd.hard_state->commit > old_commit &&
            node.log().term(rd.hard_state->commit) != node.term()) {
          ++old_term_commits_;  // only possible with the Figure 8 mutation
        }
        n.disk.hard_state = rd.hard_state;
        check_commit(n, node, rd.hard_state->commit);
        if (storm_ && faults && node.role() == Role::kLeader &&
            rd.hard_state->commit > old_commit && rng_.chance(1, 3)) {
          // Storm: the leader dies right after making a commit durable, before telling anyone.
          trace("crash leader " + std::to_string(id) + " right after commit");
          crash(id);
          return;
        }
      }
      // 2. then send
      for (const auto& m : rd.messages)
        send(m);
      // 3. restore, then apply
      if (rd.snapshot) {
        restore_state(n, *rd.snapshot);
        n.commit_checked = std::max(n.commit_checked, rd.snapshot->index);
      }
      for (const auto& e : rd.committed_entries)
        apply(n, node, e);
      for (const auto& rs : rd.read_states) {
        auto it = n.reads.find(rs.context);
        if (it != n.reads.end()) {
          it->second.rs = rs;
          it->second.ready = true;
        }
      }
      node.advance(rd);
      maybe_compact(n, node);
    }
  }

  // ---- snapshots -------------------------------------------------------------------------
  static std::uint64_t disk_base(const DurableState& d) {
    return d.snapshot ? d.snapshot->index : 0;
  }

  // The state machine as bytes: "key=value,...|" then the session table.
  static std::string encode_state(const std::map<std::int64_t, std::int64_t>& sm,
                                  const SessionTable& sessions) {
    std::string out;
    for (const auto& [k, v] : sm)
      out += std::to_string(k) + '=' + std::to_string(v) + ',';
    return out + '|' + sessions.encode();
  }

  void restore_state(SimNode& n, const Snapshot& snap) {
    n.sm.clear();
    const std::size_t bar = snap.data.find('|');
    std::istringstream is(snap.data.substr(0, bar));
    std::string kv;
    while (std::getline(is, kv, ',')) {
      const std::size_t eq = kv.find('=');
      n.sm[std::stoll(kv.substr(0, eq))] = std::stoll(kv.substr(eq + 1));
    }
    auto sessions = SessionTable::decode(std::string_view(snap.data).substr(bar + 1));
    if (!sessions) {
      fail("snapshot at " + std::to_string(snap.index) + " has an unreadable session table");
      return;
    }
    n.sessions = std::move(*sessions);
    n.sm_applied = snap.index;
  }

  // What every correct replica's state machine holds after applying entries 1..index.
  std::string reference_state(std::uint64_t index) const {
    std::map<std::int64_t, std::int64_t> sm;
    SessionTable sessions;
    for (std::uint64_t i = 0; i < index && i < applied_.size(); ++i)
      apply_command(sm, sessions, applied_[i]);
    return encode_state(sm, sessions);
  }

  // Snapshot safety: a snapshot holds exactly the state of the committed prefix it covers.
  void check_snapshot(const Node& node, const Snapshot& snap, const char* how) {
    if (snap.index > applied_.size() || applied_[snap.index - 1].term != snap.term ||
        reference_state(snap.index) != snap.data) {
      fail("snapshot safety: node " + std::to_string(node.id()) + " " + how +
           " a snapshot at index " + std::to_string(snap.index) +
           " that does not match the applied prefix");
    }
  }

  void maybe_compact(SimNode& n, Node& node) {
    if (failure_ || compact_every_ == 0 || !n.node) return;
    const std::uint64_t base = disk_base(n.disk);
    if (n.sm_applied < base + compact_every_ || n.sm_applied > node.log().applied()) return;
    const std::uint64_t at = n.sm_applied;
    std::string data = encode_state(n.sm, n.sessions);
    if (opt_.unsafe_stale_snapshot && at > 1) data = reference_state(at - 1);  // MUTATION
    if (!node.compact(at, data)) {
      fail("compact(" + std::to_string(at) + ") refused on node " + std::to_string(node.id()));
      return;
    }
    // The node's snapshot carries the membership too; persist it, then drop the durable prefix.
    const Snapshot& snap = node.snapshot();
    check_snapshot(node, snap, "took");
    n.disk.snapshot = snap;
    const std::uint64_t drop = std::min<std::uint64_t>(at - base, n.disk.entries.size());
    n.disk.entries.erase(n.disk.entries.begin(),
                         n.disk.entries.begin() + static_cast<std::ptrdiff_t>(drop));
    ++snapshots_taken_;
  }

  void apply(SimNode& n, const Node& node, const Entry& e) {
    if (e.index != n.sm_applied + 1) {
      fail("node " + std::to_string(node.id()) + " applied index " + std::to_string(e.index) +
           " after " + std::to_string(n.sm_applied));
      return;
    }
    n.sm_applied = e.index;
    // State machine safety: every node applies the same entry at an index.
    if (e.index <= applied_.size()) {
      if (applied_[e.index - 1] != e) {
        fail("state machine safety: node " + std::to_string(node.id()) +
             " applied a different entry at index " + std::to_string(e.index));
      }
    } else {
      applied_.push_back(e);
    }
    if (e.data.empty() || e.data[0] != 'W') return;
    std::istringstream is(e.data.substr(1));
    std::size_t client = 0;
    std::uint64_t seq = 0;
    std::int64_t key = 0;
    std::int64_t value = 0;
    std::size_t op = 0;
    is >> client >> seq >> key >> value >> op;
    if (!n.sessions.is_new(client, seq)) {
      ++duplicates_;
      if (!opt_.unsafe_no_dedup) return;  // a retry's copy: applied once already
    }
    apply_command(n.sm, n.sessions, e, opt_.unsafe_no_dedup);
    Op& h = history_[op];
    if (h.op.end == kNever) h.op.end = now_;  // first time anyone applied it: it took effect
    Client& c = clients_[client];
    if (c.busy && c.op == op) c.busy = false;
  }

  // The effect of one entry on a state machine; false for a no-op or a duplicate.
  static bool apply_command(std::map<std::int64_t, std::int64_t>& sm, SessionTable& sessions,
                            const Entry& e, bool no_dedup = false) {
    if (e.data.empty() || e.data[0] != 'W') return false;
    std::istringstream is(e.data.substr(1));
    std::size_t client = 0;
    std::uint64_t seq = 0;
    std::int64_t key = 0;
    std::int64_t value = 0;
    is >> client >> seq >> key >> value;
    if (!sessions.is_new(client, seq) && !no_dedup) return false;
    sm[key] = value;
    sessions.record(client, seq, {});
    return true;
  }

  // ---- invariants ----------------------------------------------------------------------
  void check_new_entries(const Node& node, const std::vector<Entry>& ents) {
    // Log matching: (index, term) identifies the entry and the term of its predecessor.
    for (const auto& e : ents) {
      const std::uint64_t prev = node.log().term(e.index - 1).value_or(0);
      auto [it, fresh] = entries_.try_emplace({e.index, e.term}, e.data, prev);
      if (!fresh && (it->second.first != e.data || it->second.second != prev)) {
        fail("log matching: node " + std::to_string(node.id()) +
             " has a different entry at (index " + std::to_string(e.index) + ", term " +
             std::to_string(e.term) + ")");
        return;
      }
    }
  }

  void check_commit(SimNode& n, const Node& node, std::uint64_t commit) {
    // Committed entries are never lost or changed: every node's committed prefix agrees.
    // (Entries compacted into a snapshot were checked before, or are checked as a snapshot.)
    const std::uint64_t from = std::max(n.commit_checked, node.log().snapshot_index()) + 1;
    for (std::uint64_t i = from; i <= commit; ++i) {
      const Entry& e = node.log().at(i);
      if (i <= committed_.size()) {
        if (committed_[i - 1].term != e.term || committed_[i - 1].data != e.data) {
          fail("committed entry changed: node " + std::to_string(node.id()) + " committed (index " +
               std::to_string(i) + ", term " + std::to_string(e.term) + ") but (term " +
               std::to_string(committed_[i - 1].term) + ") was committed before");
          return;
        }
      } else {
        committed_.push_back(e);
        committed_seen_term_.push_back(node.term());
      }
    }
    n.commit_checked = std::max(n.commit_checked, commit);
  }

  void check_leaders() {
    for (std::size_t i = 1; i < nodes_.size(); ++i) {
      SimNode& n = nodes_[i];
      if (!n.node || n.node->role() != Role::kLeader) continue;
      const std::uint64_t t = n.node->term();
      auto [it, fresh] = leaders_.try_emplace(t, static_cast<NodeId>(i));
      if (!fresh && it->second != i) {
        fail("election safety: nodes " + std::to_string(it->second) + " and " + std::to_string(i) +
             " are both leaders of term " + std::to_string(t));
        return;
      }
      if (n.leader_checked_term == t) continue;
      n.leader_checked_term = t;
      // Leader completeness: a new leader holds every entry committed in earlier terms.
      for (std::size_t k = 0; k < committed_.size(); ++k) {
        const Entry& e = committed_[k];
        // Only entries certainly committed in an earlier term (seen committed at a term < t).
        if (committed_seen_term_[k] >= t) continue;
        if (e.index < n.node->log().snapshot_index()) continue;  // in its (checked) snapshot
        if (n.node->log().term(e.index) != e.term) {
          fail("leader completeness: leader " + std::to_string(i) + " of term " +
               std::to_string(t) + " lacks committed entry " + std::to_string(e.index));
          return;
        }
      }
      trace("leader " + std::to_string(i) + " term " + std::to_string(t));
      if (storm_ && !healing_ && rng_.chance(3, 4)) n.kill_at = now_ + rng_.range(1, 30);
    }
  }

  // Potential leader completeness: any node whose log is at least as up to date as a majority
  // of logs (so it could collect votes, ignoring terms) holds every committed entry. This holds
  // in Raft at every instant (the leader completeness argument); it flags a Figure 8 hazard as
  // soon as it exists, not only if a later election happens to exploit it.
  void check_potential_leaders() {
    if (committed_.empty()) return;
    const Entry& last = committed_.back();
    struct Tail {
      std::uint64_t index, term;
      const std::vector<Entry>* disk;
      const Log* mem;
      std::uint64_t disk_base, disk_base_term;  // the crashed node's durable snapshot
    };
    std::vector<Tail> logs;
    for (std::size_t i = 1; i < nodes_.size(); ++i) {
      const SimNode& n = nodes_[i];
      if (n.node) {
        logs.push_back(
            {n.node->log().last_index(), n.node->log().last_term(), nullptr, &n.node->log(), 0, 0});
      } else {
        const auto& d = n.disk.entries;
        const std::uint64_t base = disk_base(n.disk);
        const std::uint64_t base_term = n.disk.snapshot ? n.disk.snapshot->term : 0;
        logs.push_back(
            {base + d.size(), d.empty() ? base_term : d.back().term, &d, nullptr, base, base_term});
      }
    }
    const std::size_t q = logs.size() / 2 + 1;
    for (std::size_t a = 0; a < logs.size(); ++a) {
      std::size_t beats = 0;
      for (const auto& b : logs) {
        if (logs[a].term > b.term || (logs[a].term == b.term && logs[a].index >= b.index)) ++beats;
      }
      if (beats < q) continue;
      std::uint64_t t = 0;
      const Tail& l = logs[a];
      if (l.mem != nullptr) {
        // Below the snapshot index the entry is inside a (checked) snapshot.
        t = last.index < l.mem->snapshot_index() ? last.term : l.mem->term(last.index).value_or(0);
      } else if (last.index < l.disk_base) {
        t = last.term;
      } else if (last.index == l.disk_base) {
        t = l.disk_base_term;
      } else if (last.index - l.disk_base <= l.disk->size()) {
        t = (*l.disk)[last.index - l.disk_base - 1].term;
      }
      if (t != last.term) {
        fail("potential leader completeness: node " + std::to_string(a + 1) +
             " could win an election but lacks committed entry " + std::to_string(last.index));
        return;
      }
    }
  }

  void check_durable_quorum() {
    // Every committed entry is on the disks of a majority (crashes must not lose it).
    const std::size_t q = (nodes_.size() - 1) / 2 + 1;
    for (const auto& e : committed_) {
      std::size_t have = 0;
      for (std::size_t i = 1; i < nodes_.size(); ++i) {
        const auto& d = nodes_[i].disk.entries;
        const std::uint64_t base = disk_base(nodes_[i].disk);
        if (e.index <= base) {
          ++have;  // in the durable snapshot, whose content was checked when it was made
        } else if (e.index - base <= d.size() && d[e.index - base - 1].term == e.term) {
          ++have;
        }
      }
      if (have < q) {
        fail("committed entry " + std::to_string(e.index) + " is durable on only " +
             std::to_string(have) + " nodes");
        return;
      }
    }
  }

  void check_linearizability() {
    std::map<std::int64_t, std::vector<RegisterOp>> per_key;
    for (const auto& h : history_) {
      const bool unanswered_read = !h.op.is_write && h.op.end == kNever;
      if (!h.dropped && !unanswered_read) per_key[h.key].push_back(h.op);
    }
    for (auto& [key, ops] : per_key) {
      if (!RegisterChecker(ops).check()) {
        fail("linearizability: history of key " + std::to_string(key) + " (" +
             std::to_string(ops.size()) + " ops) has no linearization");
        return;
      }
    }
  }

  // ---- clients ---------------------------------------------------------------------------
  NodeId pick_node(Client& c) {
    if (c.hint != kNone && nodes_[c.hint].node && rng_.chance(7, 8)) return c.hint;
    return 1 + rng_.below(nodes_.size() - 1);
  }

  void drive_clients() {
    for (std::size_t ci = 0; ci < clients_.size(); ++ci) {
      Client& c = clients_[ci];
      if (c.busy) {
        if (now_ >= c.deadline && history_[c.op].op.is_write && c.retries < 3) {
          // Retry the same request (same client and seq) wherever a leader may be.
          SimNode& n = nodes_[pick_node(c)];
          if (n.node && n.node->propose(c.write)) {
            ++c.retries;
            c.deadline = now_ + rng_.range(40, 400);
          } else if (n.node) {
            c.hint = n.node->leader();
          }
          continue;
        }
        if (now_ >= c.deadline) {
          Op& h = history_[c.op];
          if (!h.op.is_write && h.op.end == kNever) h.dropped = true;
          if (!h.op.is_write && c.read_node != kNone) nodes_[c.read_node].reads.erase(c.read_ctx);
          c.busy = false;
        }
        continue;
      }
      if (!rng_.chance(1, 8)) continue;
      const std::int64_t key = static_cast<std::int64_t>(rng_.below(3));
      if (ops_per_key_[key] >= 40) continue;  // keep histories small enough to check
      const NodeId v = pick_node(c);
      SimNode& n = nodes_[v];
      if (!n.node) continue;
      const bool write = rng_.chance(1, 2);
      const std::size_t op = history_.size();
      if (write) {
        const std::int64_t value = static_cast<std::int64_t>(ci * 1000000 + ++c.seq);
        std::ostringstream data;
        data << "W " << ci << ' ' << c.seq << ' ' << key << ' ' << value << ' ' << op;
        c.write = data.str();
        c.retries = 0;
        if (!n.node->propose(c.write)) {
          c.hint = n.node->leader();
          continue;
        }
        history_.push_back({key, RegisterOp{now_, kNever, true, value}});
      } else {
        if (opt_.unsafe_local_reads) {  // MUTATION: read the local state machine directly
          auto it = n.sm.find(key);
          history_.push_back(
              {key, RegisterOp{now_, now_, false, it == n.sm.end() ? 0 : it->second}});
          ++ops_per_key_[key];
          continue;
        }
        const std::uint64_t ctx = ++read_ctx_;
        const std::uint64_t leases_before = n.node->lease_reads_served();
        if (!n.node->read_index(ctx)) {
          c.hint = n.node->leader();
          continue;
        }
        lease_reads_ += n.node->lease_reads_served() - leases_before;
        n.reads[ctx] = {};
        n.reads[ctx].rs.context = ctx;
        c.read_node = v;
        c.read_ctx = ctx;
        history_.push_back({key, RegisterOp{now_, kNever, false, 0}});
        read_owner_[ctx] = op;
      }
      ++ops_per_key_[key];
      c.hint = v;
      c.busy = true;
      c.op = op;
      // Writes time out early sometimes, so retries race their originals (dedup matters).
      c.deadline = now_ + (write ? rng_.range(40, 400) : 400);
    }
  }

  void serve_reads() {
    for (std::size_t i = 1; i < nodes_.size(); ++i) {
      SimNode& n = nodes_[i];
      for (auto it = n.reads.begin(); it != n.reads.end();) {
        if (!it->second.ready || n.sm_applied < it->second.rs.index) {
          ++it;
          continue;
        }
        const std::size_t op = read_owner_[it->first];
        Op& h = history_[op];
        auto v = n.sm.find(h.key);
        h.op.value = v == n.sm.end() ? 0 : v->second;
        h.op.end = now_;
        for (auto& c : clients_) {
          if (c.busy && c.op == op) c.busy = false;
        }
        it = n.reads.erase(it);
      }
    }
  }

  // ---- liveness --------------------------------------------------------------------------
  void heal_and_check_liveness() {
    for (std::size_t i = 1; i < nodes_.size(); ++i) {
      nodes_[i].group = 0;
      if (!nodes_[i].node) restart(i);
    }
    drop_ = 0;
    dup_ = 0;
    healing_ = true;
    for (std::size_t i = 1; i < nodes_.size(); ++i)
      nodes_[i].kill_at = 0;
    const std::uint64_t deadline = now_ + opt_.heal_bound;
    std::optional<std::pair<NodeId, std::uint64_t>> marker;  // (leader, index) of our marker
    while (!failure_ && now_ < deadline) {
      step(false);
      if (!marker || nodes_[marker->first].node->role() != Role::kLeader) {
        for (std::size_t i = 1; i < nodes_.size(); ++i) {
          if (!nodes_[i].node) return;
          Node& node = *nodes_[i].node;
          if (node.role() == Role::kLeader) {
            if (auto idx = node.propose("M")) marker.emplace(static_cast<NodeId>(i), *idx);
            break;
          }
        }
        continue;
      }
      bool all = true;
      for (std::size_t i = 1; i < nodes_.size() && all; ++i) {
        const SimNode& n = nodes_[i];
        all = n.sm_applied >= marker->second;
      }
      if (all) {
        const Entry& e = applied_[marker->second - 1];
        if (e.data == "M") return;
        marker.reset();  // our marker was overwritten by a new leader: propose again
      }
    }
    if (!failure_) {
      fail("liveness: no marker committed and applied everywhere within the bound after healing" +
           dump());
    }
  }

  std::string dump() const {
    std::ostringstream os;
    for (std::size_t i = 1; i < nodes_.size(); ++i) {
      const SimNode& n = nodes_[i];
      os << "\n  node " << i;
      if (!n.node) {
        os << " down";
        continue;
      }
      const Node& x = *n.node;
      os << ' ' << to_string(x.role()) << " term=" << x.term() << " vote=" << x.vote()
         << " lead=" << x.leader() << " last=" << x.log().last_index() << '/' << x.log().last_term()
         << " commit=" << x.log().committed() << " stable=" << x.log().stable()
         << " snapshot=" << x.log().snapshot_index() << " applied=" << n.sm_applied;
      if (x.role() == Role::kLeader) {
        for (std::size_t j = 1; j < nodes_.size(); ++j) {
          const Progress* p = x.progress(j);
          if (p == nullptr) continue;
          os << "\n    pr " << j << " match=" << p->match() << " next=" << p->next()
             << (p->state() == Progress::State::kProbe ? " probe" : " replicate")
             << (p->is_paused() ? " paused" : "");
        }
      }
    }
    os << "\n  in flight: " << net_.size() << " messages";
    return os.str();
  }

  Options opt_;
  Rng rng_;
  Config base_;
  std::uint64_t drop_ = 0;
  std::uint64_t dup_ = 0;
  std::uint64_t max_delay_ = 10;
  std::uint64_t disk_ready_pct_ = 100;
  std::uint64_t crash_every_ = 700;
  bool storm_ = false;
  bool healing_ = false;
  std::uint64_t max_down_ = 600;
  std::uint64_t partition_every_ = 500;
  std::uint64_t torn_every_ = 2000;
  std::uint64_t now_ = 0;
  std::uint64_t net_seq_ = 0;
  std::uint64_t restarts_ = 0;
  std::uint64_t crashes_ = 0;
  std::uint64_t old_term_commits_ = 0;
  std::uint64_t duplicates_ = 0;
  std::uint64_t read_ctx_ = 0;
  std::uint64_t compact_every_ = 0;
  std::uint64_t snapshots_taken_ = 0;
  std::uint64_t snapshots_installed_ = 0;
  std::uint64_t lease_reads_ = 0;
  std::vector<SimNode> nodes_;
  std::priority_queue<InFlight, std::vector<InFlight>, std::greater<>> net_;
  std::vector<Client> clients_;
  std::vector<Op> history_;
  std::map<std::int64_t, int> ops_per_key_;
  std::map<std::uint64_t, std::size_t> read_owner_;
  std::map<std::pair<std::uint64_t, std::uint64_t>, std::pair<std::string, std::uint64_t>> entries_;
  std::vector<Entry> committed_;
  std::vector<std::uint64_t> committed_seen_term_;  // term of the node that first reported it
  std::vector<Entry> applied_;
  std::map<std::uint64_t, NodeId> leaders_;
  std::optional<std::string> failure_;
};

inline Result run_seed(const Options& o) {
  return Simulator(o).run();
}

}  // namespace ringwire::raft::sim
