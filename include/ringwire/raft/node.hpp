// A deterministic Raft node: no threads, clocks, sockets or files. The host feeds it ticks,
// messages, proposals and read requests and drains a Ready describing what to do next.
//
// Durability contract for one Ready, in this order:
//   1. persist `snapshot` if set (it replaces the durable snapshot and every durable entry),
//      then `entries` (drop the durable suffix from entries.front().index, then append),
//      then `hard_state` if set;
//   2. only then send `messages` (votes and acks promise that (1) is durable);
//   3. restore the state machine from `snapshot` if set, then apply `committed_entries` in
//      order; serve `read_states` once applied >= their index;
//   4. call advance(ready). Nothing else may be called between ready() and advance().
// Compaction is the host's call: once it has applied index i it encodes its state machine as
// `data`, calls compact(i, data), persists node.snapshot() (data plus the term and membership
// at i) and then drops its durable entries <= i. A leader sends that snapshot to a follower
// that needs entries it no longer has.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "ringwire/raft/log.hpp"
#include "ringwire/raft/message.hpp"
#include "ringwire/raft/progress.hpp"
#include "ringwire/raft/types.hpp"

namespace ringwire::raft {

enum class Role : std::uint8_t { kFollower, kPreCandidate, kCandidate, kLeader };
std::string_view to_string(Role r);

struct Config {
  NodeId id = kNone;
  // The cluster's founding membership (the configuration at index 0). A founding member is in
  // it; a node that joins later gets the same founding list (without itself) and learns every
  // change since from the log or a snapshot, as every member does.
  std::vector<NodeId> voters;
  std::vector<NodeId> learners;
  int election_tick = 10;  // election timeout is randomized in [election_tick, 2*election_tick)
  int heartbeat_tick = 1;
  bool pre_vote = true;
  bool check_quorum = true;
  std::size_t max_entries_per_msg = 64;
  std::size_t max_bytes_per_msg = 1 << 20;
  std::size_t max_inflight_msgs = 64;
  std::size_t max_inflight_bytes = 8 << 20;
  std::uint64_t seed = 1;  // seeds the election-timeout PRNG: same inputs, same outputs

  // Leader-lease reads (needs check_quorum): a leader answers read_index at once, without a
  // heartbeat round, while a quorum has acknowledged a heartbeat it sent fewer than
  // `lease_ticks` of its own ticks ago. Safe because a node that heard from the leader refuses
  // to vote for anyone else for election_tick of *its* ticks (check_quorum), and, with leases
  // on, a restarted node does the same. Clock assumption: no node's ticks run faster than the
  // leader's by a factor of election_tick / lease_ticks or more (10 / 4 = 2.5x here by
  // default). Off during a leadership transfer (the transferee campaigns past the lease).
  bool lease_reads = false;
  int lease_ticks = 4;

  // Test-only mutations that break safety on purpose (the simulator must catch them).
  bool unsafe_commit_old_term_by_count = false;  // ignore the "current term only" commit rule
  bool unsafe_double_vote = false;               // grant a second vote in the same term
};

// What the host persisted. `hard_state` is absent only on a disk that was never initialized.
struct DurableState {
  std::optional<HardState> hard_state;
  std::vector<Entry> entries;  // the entries after the snapshot (from snapshot->index + 1)
  std::optional<Snapshot> snapshot = std::nullopt;
};

struct Ready {
  std::optional<Snapshot> snapshot;      // installed from the leader: persist, then restore
  std::optional<HardState> hard_state;   // persist when set
  std::vector<Entry> entries;            // persist: truncate at entries.front().index, append
  std::vector<Message> messages;         // send only after the above is durable
  std::vector<Entry> committed_entries;  // apply in order
  std::vector<ReadState> read_states;    // serve once applied >= index
};

class Node {
 public:
  // A brand-new member of a brand-new cluster. Its first Ready carries a hard state so the
  // host's disk is initialized before anything else happens.
  explicit Node(const Config& cfg);

  struct RestartResult {
    std::unique_ptr<Node> node;  // null when refused
    std::string error;
  };
  // Restart from what the host persisted (the host restores its state machine from
  // durable.snapshot itself). Refuses an uninitialized disk: a member that lost its disk may
  // have voted or acknowledged entries it no longer remembers.
  static RestartResult restart(const Config& cfg, const DurableState& durable);

  void tick();
  void step(const Message& m);
  // Leader only: append a client command. Returns its index, or nullopt when not leader.
  std::optional<std::uint64_t> propose(std::string data);
  // Leader only: append several commands at once (one append message per follower instead of
  // one per command). Returns the index of the first, or nullopt when not leader or empty.
  std::optional<std::uint64_t> propose_batch(std::vector<std::string> data);
  // Linearizable read (ReadIndex). Returns false when it cannot start now (no known leader,
  // or a new leader has not committed an entry in its term yet); the caller retries.
  bool read_index(std::uint64_t context);
  void campaign();  // start an election now (tests)
  // Leader only: hand leadership to `to`. Proposals are refused while the transfer runs; the
  // leader brings `to` up to date, then tells it to campaign at once. Abandoned after an
  // election timeout. Returns false when not leader or `to` is not another voter.
  bool transfer_leadership(NodeId to);
  NodeId transferee() const { return lead_transferee_; }
  // The host has applied up to `index` and encoded its state machine at that point as `data`:
  // the log forgets entries <= index. The host then persists snapshot() and may drop its
  // durable entries <= index. Returns false when index is not applied yet or not past the
  // current snapshot.
  bool compact(std::uint64_t index, std::string data);

  // Membership, one change at a time. Leader only; refused (nullopt) while a transfer runs,
  // before the leader committed an entry of its term, while an earlier change is not applied
  // yet, or when the change makes no sense (adding a member twice, removing a non-member or
  // the last voter, demoting a voter to learner).
  std::optional<std::uint64_t> propose_conf_change(const ConfChange& cc);
  // The host applies a kConfChange entry (in log order, like any committed entry) by calling
  // this with the entry's index; the change takes effect on this node now. Returns the new
  // membership. A leader that removed itself steps down.
  ConfState apply_conf_change(std::uint64_t index, const ConfChange& cc);
  const ConfState& conf() const { return conf_; }
  bool is_voter(NodeId id) const;
  bool is_learner(NodeId id) const;
  const Snapshot& snapshot() const { return snapshot_; }
  std::uint64_t lease_reads_served() const { return lease_reads_served_; }

  bool has_ready() const;
  Ready ready();
  void advance(const Ready& rd);

  NodeId id() const { return cfg_.id; }
  Role role() const { return role_; }
  std::uint64_t term() const { return term_; }
  NodeId vote() const { return vote_; }
  NodeId leader() const { return lead_; }
  const Log& log() const { return log_; }
  HardState hard_state() const { return {term_, vote_, log_.committed()}; }
  const Progress* progress(NodeId peer) const;

 private:
  Node(const Config& cfg, const DurableState& durable);

  std::size_t quorum() const { return conf_.voters.size() / 2 + 1; }
  ConfState conf_at(std::uint64_t index) const;
  void add_progress(NodeId id);
  void send(Message m);
  void reset(std::uint64_t term);
  void become_follower(std::uint64_t term, NodeId lead);
  void become_pre_candidate();
  void become_candidate();
  void become_leader();
  void start_election(bool pre, bool transfer = false);
  void poll(NodeId from, bool granted);

  void step_leader(const Message& m);
  void step_candidate(const Message& m);
  void step_follower(const Message& m);
  void handle_vote_request(const Message& m);
  void handle_append(const Message& m);
  void handle_heartbeat(const Message& m);
  void handle_snapshot(const Message& m);
  void send_snapshot(NodeId to);

  bool send_append(NodeId to, bool send_if_empty);
  void bcast_append(bool send_if_empty);
  void bcast_heartbeat();
  void send_timeout_now(NodeId to);
  bool maybe_commit();
  void tick_election();
  void tick_heartbeat();
  void check_pending_reads();
  bool committed_in_current_term() const;
  void reset_randomized_timeout();

  Config cfg_;
  std::uint64_t rng_;
  Role role_ = Role::kFollower;
  std::uint64_t term_ = 0;
  NodeId vote_ = kNone;
  NodeId lead_ = kNone;
  Log log_;
  std::map<NodeId, Progress> prs_;
  std::map<NodeId, bool> votes_;
  int election_elapsed_ = 0;
  int heartbeat_elapsed_ = 0;
  int randomized_timeout_ = 0;

  // ReadIndex rounds: every request gets a round id carried as heartbeat context; a peer's
  // response to round r confirms leadership for every request with id <= r.
  struct PendingRead {
    std::uint64_t id;
    std::uint64_t index;
    NodeId from;
    std::uint64_t context;
  };
  std::vector<PendingRead> pending_reads_;
  // Leader lease: tick_count_ counts our ticks; ack_tick_[peer] is the send tick of the newest
  // heartbeat the peer acknowledged in this term.
  std::uint64_t tick_count_ = 0;
  std::map<NodeId, std::uint64_t> ack_tick_;
  bool transfer_in_term_ = false;
  bool quiet_after_restart_ = false;  // leases: refuse votes for an election timeout
  std::uint64_t lease_reads_served_ = 0;
  bool lease_valid() const;
  std::map<NodeId, std::uint64_t> read_acked_;
  std::uint64_t next_read_id_ = 1;
  NodeId lead_transferee_ = kNone;

  ConfState conf_;  // the membership applied so far
  // (index, membership) after each applied change since the snapshot, to snapshot the right
  // membership when compacting below the applied index.
  std::vector<std::pair<std::uint64_t, ConfState>> conf_history_;
  std::uint64_t pending_conf_index_ = 0;      // the last conf change proposed by this leader
  Snapshot snapshot_;                         // the latest snapshot (compacted or installed)
  std::optional<Snapshot> pending_snapshot_;  // installed, not yet handed to the host
  std::vector<Message> msgs_;
  std::vector<ReadState> read_states_;
  HardState persisted_hs_;
  bool force_hs_ = false;
};

}  // namespace ringwire::raft
