// A hand-driven cluster for scenario tests: the test decides which messages are delivered,
// which links are cut, and when nodes tick, crash and restart.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "ringwire/raft/node.hpp"

namespace ringwire::raft::test {

class Cluster {
 public:
  explicit Cluster(std::size_t n, std::function<void(Config&)> tweak = {}) {
    for (NodeId i = 1; i <= n; ++i)
      voters_.push_back(i);
    hosts_ = voters_;
    tweak_ = std::move(tweak);
    for (NodeId i : voters_) {
      nodes_[i] = std::make_unique<Node>(config(i));
      flush(i);
    }
  }

  // A new process that will join: it knows the founding voters, not itself.
  void add_host(NodeId id) {
    hosts_.push_back(id);
    nodes_[id] = std::make_unique<Node>(config(id));
    flush(id);
  }

  Config config(NodeId id) const {
    Config c;
    c.id = id;
    c.voters = voters_;
    c.seed = id;
    if (tweak_) tweak_(c);
    return c;
  }

  Node& node(NodeId id) { return *nodes_.at(id); }
  bool alive(NodeId id) const { return nodes_.count(id) != 0 && nodes_.at(id) != nullptr; }
  DurableState& disk(NodeId id) { return disks_[id]; }
  std::vector<Entry>& applied(NodeId id) { return applied_[id]; }
  std::vector<ReadState>& reads(NodeId id) { return reads_[id]; }
  std::vector<Snapshot>& installed(NodeId id) { return installed_[id]; }

  // The host side of compaction: snapshot (here: the applied commands joined) at the last
  // applied index, persist it, drop the durable prefix, tell the node.
  bool compact(NodeId id) {
    Node& n = node(id);
    const std::uint64_t at = n.log().applied();
    std::string data;
    for (const auto& e : applied_[id])
      data += e.data + ';';
    DurableState& d = disks_[id];
    const std::uint64_t base = d.snapshot ? d.snapshot->index : 0;
    if (at <= base) return false;
    if (!n.compact(at, data)) return false;
    d.snapshot = n.snapshot();  // with the membership
    d.entries.erase(d.entries.begin(),
                    d.entries.begin() + static_cast<std::ptrdiff_t>(
                                            std::min<std::uint64_t>(at - base, d.entries.size())));
    return true;
  }

  void cut(NodeId a, NodeId b) {
    cut_.insert({a, b});
    cut_.insert({b, a});
  }
  void isolate(NodeId a) {
    for (NodeId v : hosts_) {
      if (v != a) cut(a, v);
    }
  }
  void heal() { cut_.clear(); }

  void crash(NodeId id) {
    nodes_[id].reset();
    applied_[id].clear();
  }
  std::string restart(NodeId id) {
    auto r = Node::restart(config(id), disks_[id]);
    if (!r.node) return r.error;
    nodes_[id] = std::move(r.node);
    return {};
  }
  // Replace a node with one restarted from a hand-written disk.
  std::string load(NodeId id, DurableState d) {
    disks_[id] = std::move(d);
    crash(id);
    return restart(id);
  }

  // Persist and "send" (queue) everything a node has ready.
  void flush(NodeId id) {
    if (!alive(id)) return;
    Node& n = *nodes_[id];
    while (n.has_ready()) {
      Ready rd = n.ready();
      DurableState& d = disks_[id];
      if (rd.snapshot) {
        d.snapshot = rd.snapshot;  // replaces the durable log
        d.entries.clear();
        installed_[id].push_back(*rd.snapshot);
      }
      if (!rd.entries.empty()) {
        const std::uint64_t base = d.snapshot ? d.snapshot->index : 0;
        d.entries.resize(rd.entries.front().index - 1 - base);
        d.entries.insert(d.entries.end(), rd.entries.begin(), rd.entries.end());
      }
      if (rd.hard_state) d.hard_state = rd.hard_state;
      for (auto& m : rd.messages)
        queue_.push_back(m);
      for (auto& e : rd.committed_entries) {
        if (e.type == EntryType::kConfChange) {
          auto cc = ConfChange::decode(e.data);
          if (cc) n.apply_conf_change(e.index, *cc);
        }
        applied_[id].push_back(e);
      }
      for (auto& r : rd.read_states)
        reads_[id].push_back(r);
      n.advance(rd);
    }
  }

  // Deliver queued messages (and everything they cause) until quiet. `keep` filters messages.
  void deliver(const std::function<bool(const Message&)>& keep = {}) {
    for (int round = 0; round < 1000; ++round) {
      for (NodeId v : hosts_)
        flush(v);
      if (queue_.empty()) return;
      std::vector<Message> batch;
      batch.swap(queue_);
      for (const auto& m : batch) {
        if (!alive(m.to) || cut_.count({m.from, m.to}) != 0) continue;
        if (keep && !keep(m)) continue;
        nodes_[m.to]->step(m);
      }
    }
  }

  void tick(NodeId id, int times = 1) {
    for (int i = 0; i < times; ++i) {
      if (alive(id)) nodes_[id]->tick();
    }
  }
  void tick_all(int times = 1) {
    for (int i = 0; i < times; ++i) {
      for (NodeId v : hosts_)
        tick(v);
      deliver();
    }
  }

  std::uint64_t progress_match(NodeId leader, NodeId peer) {
    const Progress* p = node(leader).progress(peer);
    return p == nullptr ? 0 : p->match();
  }

  NodeId leader() {
    for (NodeId v : hosts_) {
      if (alive(v) && nodes_[v]->role() == Role::kLeader) return v;
    }
    return kNone;
  }

  // Make `id` campaign and deliver everything.
  void elect(NodeId id) {
    node(id).campaign();
    deliver();
  }

 private:
  std::vector<NodeId> voters_;  // the founding members
  std::vector<NodeId> hosts_;   // every process, founding or joined
  std::function<void(Config&)> tweak_;
  std::map<NodeId, std::unique_ptr<Node>> nodes_;
  std::map<NodeId, DurableState> disks_;
  std::map<NodeId, std::vector<Entry>> applied_;
  std::map<NodeId, std::vector<ReadState>> reads_;
  std::map<NodeId, std::vector<Snapshot>> installed_;
  std::set<std::pair<NodeId, NodeId>> cut_;
  std::vector<Message> queue_;
};

}  // namespace ringwire::raft::test
