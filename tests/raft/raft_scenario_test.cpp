// Hand-driven scenarios for the Raft core: Figure 7/8 log shapes, stale leaders, empty disks,
// pre-vote, ReadIndex, flow control and fast backtracking.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "raft/cluster.hpp"
#include "ringwire/raft/session.hpp"

namespace ringwire::raft::test {
namespace {

std::vector<Entry> log_of(std::initializer_list<std::uint64_t> terms) {
  std::vector<Entry> out;
  std::uint64_t i = 0;
  for (std::uint64_t t : terms) {
    ++i;
    std::string data = "e";  // built piecewise: GCC 12 -Wrestrict misfires on operator+ chains
    data += std::to_string(i);
    data += 't';
    data += std::to_string(t);
    out.push_back({t, i, data});
  }
  return out;
}

DurableState disk(std::uint64_t term, std::initializer_list<std::uint64_t> terms,
                  std::uint64_t commit = 0) {
  return {HardState{term, kNone, commit}, log_of(terms)};
}

// ---- Log --------------------------------------------------------------------------------

TEST(RaftLog, AppendTruncatesConflictsAndReportsUnstable) {
  Log log(log_of({1, 1, 2, 2}), 1);
  EXPECT_EQ(log.last_index(), 4u);
  EXPECT_FALSE(log.has_unstable());
  EXPECT_FALSE(log.maybe_append(4, 3, 0, {}));  // prev term mismatch
  auto last = log.maybe_append(2, 1, 3, {Entry{3, 3, "x"}});
  ASSERT_TRUE(last);
  EXPECT_EQ(*last, 3u);
  EXPECT_EQ(log.last_index(), 3u);  // index 4 (term 2) was dropped with the conflict
  EXPECT_EQ(log.committed(), 3u);
  auto un = log.unstable_entries();
  ASSERT_EQ(un.size(), 1u);
  EXPECT_EQ(un[0].index, 3u);  // the host truncates its disk at 3 and appends
  EXPECT_EQ(log.stable(), 2u);
  log.stable_to(3);
  EXPECT_FALSE(log.has_unstable());
  // Entries that already match are not rewritten.
  last = log.maybe_append(1, 1, 3, {Entry{1, 2, "e2t1"}, Entry{3, 3, "x"}});
  ASSERT_TRUE(last);
  EXPECT_FALSE(log.has_unstable());
}

TEST(RaftLog, ConflictHintSkipsWholeTerms) {
  Log log(log_of({1, 1, 4, 4, 4, 5, 5}), 0);
  EXPECT_EQ(log.find_conflict_by_term(7, 4), 5u);
  EXPECT_EQ(log.find_conflict_by_term(7, 3), 2u);
  EXPECT_EQ(log.find_conflict_by_term(10, 9), 7u);
  EXPECT_EQ(log.find_conflict_by_term(7, 0), 0u);
}

TEST(RaftProgress, InflightWindowPausesAndFrees) {
  Progress pr(1, 2, 1000);
  pr.maybe_update(0);
  pr.become_replicate();
  pr.sent_entries(3, 10, true);
  EXPECT_FALSE(pr.is_paused());
  pr.sent_entries(5, 10, true);
  EXPECT_TRUE(pr.is_paused());  // two messages in flight
  EXPECT_TRUE(pr.maybe_update(3));
  pr.inflights().free_le(3);
  EXPECT_FALSE(pr.is_paused());
  EXPECT_EQ(pr.next(), 6u);
}

TEST(RaftSession, AppliesEachClientRequestOnce) {
  SessionTable t;
  EXPECT_TRUE(t.is_new(7, 1));
  t.record(7, 1, "ok1");
  EXPECT_FALSE(t.is_new(7, 1));  // a retried copy later in the log
  EXPECT_EQ(t.result(7, 1), "ok1");
  EXPECT_TRUE(t.is_new(7, 2));
  EXPECT_TRUE(t.is_new(8, 1));  // clients are independent
  t.record(7, 2, "ok2");
  EXPECT_FALSE(t.is_new(7, 1));  // an abandoned older request never applies late
  EXPECT_FALSE(t.result(7, 1));
}

// ---- elections ------------------------------------------------------------------------

TEST(RaftScenario, ElectsOneLeaderAndReplicates) {
  Cluster c(3);
  c.elect(1);
  ASSERT_EQ(c.leader(), 1u);
  EXPECT_EQ(c.node(2).leader(), 1u);
  auto idx = c.node(1).propose("hello");
  ASSERT_TRUE(idx);
  c.deliver();
  for (NodeId v : {1, 2, 3}) {
    EXPECT_EQ(c.node(v).log().committed(), *idx) << v;
    ASSERT_FALSE(c.applied(v).empty());
    EXPECT_EQ(c.applied(v).back().data, "hello");
  }
}

TEST(RaftScenario, RandomizedTimeoutElectsExactlyOneLeader) {
  Cluster c(5);
  for (int i = 0; i < 40 && c.leader() == kNone; ++i)
    c.tick_all();
  ASSERT_NE(c.leader(), kNone);
  int leaders = 0;
  for (NodeId v : {1, 2, 3, 4, 5})
    leaders += c.node(v).role() == Role::kLeader ? 1 : 0;
  EXPECT_EQ(leaders, 1);
}

TEST(RaftScenario, PreVoteKeepsAnIsolatedNodeFromInflatingTerms) {
  Cluster c(3);
  c.elect(1);
  const std::uint64_t term = c.node(1).term();
  c.isolate(3);
  c.tick_all(100);
  EXPECT_EQ(c.node(3).term(), term);  // pre-vote never succeeded, so no term bump
  c.heal();
  c.tick_all(5);
  EXPECT_EQ(c.leader(), 1u);
  EXPECT_EQ(c.node(1).term(), term);
}

TEST(RaftScenario, AVoteIsDurableAndNotGrantedTwice) {
  Cluster c(3, [](Config& cfg) { cfg.pre_vote = false; });
  c.cut(1, 3);
  c.elect(1);  // node 2 votes for 1 in term 1
  ASSERT_EQ(c.leader(), 1u);
  EXPECT_EQ(c.disk(2).hard_state->vote, 1u);
  c.crash(2);
  ASSERT_EQ(c.restart(2), "");
  EXPECT_EQ(c.node(2).vote(), 1u);
  EXPECT_EQ(c.node(2).term(), 1u);
  // Node 3 asks node 2 for a vote in the same term 1: refused.
  Message m;
  m.type = MessageType::kVote;
  m.from = 3;
  m.to = 2;
  m.term = 1;
  m.index = 10;
  m.log_term = 1;
  c.node(2).step(m);
  Ready rd = c.node(2).ready();
  ASSERT_EQ(rd.messages.size(), 1u);
  EXPECT_TRUE(rd.messages[0].reject);
  c.node(2).advance(rd);
}

TEST(RaftScenario, NodeRestartingWithEmptyDiskIsRefused) {
  Cluster c(3, [](Config& cfg) { cfg.pre_vote = false; });
  c.elect(1);
  ASSERT_EQ(c.disk(2).hard_state->vote, 1u);
  c.crash(2);
  c.disk(2) = DurableState{};  // the disk was wiped: the vote for 1 in term 1 is forgotten
  const std::string err = c.restart(2);
  EXPECT_NE(err.find("refusing"), std::string::npos) << err;
  EXPECT_FALSE(c.alive(2));
}

// ---- Figure 7 / Figure 8 ----------------------------------------------------------------

TEST(RaftScenario, Figure7FollowersConvergeToTheLeaderLog) {
  // Leader of term 8 (after the figure's term-6 leader) and followers a-f of Figure 7.
  Cluster c(7, [](Config& cfg) {
    cfg.pre_vote = false;
    cfg.max_entries_per_msg = 3;
  });
  ASSERT_EQ(c.load(1, disk(7, {1, 1, 1, 4, 4, 5, 5, 6, 6, 6})), "");
  ASSERT_EQ(c.load(2, disk(7, {1, 1, 1, 4, 4, 5, 5, 6, 6})), "");           // a
  ASSERT_EQ(c.load(3, disk(7, {1, 1, 1, 4})), "");                          // b
  ASSERT_EQ(c.load(4, disk(7, {1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6})), "");     // c
  ASSERT_EQ(c.load(5, disk(7, {1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7})), "");  // d
  ASSERT_EQ(c.load(6, disk(7, {1, 1, 1, 4, 4, 4, 4})), "");                 // e
  ASSERT_EQ(c.load(7, disk(7, {1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3})), "");     // f
  c.cut(1, 5);  // d would refuse to vote (its log is more up to date); keep it out of the vote
  c.elect(1);
  ASSERT_EQ(c.leader(), 1u);
  c.heal();
  c.node(1).propose("x");
  c.tick_all(3);
  const auto& lead = c.node(1).log();
  for (NodeId v = 2; v <= 7; ++v) {
    const auto& l = c.node(v).log();
    ASSERT_EQ(l.last_index(), lead.last_index()) << v;
    for (std::uint64_t i = 1; i <= l.last_index(); ++i)
      EXPECT_EQ(l.at(i), lead.at(i)) << v << "@" << i;
  }
  EXPECT_EQ(lead.committed(), lead.last_index());
}

// Figure 8: S1 (term 4) replicates its term-2 entry to a majority but must not count it as
// committed until an entry of term 4 is on a majority; S5 can still overwrite it.
void run_figure8(bool unsafe, std::uint64_t* s1_commit, std::uint64_t* final_term_at_2) {
  Cluster c(5, [unsafe](Config& cfg) {
    cfg.pre_vote = false;
    cfg.check_quorum = false;
    cfg.max_entries_per_msg = 1;
    cfg.unsafe_commit_old_term_by_count = unsafe;
  });
  ASSERT_EQ(c.load(1, disk(3, {1, 2}, 1)), "");
  ASSERT_EQ(c.load(2, disk(3, {1, 2}, 1)), "");
  ASSERT_EQ(c.load(3, disk(3, {1}, 1)), "");
  ASSERT_EQ(c.load(4, disk(3, {1}, 1)), "");
  ASSERT_EQ(c.load(5, disk(4, {1, 3}, 1)), "");  // its next campaign is for term 5
  c.isolate(5);
  // Every append that would deliver a term-4 entry (S1's no-op) is lost on the wire; probes
  // that the follower rejects get through, so only the term-2 entry spreads.
  auto no_term4_entries = [&c](const Message& m) {
    if (!c.node(m.to).log().match_term(m.index, m.log_term)) return true;
    for (const auto& e : m.entries) {
      if (e.term == 4) return false;
    }
    return true;
  };
  c.node(1).campaign();
  c.deliver(no_term4_entries);
  ASSERT_EQ(c.leader(), 1u);
  ASSERT_EQ(c.node(1).term(), 4u);
  EXPECT_EQ(c.node(3).log().term(2), 2u);  // the old entry is now on S1, S2, S3 (and S4)
  *s1_commit = c.node(1).log().committed();
  // S1 crashes; S5 (last term 3) wins term 5 with votes of S2, S3, S4 and overwrites index 2.
  c.crash(1);
  c.heal();
  c.elect(5);
  EXPECT_EQ(c.leader(), 5u);
  c.tick_all(3);
  *final_term_at_2 = c.node(2).log().term(2).value_or(0);
}

TEST(RaftScenario, Figure8OldTermEntryIsNotCommittedByCounting) {
  std::uint64_t commit = 0;
  std::uint64_t term_at_2 = 0;
  run_figure8(false, &commit, &term_at_2);
  EXPECT_EQ(commit, 1u);     // index 2 (term 2) is on a majority but not committed
  EXPECT_EQ(term_at_2, 3u);  // ...and S5 legitimately replaced it
}

TEST(RaftScenario, Figure8MutationCommitsAnEntryThatIsThenLost) {
  std::uint64_t commit = 0;
  std::uint64_t term_at_2 = 0;
  run_figure8(true, &commit, &term_at_2);
  EXPECT_EQ(commit, 2u);     // the broken rule counted replicas of a term-2 entry
  EXPECT_EQ(term_at_2, 3u);  // ...which a later leader overwrote: a committed entry was lost
}

// ---- stale leaders, check-quorum ------------------------------------------------------

TEST(RaftScenario, PartitionedLeaderStepsDownAndItsProposalsNeverCommit) {
  Cluster c(3);
  c.elect(1);
  ASSERT_EQ(c.leader(), 1u);
  c.node(1).propose("before");
  c.deliver();
  const std::uint64_t old_term = c.node(1).term();
  c.isolate(1);
  auto stale = c.node(1).propose("stale");
  ASSERT_TRUE(stale);  // it still believes it leads
  c.deliver();
  // Check-quorum: within an election timeout (plus one) the isolated leader steps down.
  int ticks = 0;
  while (c.node(1).role() == Role::kLeader && ticks < 25) {
    c.tick(1);
    c.deliver();
    ++ticks;
  }
  EXPECT_EQ(c.node(1).role(), Role::kFollower);
  EXPECT_LE(ticks, 2 * 10);
  // The majority side elects a new leader and commits.
  for (int i = 0; i < 60 && c.leader() == kNone; ++i) {
    c.tick(2);
    c.tick(3);
    c.deliver();
  }
  const NodeId nl = c.leader();
  ASSERT_TRUE(nl == 2 || nl == 3);
  EXPECT_GT(c.node(nl).term(), old_term);
  c.node(nl).propose("fresh");
  c.deliver();
  c.heal();
  c.tick_all(5);
  for (NodeId v : {1, 2, 3}) {
    for (const auto& e : c.applied(v))
      EXPECT_NE(e.data, "stale") << v;
    EXPECT_EQ(c.node(v).log().committed(), c.node(nl).log().committed()) << v;
    EXPECT_EQ(c.node(v).leader(), nl) << v;
  }
  EXPECT_NE(c.node(1).log().at(*stale).data, "stale");  // overwritten by the new leader
}

// ---- leadership transfer ------------------------------------------------------------

TEST(RaftScenario, LeadershipTransferCatchesUpTheTargetThenHandsOver) {
  Cluster c(3);
  c.elect(1);
  c.cut(1, 3);
  for (int i = 0; i < 5; ++i)
    c.node(1).propose(std::to_string(i));
  c.deliver();
  ASSERT_LT(c.node(3).log().last_index(), c.node(1).log().last_index());  // 3 lags
  c.heal();
  const std::uint64_t term = c.node(1).term();
  ASSERT_TRUE(c.node(1).transfer_leadership(3));
  EXPECT_FALSE(c.node(1).propose("during"));  // refused while the transfer runs
  c.deliver();
  EXPECT_EQ(c.leader(), 3u);
  EXPECT_EQ(c.node(3).term(), term + 1);
  EXPECT_EQ(c.node(1).role(), Role::kFollower);
  EXPECT_EQ(c.node(1).leader(), 3u);
  ASSERT_TRUE(c.node(3).propose("after"));
  c.deliver();
  EXPECT_EQ(c.applied(1).back().data, "after");
}

TEST(RaftScenario, LeadershipTransferToAnUnreachableNodeIsAbandoned) {
  Cluster c(3);
  c.elect(1);
  c.isolate(3);
  ASSERT_TRUE(c.node(1).transfer_leadership(3));
  EXPECT_FALSE(c.node(1).propose("x"));
  for (int i = 0; i < 10; ++i) {
    c.tick(1);
    c.deliver();
  }
  EXPECT_EQ(c.leader(), 1u);
  EXPECT_EQ(c.node(1).transferee(), kNone);
  EXPECT_TRUE(c.node(1).propose("y"));  // proposals resume
}

// ---- ReadIndex --------------------------------------------------------------------------

TEST(RaftScenario, ReadIndexNeedsAHeartbeatQuorum) {
  Cluster c(3);
  c.elect(1);
  c.node(1).propose("v1");
  c.deliver();
  const std::uint64_t commit = c.node(1).log().committed();
  c.isolate(1);
  ASSERT_TRUE(c.node(1).read_index(42));
  c.deliver();
  EXPECT_TRUE(c.reads(1).empty());  // no quorum confirmed leadership: not safe yet
  c.heal();
  c.tick(1);  // the next heartbeat round confirms it
  c.deliver();
  ASSERT_EQ(c.reads(1).size(), 1u);
  EXPECT_EQ(c.reads(1)[0].context, 42u);
  EXPECT_EQ(c.reads(1)[0].index, commit);
  // A follower's read is forwarded to the leader.
  ASSERT_TRUE(c.node(2).read_index(7));
  c.deliver();
  ASSERT_EQ(c.reads(2).size(), 1u);
  EXPECT_EQ(c.reads(2)[0].index, commit);
}

TEST(RaftScenario, NewLeaderDefersReadsUntilItCommitsInItsTerm) {
  Cluster c(3);
  c.node(1).campaign();
  // Stop before the leader's no-op is acknowledged.
  c.deliver([](const Message& m) { return m.type != MessageType::kAppendResp; });
  ASSERT_EQ(c.leader(), 1u);
  EXPECT_FALSE(c.node(1).read_index(1));
}

// ---- replication mechanics --------------------------------------------------------------

TEST(RaftScenario, FastBacktrackingNeedsFewProbes) {
  Cluster c(3, [](Config& cfg) { cfg.pre_vote = false; });
  std::vector<std::uint64_t> lead_terms(50, 5);
  std::vector<std::uint64_t> foll_terms(80, 4);
  lead_terms[0] = foll_terms[0] = 1;
  DurableState l{HardState{6, kNone, 1}, {}};
  DurableState f{HardState{6, kNone, 1}, {}};
  for (std::uint64_t i = 0; i < lead_terms.size(); ++i)
    l.entries.push_back({lead_terms[i], i + 1, "l"});
  for (std::uint64_t i = 0; i < foll_terms.size(); ++i)
    f.entries.push_back({foll_terms[i], i + 1, "f"});
  ASSERT_EQ(c.load(1, l), "");
  ASSERT_EQ(c.load(2, l), "");
  ASSERT_EQ(c.load(3, f), "");
  int rejects = 0;
  c.elect(1);
  c.node(1).propose("x");
  c.deliver([&](const Message& m) {
    if (m.type == MessageType::kAppendResp && m.reject) ++rejects;
    return true;
  });
  EXPECT_LE(rejects, 3);  // one hint skips the whole divergent term-4 run
  EXPECT_EQ(c.node(3).log().last_index(), c.node(1).log().last_index());
  EXPECT_EQ(c.node(3).log().at(2).term, 5u);
}

TEST(RaftScenario, InflightWindowBoundsUnacknowledgedAppends) {
  Cluster c(3, [](Config& cfg) {
    cfg.max_entries_per_msg = 1;
    cfg.max_inflight_msgs = 3;
  });
  c.elect(1);
  for (int i = 0; i < 10; ++i)
    c.node(1).propose(std::to_string(i));
  c.flush(1);  // the appends are queued, none acknowledged yet
  const Progress* pr = c.node(1).progress(2);
  ASSERT_NE(pr, nullptr);
  EXPECT_LE(pr->inflights_count(), 3u);
  c.deliver();
  EXPECT_EQ(c.node(2).log().last_index(), c.node(1).log().last_index());
}

TEST(RaftScenario, LaggingFollowerCatchesUpThroughASnapshot) {
  Cluster c(3);
  c.elect(1);
  c.isolate(3);
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(c.node(1).propose(std::to_string(i) + "w"));
    c.deliver();
  }
  const std::uint64_t applied = c.node(1).log().applied();
  ASSERT_GE(applied, 21u);  // the no-op and 20 writes
  ASSERT_TRUE(c.compact(1));
  EXPECT_EQ(c.node(1).log().snapshot_index(), applied);
  EXPECT_EQ(c.node(1).log().first_index(), applied + 1);
  EXPECT_FALSE(c.node(1).compact(applied, "again")) << "not past the current snapshot";
  EXPECT_FALSE(c.node(1).compact(applied + 5, "x")) << "not applied yet";
  ASSERT_TRUE(c.node(1).propose("after"));
  c.deliver();

  // Node 3 needs entry 2, which the leader no longer has: it must get the snapshot.
  int snapshots_sent = 0;
  c.heal();
  for (int i = 0; i < 5; ++i) {
    c.tick(1);
    c.deliver([&](const Message& m) {
      if (m.type == MessageType::kSnapshot) ++snapshots_sent;
      return true;
    });
  }
  EXPECT_GE(snapshots_sent, 1);
  ASSERT_EQ(c.installed(3).size(), 1u);
  EXPECT_EQ(c.installed(3)[0].index, applied);
  EXPECT_EQ(c.installed(3)[0].data, c.node(1).snapshot().data);
  EXPECT_EQ(c.node(3).log().snapshot_index(), applied);
  EXPECT_EQ(c.node(3).log().committed(), c.node(1).log().committed());
  ASSERT_FALSE(c.applied(3).empty());
  EXPECT_EQ(c.applied(3).back().data, "after") << "entries after the snapshot are applied";
  EXPECT_EQ(c.progress_match(1, 3), c.node(1).log().last_index());

  // A restart from the durable snapshot plus the entries after it.
  c.crash(3);
  ASSERT_EQ(c.restart(3), "");
  EXPECT_EQ(c.node(3).log().snapshot_index(), applied);
  EXPECT_EQ(c.node(3).log().applied(), applied);
  EXPECT_EQ(c.node(3).log().last_index(), c.node(1).log().last_index());
}

TEST(RaftScenario, SnapshotOfAnEntryTheFollowerHasOnlyAdvancesItsCommit) {
  Cluster c(3);
  c.elect(1);
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(c.node(1).propose(std::to_string(i) + "w"));
  }
  c.deliver();
  ASSERT_TRUE(c.compact(1));
  const Snapshot snap = c.node(1).snapshot();
  // Node 2 already holds every entry: a (duplicated, late) snapshot must not wipe its log.
  Message m;
  m.type = MessageType::kSnapshot;
  m.from = 1;
  m.to = 2;
  m.term = c.node(1).term();
  m.snapshot = snap;
  const std::uint64_t last = c.node(2).log().last_index();
  c.node(2).step(m);
  c.flush(2);
  EXPECT_TRUE(c.installed(2).empty());
  EXPECT_EQ(c.node(2).log().last_index(), last);
  EXPECT_EQ(c.node(2).log().snapshot_index(), 0u);
}

TEST(RaftScenario, LeaseReadNeedsNoRoundTripAndExpires) {
  Cluster c(3, [](Config& cfg) {
    cfg.lease_reads = true;
    cfg.lease_ticks = 4;
  });
  c.elect(1);
  ASSERT_TRUE(c.node(1).propose("x"));
  c.deliver();
  c.tick_all(1);  // a heartbeat round: the lease starts at its send tick
  ASSERT_TRUE(c.node(1).read_index(7));
  c.flush(1);
  ASSERT_EQ(c.reads(1).size(), 1u) << "answered from the lease, no heartbeat round";
  EXPECT_EQ(c.reads(1)[0].context, 7u);
  EXPECT_EQ(c.node(1).lease_reads_served(), 1u);

  // Cut off from both followers, the leader's lease runs out after lease_ticks of its ticks;
  // then reads need a quorum round again (which cannot happen here).
  c.isolate(1);
  c.tick(1, 4);
  c.deliver();
  ASSERT_TRUE(c.node(1).read_index(8));
  c.deliver();
  EXPECT_EQ(c.reads(1).size(), 1u) << "no read served after the lease expired";
  EXPECT_EQ(c.node(1).lease_reads_served(), 1u);
}

TEST(RaftScenario, LeaseIsOffOnceALeadershipTransferStarted) {
  Cluster c(3, [](Config& cfg) { cfg.lease_reads = true; });
  c.elect(1);
  ASSERT_TRUE(c.node(1).propose("x"));
  c.deliver();
  c.tick_all(1);
  c.cut(1, 2);  // keep the transfer from finishing
  ASSERT_TRUE(c.node(1).transfer_leadership(2));
  (void)c.node(1).read_index(9);  // falls back to a ReadIndex round
  c.flush(1);
  EXPECT_EQ(c.node(1).lease_reads_served(), 0u);
}

TEST(RaftScenario, RestartedNodeWithLeasesRefusesVotesForAnElectionTimeout) {
  Cluster c(3, [](Config& cfg) {
    cfg.lease_reads = true;
    cfg.pre_vote = false;
  });
  c.elect(1);
  c.crash(3);
  ASSERT_EQ(c.restart(3), "");
  const std::uint64_t term = c.node(3).term();
  Message m;
  m.type = MessageType::kVote;
  m.from = 2;
  m.to = 3;
  m.term = term + 1;
  m.index = c.node(2).log().last_index();
  m.log_term = c.node(2).log().last_term();
  c.node(3).step(m);
  EXPECT_EQ(c.node(3).term(), term) << "the vote request was ignored";
  EXPECT_EQ(c.node(3).vote(), c.disk(3).hard_state->vote);
}

using Kind = ConfChange::Kind;

TEST(RaftMembership, ConfChangeEncodingRoundTripsAndRejectsGarbage) {
  for (auto k : {Kind::kAddVoter, Kind::kAddLearner, Kind::kRemove}) {
    const ConfChange cc{k, 42};
    EXPECT_EQ(ConfChange::decode(cc.encode()), cc);
  }
  for (const char* bad : {"", "voter", "voter ", "voter x", "mayor 3", "remove 0", "voter 1 2"}) {
    EXPECT_FALSE(ConfChange::decode(bad)) << bad;
  }
}

TEST(RaftMembership, LearnerCatchesUpWithoutVotingThenIsPromoted) {
  Cluster c(3);
  c.elect(1);
  for (int i = 0; i < 5; ++i)
    ASSERT_TRUE(c.node(1).propose(std::to_string(i) + "w"));
  c.deliver();
  c.add_host(4);
  EXPECT_FALSE(c.node(4).is_voter(4));
  ASSERT_TRUE(c.node(1).propose_conf_change({Kind::kAddLearner, 4}));
  EXPECT_FALSE(c.node(1).propose_conf_change({Kind::kAddVoter, 5})) << "one change at a time";
  c.deliver();
  c.tick_all(2);
  EXPECT_TRUE(c.node(1).is_learner(4));
  EXPECT_EQ(c.node(4).log().committed(), c.node(1).log().committed()) << "the learner caught up";
  EXPECT_TRUE(c.node(4).is_learner(4)) << "it applied its own addition";
  // A learner never campaigns and never counts: with two voters down, nothing commits.
  c.tick(4, 100);
  EXPECT_NE(c.node(4).role(), Role::kLeader);
  c.isolate(2);
  c.isolate(3);
  const std::uint64_t commit = c.node(1).log().committed();
  ASSERT_TRUE(c.node(1).propose("needs a voter quorum"));
  c.deliver();
  EXPECT_EQ(c.node(1).log().committed(), commit) << "the learner's ack must not commit";
  c.heal();
  c.tick_all(2);
  EXPECT_GT(c.node(1).log().committed(), commit);

  ASSERT_TRUE(c.node(1).propose_conf_change({Kind::kAddVoter, 4}));
  c.deliver();
  c.tick_all(1);
  for (NodeId v : {1, 2, 3, 4}) {
    EXPECT_TRUE(c.node(v).is_voter(4)) << v;
    EXPECT_FALSE(c.node(v).is_learner(4)) << v;
    EXPECT_EQ(c.node(v).conf().voters, (std::vector<NodeId>{1, 2, 3, 4})) << v;
  }
  // Four voters: a quorum is three. With 2 and 3 cut off, 1 and 4 cannot commit.
  c.isolate(2);
  c.isolate(3);
  const std::uint64_t commit4 = c.node(1).log().committed();
  ASSERT_TRUE(c.node(1).propose("needs 3 of 4"));
  c.deliver();
  EXPECT_EQ(c.node(1).log().committed(), commit4);
  c.heal();
  c.tick_all(2);
  EXPECT_GT(c.node(1).log().committed(), commit4);
}

TEST(RaftMembership, RemovingTheLeaderHandsOverToTheRest) {
  Cluster c(3);
  c.elect(1);
  ASSERT_TRUE(c.node(1).propose("x"));
  c.deliver();
  EXPECT_FALSE(c.node(1).propose_conf_change({Kind::kRemove, 9})) << "not a member";
  EXPECT_FALSE(c.node(1).propose_conf_change({Kind::kAddVoter, 2})) << "already a voter";
  EXPECT_FALSE(c.node(1).propose_conf_change({Kind::kAddLearner, 3})) << "no demotion";
  ASSERT_TRUE(c.node(1).propose_conf_change({Kind::kRemove, 1}));
  c.deliver();
  EXPECT_NE(c.node(1).role(), Role::kLeader) << "a leader that removed itself steps down";
  EXPECT_FALSE(c.node(1).is_voter(1));
  for (int i = 0; i < 60 && (c.leader() == kNone || c.leader() == 1); ++i)
    c.tick_all();
  const NodeId lead = c.leader();
  ASSERT_TRUE(lead == 2 || lead == 3) << lead;
  EXPECT_EQ(c.node(lead).conf().voters, (std::vector<NodeId>{2, 3}));
  // The removed node never campaigns again.
  const std::uint64_t term = c.node(lead).term();
  c.tick(1, 100);
  c.deliver();
  EXPECT_EQ(c.leader(), lead);
  EXPECT_EQ(c.node(lead).term(), term);
  ASSERT_TRUE(c.node(lead).propose("after"));
  c.deliver();
  EXPECT_EQ(c.applied(2).back().data, "after");
  EXPECT_EQ(c.applied(3).back().data, "after");
}

TEST(RaftMembership, ANewLeaderWaitsForItsTermBeforeAChange) {
  // Before the no-op of the term is committed, no change is accepted (the single-server
  // change bug: a change must not be based on a configuration from an older term).
  Cluster d(3);
  d.node(1).campaign();
  d.deliver([](const Message& m) { return m.type != MessageType::kAppendResp; });
  ASSERT_EQ(d.node(1).role(), Role::kLeader);
  EXPECT_FALSE(d.node(1).propose_conf_change({Kind::kAddLearner, 4}));
  d.deliver();
  d.tick_all(1);
  EXPECT_TRUE(d.node(1).propose_conf_change({Kind::kAddLearner, 4}));
}

TEST(RaftMembership, MembershipSurvivesRestartAndTravelsInSnapshots) {
  Cluster c(3);
  c.elect(1);
  c.add_host(4);
  ASSERT_TRUE(c.node(1).propose_conf_change({Kind::kAddVoter, 4}));
  c.deliver();
  c.tick_all(1);
  ASSERT_TRUE(c.node(2).is_voter(4));
  // Restart replays the log: the change is applied again from the durable entries.
  c.crash(2);
  ASSERT_EQ(c.restart(2), "");
  c.flush(2);
  EXPECT_TRUE(c.node(2).is_voter(4));
  // A snapshot carries the membership; a node that joins after compaction learns it there.
  for (int i = 0; i < 5; ++i)
    ASSERT_TRUE(c.node(1).propose(std::to_string(i) + "w"));
  c.deliver();
  ASSERT_TRUE(c.compact(1));
  EXPECT_EQ(c.node(1).snapshot().conf.voters, (std::vector<NodeId>{1, 2, 3, 4}));
  c.add_host(5);
  ASSERT_TRUE(c.node(1).propose_conf_change({Kind::kAddLearner, 5}));
  c.deliver();
  c.tick_all(2);
  ASSERT_EQ(c.installed(5).size(), 1u) << "the joiner got the snapshot";
  EXPECT_EQ(c.node(5).conf().voters, (std::vector<NodeId>{1, 2, 3, 4}));
  EXPECT_TRUE(c.node(5).is_learner(5));
  c.crash(5);
  ASSERT_EQ(c.restart(5), "");
  c.flush(5);
  EXPECT_TRUE(c.node(5).is_learner(5)) << "restored from the snapshot plus the log after it";
}

TEST(RaftScenario, ProposeBatchSendsOneAppendPerFollower) {
  Cluster c(3);
  c.elect(1);
  EXPECT_FALSE(c.node(2).propose_batch({"a"})) << "followers refuse";
  EXPECT_FALSE(c.node(1).propose_batch({})) << "empty batch";
  int appends = 0;
  auto first = c.node(1).propose_batch({"a", "b", "c"});
  ASSERT_TRUE(first);
  c.deliver([&](const Message& m) {
    if (m.type == MessageType::kAppend && m.entries.size() == 3) ++appends;
    return true;
  });
  EXPECT_EQ(appends, 2);
  for (NodeId v : {1, 2, 3}) {
    ASSERT_GE(c.applied(v).size(), 3u);
    const auto& a = c.applied(v);
    EXPECT_EQ(a[a.size() - 3].data, "a");
    EXPECT_EQ(a[a.size() - 3].index, *first);
    EXPECT_EQ(a.back().data, "c");
  }
}

TEST(RaftScenario, SameInputsSameOutputs) {
  auto run = [] {
    Cluster c(5, [](Config& cfg) { cfg.seed = 99; });
    for (int i = 0; i < 40 && c.leader() == kNone; ++i)
      c.tick_all();
    return std::make_pair(c.leader(), c.node(1).term());
  };
  EXPECT_EQ(run(), run());
}

}  // namespace
}  // namespace ringwire::raft::test
