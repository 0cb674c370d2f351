// Seeded whole-cluster simulation of the Raft core: a time-budgeted seed sweep, determinism,
// and mutation checks proving the simulator catches deliberately broken rules.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "raft/sim.hpp"

namespace ringwire::raft::sim {
namespace {

#ifdef RINGWIRE_RAFT_SANITIZED
constexpr double kDefaultBudgetSeconds = 12;
constexpr std::uint64_t kMinSeeds = 30;
#else
constexpr double kDefaultBudgetSeconds = 45;
constexpr std::uint64_t kMinSeeds = 300;
#endif

std::uint64_t env_u64(const char* name, std::uint64_t def) {
  const char* s = std::getenv(name);
  if (s == nullptr || *s == '\0') return def;
  return std::strtoull(s, nullptr, 10);
}

bool env_flag(const char* name) {
  return env_u64(name, 0) != 0;
}

std::string self_exe() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("raft_sim_test") : p.string();
}

int nodes_for_seed(std::uint64_t seed) {
  return seed % 2 == 0 ? 3 : 5;
}

Options options_for(std::uint64_t seed) {
  Options o;
  o.seed = seed;
  o.nodes =
      static_cast<int>(env_u64("RAFT_NODES", static_cast<std::uint64_t>(nodes_for_seed(seed))));
  o.unsafe_double_vote = env_flag("RAFT_UNSAFE_DOUBLE_VOTE");
  o.unsafe_commit_old_term_by_count = env_flag("RAFT_UNSAFE_OLD_TERM_COMMIT");
  o.storm = env_flag("RAFT_STORM");
  o.unsafe_no_dedup = env_flag("RAFT_UNSAFE_NO_DEDUP");
  o.trace = env_flag("RAFT_TRACE");
  return o;
}

std::string replay_command(std::uint64_t seed, const char* test) {
  return "RAFT_SEED=" + std::to_string(seed) + " " + self_exe() + " --gtest_filter=" + test +
         "   (add RAFT_TRACE=1 for an event trace)";
}

TEST(RaftSim, SeedSweep) {
  const std::uint64_t only = env_u64("RAFT_SEED", 0);
  if (only != 0) {
    const Result r = run_seed(options_for(only));
    ASSERT_FALSE(r.failure) << "seed " << only << ": " << *r.failure;
    std::printf("seed %llu ok: %llu steps, %llu committed, %llu ops, %llu crashes, %llu terms\n",
                static_cast<unsigned long long>(only), static_cast<unsigned long long>(r.steps),
                static_cast<unsigned long long>(r.committed),
                static_cast<unsigned long long>(r.ops), static_cast<unsigned long long>(r.crashes),
                static_cast<unsigned long long>(r.elections));
    return;
  }
  // RINGWIRE_STRESS_SCALE (any value, as in the sanitizer CI jobs) also selects the small budget.
  const char* scale = std::getenv("RINGWIRE_STRESS_SCALE");
  const double def = scale != nullptr && *scale != '\0' ? 12.0 : kDefaultBudgetSeconds;
  const std::uint64_t soak = env_u64("RAFT_SOAK_SECONDS", 0);
  const double budget = soak > 0 ? static_cast<double>(soak) : def;
  const std::uint64_t first = env_u64("RAFT_FIRST_SEED", 1);
  const auto start = std::chrono::steady_clock::now();
  std::uint64_t seeds = 0;
  std::uint64_t committed = 0;
  std::uint64_t ops = 0;
  std::uint64_t crashes = 0;
  std::uint64_t reads_ok = 0;
  std::uint64_t writes_ok = 0;
  std::uint64_t duplicates = 0;
  std::uint64_t snapshots_taken = 0;
  std::uint64_t snapshots_installed = 0;
  std::uint64_t lease_reads = 0;
  for (std::uint64_t seed = first;; ++seed) {
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (seeds >= kMinSeeds && elapsed >= budget) break;
    const Result r = run_seed(options_for(seed));
    ++seeds;
    committed += r.committed;
    ops += r.ops;
    crashes += r.crashes;
    reads_ok += r.reads_ok;
    duplicates += r.duplicates;
    writes_ok += r.writes_ok;
    snapshots_taken += r.snapshots_taken;
    snapshots_installed += r.snapshots_installed;
    lease_reads += r.lease_reads;
    if (r.failure) {
      ADD_FAILURE() << "seed " << seed << " (" << nodes_for_seed(seed)
                    << " nodes) failed: " << *r.failure
                    << "\nreplay: " << replay_command(seed, "RaftSim.SeedSweep");
      return;
    }
  }
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf(
      "raft sim: %llu seeds in %.1f s (%.0f seeds/s); %llu committed entries, %llu client ops "
      "(%llu writes applied, %llu linearizable reads answered, %llu duplicate applies skipped), "
      "%llu crashes; %llu snapshots taken, %llu installed on lagging followers; %llu reads "
      "served from a leader lease\n",
      static_cast<unsigned long long>(seeds), elapsed, static_cast<double>(seeds) / elapsed,
      static_cast<unsigned long long>(committed), static_cast<unsigned long long>(ops),
      static_cast<unsigned long long>(writes_ok), static_cast<unsigned long long>(reads_ok),
      static_cast<unsigned long long>(duplicates), static_cast<unsigned long long>(crashes),
      static_cast<unsigned long long>(snapshots_taken),
      static_cast<unsigned long long>(snapshots_installed),
      static_cast<unsigned long long>(lease_reads));
  // The workload must actually exercise both paths, or the linearizability check is vacuous.
  EXPECT_GT(writes_ok, seeds * 5);
  EXPECT_GT(reads_ok, seeds * 5);
  // Compaction and InstallSnapshot must be exercised too (3 seeds in 4 compact).
  EXPECT_GT(snapshots_taken, seeds);
  EXPECT_GT(snapshots_installed, seeds / 10);
  EXPECT_GT(lease_reads, seeds);
}

TEST(RaftSim, SameSeedSameRun) {
  for (std::uint64_t seed : {7ULL, 8ULL}) {
    const Result a = run_seed(options_for(seed));
    const Result b = run_seed(options_for(seed));
    ASSERT_FALSE(a.failure) << *a.failure;
    EXPECT_EQ(a.steps, b.steps);
    EXPECT_EQ(a.committed, b.committed);
    EXPECT_EQ(a.ops, b.ops);
    EXPECT_EQ(a.crashes, b.crashes);
    EXPECT_EQ(a.elections, b.elections);
    EXPECT_GT(a.committed, 0u);
  }
}

// A mutation: returns the first seed (from 1) whose run fails, or 0 within max_seeds.
template <class Mutate>
std::uint64_t first_detecting_seed(std::uint64_t max_seeds, Mutate mutate, std::string* why) {
  for (std::uint64_t seed = 1; seed <= max_seeds; ++seed) {
    Options o = options_for(seed);
    mutate(o);
    const Result r = run_seed(o);
    if (r.failure) {
      *why = *r.failure;
      return seed;
    }
  }
  return 0;
}

TEST(RaftSimMutation, DoubleVoteIsDetected) {
  std::string why;
  const std::uint64_t seed = first_detecting_seed(
      200, [](Options& o) { o.unsafe_double_vote = true; }, &why);
  ASSERT_NE(seed, 0u) << "voting twice in a term went unnoticed for 200 seeds";
  std::printf("unsafe_double_vote detected at seed %llu: %s\n",
              static_cast<unsigned long long>(seed), why.c_str());
}

TEST(RaftSimMutation, LocalReadsAreNotLinearizable) {
  // Checks the checker: serving reads from any replica's state machine must be caught.
  std::string why;
  const std::uint64_t seed = first_detecting_seed(
      200, [](Options& o) { o.unsafe_local_reads = true; }, &why);
  ASSERT_NE(seed, 0u) << "stale local reads went unnoticed for 200 seeds";
  std::printf("unsafe_local_reads detected at seed %llu: %s\n",
              static_cast<unsigned long long>(seed), why.c_str());
}

TEST(RaftSimMutation, AckingBeforeDurableIsDetected) {
  // Checks the crash model: a disk that loses acknowledged writes must be caught.
  std::string why;
  const std::uint64_t seed = first_detecting_seed(
      200, [](Options& o) { o.unsafe_lying_disk = true; }, &why);
  ASSERT_NE(seed, 0u) << "a lying disk went unnoticed for 200 seeds";
  std::printf("unsafe_lying_disk detected at seed %llu: %s\n",
              static_cast<unsigned long long>(seed), why.c_str());
}

TEST(RaftSimMutation, ApplyingRetriesTwiceIsDetected) {
  // Clients retry timed-out writes with the same (client, seq); without the session table a
  // late copy overwrites newer writes.
  std::string why;
  const std::uint64_t seed = first_detecting_seed(
      2000, [](Options& o) { o.unsafe_no_dedup = true; }, &why);
  ASSERT_NE(seed, 0u) << "applying retried writes twice went unnoticed for 2000 seeds";
  std::printf("unsafe_no_dedup detected at seed %llu: %s\n", static_cast<unsigned long long>(seed),
              why.c_str());
}

TEST(RaftSimMutation, StaleSnapshotIsDetected) {
  // A host whose snapshots record the state one entry behind their index: followers that
  // install one would silently lose a write. The snapshot check must catch it.
  std::string why;
  const std::uint64_t seed = first_detecting_seed(
      200, [](Options& o) { o.unsafe_stale_snapshot = true; }, &why);
  ASSERT_NE(seed, 0u) << "stale snapshots went unnoticed for 200 seeds";
  std::printf("unsafe_stale_snapshot detected at seed %llu: %s\n",
              static_cast<unsigned long long>(seed), why.c_str());
}

TEST(RaftSim, EveryCompactionFrequencyIsSafe) {
  // The same seeds with compaction forced to every entry, every 2, and never.
  for (int every : {1, 2, 0}) {
    for (std::uint64_t seed = 1; seed <= 40; ++seed) {
      Options o = options_for(seed);
      o.compact_every = every;
      const Result r = run_seed(o);
      ASSERT_FALSE(r.failure) << "compact_every " << every << ", seed " << seed << ": "
                              << *r.failure;
      if (every == 0) {
        EXPECT_EQ(r.snapshots_taken, 0u);
      }
    }
  }
}

TEST(RaftSimMutation, LeaseLongerThanTheElectionTimeoutIsDetected) {
  // A leader that keeps serving lease reads after the others may have elected a new leader
  // answers stale reads: the linearizability check must catch it.
  std::string why;
  const std::uint64_t seed = first_detecting_seed(
      2000,
      [](Options& o) {
        o.lease_reads = 1;
        o.unsafe_long_lease = true;
      },
      &why);
  ASSERT_NE(seed, 0u) << "an over-long lease went unnoticed for 2000 seeds";
  std::printf("unsafe_long_lease detected at seed %llu: %s\n",
              static_cast<unsigned long long>(seed), why.c_str());
}

TEST(RaftSim, LeaseReadsAreLinearizable) {
  // The same seeds with leases forced on (where check_quorum is on) and off.
  for (int lease : {1, 0}) {
    for (std::uint64_t seed = 1; seed <= 60; ++seed) {
      Options o = options_for(seed);
      o.lease_reads = lease;
      const Result r = run_seed(o);
      ASSERT_FALSE(r.failure) << "lease " << lease << ", seed " << seed << ": " << *r.failure;
    }
  }
}

TEST(RaftSimMutation, OldTermCommitByCountIsDetected) {
  // The Figure 8 shape needs leaders that die right after election and appends of one entry:
  // the storm profile (also part of the normal sweep, one seed in three) provides both.
  std::string why;
  const std::uint64_t max_seeds = 1000;
  const std::uint64_t survey = env_u64("RAFT_MUTATION_SURVEY", 0);
  if (survey != 0) {
    std::uint64_t hits = 0;
    std::uint64_t events = 0;
    std::uint64_t seeds_with_events = 0;
    for (std::uint64_t seed = 1; seed <= survey; ++seed) {
      Options o = options_for(seed);
      o.storm = true;
      o.unsafe_commit_old_term_by_count = true;
      const Result r = run_seed(o);
      if (r.failure) ++hits;
      events += r.old_term_commits;
      seeds_with_events += r.old_term_commits > 0 ? 1 : 0;
    }
    std::printf(
        "old-term commit mutation: detected by %llu of %llu seeds (%llu seeds with %llu "
        "old-term commits)\n",
        static_cast<unsigned long long>(hits), static_cast<unsigned long long>(survey),
        static_cast<unsigned long long>(seeds_with_events),
        static_cast<unsigned long long>(events));
    return;
  }
  const std::uint64_t seed = first_detecting_seed(
      max_seeds,
      [](Options& o) {
        o.storm = true;
        o.unsafe_commit_old_term_by_count = true;
      },
      &why);
  ASSERT_NE(seed, 0u) << "committing an old-term entry by count went unnoticed for " << max_seeds
                      << " seeds";
  std::printf("unsafe_commit_old_term_by_count detected at seed %llu: %s\n",
              static_cast<unsigned long long>(seed), why.c_str());
}

}  // namespace
}  // namespace ringwire::raft::sim
