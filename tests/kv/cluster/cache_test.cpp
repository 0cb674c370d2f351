// The shared-memory read cache against a real 3-member cluster: kv_cache agents and
// kv_cache_probe reader processes (tests/kv/cluster/cache_probe_main.cpp).
//   * Coherence: a writer updates keys while reader processes read through the cache; every
//     read (hit or RPC) is checked against the writes' acknowledgement times: a value is stale
//     if a newer write to its key was acknowledged more than max_staleness before the read
//     started. Hits of one key never go backwards, and every reader converges to the final
//     values once the writer stops.
//   * kill -9 of the agent while readers run: hits stop within the bound, reads fall back to
//     RPC without hanging, a new agent takes the segment over and hits resume.
//   * kill -9 of a reader: the others and the agent are unaffected; its counter slot is reaped.
//   * a takeover below the cluster's compaction: the table is cleared and refilled.
//   * the whole cluster unreachable: reads turn stale within the bound, hits resume after.
#include <fcntl.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "cluster_fixture.hpp"
#include "ringwire/core/clock.hpp"
#include "ringwire/kv/cache/cache_reader.hpp"

namespace ringwire::kv::cluster_test {
namespace {

std::string bin(const std::string& name) {
  return std::string(RINGWIRE_BIN_DIR) + "/" + name;
}

// A child process with its stdout and stderr in files; SIGKILLed and reaped on destruction.
class Child {
 public:
  Child(std::vector<std::string> args, fs::path out, fs::path err)
      : out_(std::move(out)), err_(std::move(err)) {
    std::vector<char*> argv;
    for (auto& s : args)
      argv.push_back(s.data());
    argv.push_back(nullptr);
    const int ofd = ::open(out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    const int efd = ::open(err_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    const pid_t parent = ::getpid();
    std::fflush(nullptr);
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(120);
      ::dup2(ofd, 1);
      ::dup2(efd, 2);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(ofd);
    ::close(efd);
  }
  ~Child() { kill9(); }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  pid_t pid() const { return pid_; }
  void kill9() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    wait(10s);
  }
  // Exit code, -signal, or nullopt if it did not exit in time.
  std::optional<int> wait(Ms timeout) {
    const auto until = SteadyClock::now() + timeout;
    while (pid_ > 0) {
      int st = 0;
      const pid_t r = ::waitpid(pid_, &st, WNOHANG);
      if (r == pid_) {
        code_ = WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
        pid_ = -1;
        break;
      }
      if (SteadyClock::now() >= until) return std::nullopt;
      std::this_thread::sleep_for(5ms);
    }
    return code_;
  }
  void terminate() {
    if (pid_ > 0) ::kill(pid_, SIGTERM);
  }
  std::string out() const { return read_file(out_); }
  std::string err() const { return read_file(err_); }

 private:
  pid_t pid_ = -1;
  int code_ = -1000;
  fs::path out_, err_;
};

struct Write {
  std::int64_t revision;
  std::uint64_t ack_ns;
};

class CacheClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    RINGWIRE_REQUIRE_KV_SERVER();
    name_ = "cachetest." + std::to_string(::getpid()) + "." + std::to_string(counter_++);
  }
  void TearDown() override {
    // Nothing of ours may stay in /dev/shm, even after kill -9 of an agent.
    for (const auto& n : {name_, kv::cache::fill_mailbox_name(name_)}) {
      if (shm::inspect_segment(n)) {
        ADD_FAILURE() << "segment " << n << " left behind";
        (void)shm::remove_segment(n);
      }
    }
  }

  // 3 members without fsync: the cache tests are about the cache, not the disk.
  static ClusterOptions fast_cluster() {
    ClusterOptions co;
    co.no_fsync = true;
    return co;
  }

  // SIGTERM: the agent must exit 0 within 10 s (and remove its segments, checked in TearDown).
  static void stop_agent(Child& agent) {
    agent.terminate();
    auto code = agent.wait(10s);
    ASSERT_TRUE(code.has_value()) << "the agent did not stop on SIGTERM";
    EXPECT_EQ(*code, 0) << agent.err();
  }

  std::unique_ptr<Child> start_agent(Cluster& c, const fs::path& dir, int n) {
    auto a = std::make_unique<Child>(
        std::vector<std::string>{bin("kv_cache"), "--cluster", c.endpoints_csv(), "--name", name_,
                                 "--capacity", "4096", "--heartbeat-ms", "20", "--json"},
        dir / ("agent" + std::to_string(n) + ".out"), dir / "agent.log");
    // Started = its JSON line is out (the segment exists).
    EXPECT_TRUE(
        test_eventually([&] { return a->out().find("\"status\"") != std::string::npos; }, 10s))
        << a->err();
    return a;
  }

  std::unique_ptr<Child> start_probe(Cluster& c, const fs::path& dir, int n, int duration_ms) {
    return std::make_unique<Child>(
        std::vector<std::string>{bin("kv_cache_probe"), "--cache", name_, "--endpoints",
                                 c.endpoints_csv(), "--keys", std::to_string(kKeys),
                                 "--duration-ms", std::to_string(duration_ms), "--max-staleness-ms",
                                 std::to_string(kStalenessMs), "--out",
                                 (dir / ("probe" + std::to_string(n) + ".runs")).string()},
        dir / ("probe" + std::to_string(n) + ".out"), dir / "probes.log");
  }

  bool serving() {
    kv::cache::ReaderOptions ro;
    ro.request_fills = false;
    kv::cache::CacheReader r(name_, ro);
    auto s = r.stats();
    return s && s->agent_state == "serving" && s->age_ms < 1000;
  }

  // Checks one probe's runs file against the writes; returns the number of stale reads.
  std::uint64_t check_runs(const fs::path& runs, const std::map<int, std::vector<Write>>& writes,
                           std::string* first) {
    std::ifstream in(runs);
    int k = 0;
    std::int64_t mod = 0;
    std::uint64_t first_ns = 0, last_ns = 0, hits = 0, stale = 0;
    const std::uint64_t bound = static_cast<std::uint64_t>(kStalenessMs) * 1'000'000;
    while (in >> k >> mod >> first_ns >> last_ns >> hits) {
      auto it = writes.find(k);
      if (it == writes.end()) continue;
      // The first write of this key after the value read; it must not have been acknowledged
      // more than `bound` before the last read that still returned the old value.
      for (const auto& w : it->second) {
        if (w.revision <= mod) continue;
        if (w.ack_ns + bound < last_ns) {
          if (stale++ == 0 && first != nullptr)
            *first = "key ck" + std::to_string(k) + " read at mod_revision " + std::to_string(mod) +
                     " " + std::to_string((last_ns - w.ack_ns) / 1000) + " us after revision " +
                     std::to_string(w.revision) + " was acknowledged";
        }
        break;
      }
    }
    return stale;
  }

  static constexpr int kKeys = 64;
  static constexpr int kStalenessMs = 100;
  static inline int counter_ = 0;
  std::string name_;
};

TEST_F(CacheClusterTest, ReadersNeverSeeDataOlderThanTheBoundAndConverge) {
  Cluster c(fast_cluster());
  c.start_all();
  ASSERT_TRUE(c.wait_leader(15s).has_value());
  auto writer = c.client({}, 2s);
  ASSERT_NE(writer, nullptr);
  std::map<int, std::vector<Write>> writes;
  for (int k = 0; k < kKeys; ++k) {
    auto r = writer->put("ck" + std::to_string(k), "init");
    ASSERT_TRUE(r) << r.status().to_string();
    writes[k].push_back({r->header.revision, core::now_ns()});
  }
  auto agent = start_agent(c, c.base_dir(), 0);
  ASSERT_TRUE(test_eventually([&] { return serving(); }, 10s)) << agent->err();

  constexpr int kProbes = 3;
  std::vector<std::unique_ptr<Child>> probes;
  for (int i = 0; i < kProbes; ++i)
    probes.push_back(start_probe(c, c.base_dir(), i, 5000));
  // Writes for ~4 s, one at a time, each timestamped when acknowledged.
  std::mt19937 rng(7);
  const auto until = SteadyClock::now() + 4s;
  std::uint64_t n = 0;
  while (SteadyClock::now() < until) {
    const int k = static_cast<int>(rng() % kKeys);
    auto r = writer->put("ck" + std::to_string(k), "v" + std::to_string(++n));
    ASSERT_TRUE(r) << r.status().to_string();
    writes[k].push_back({r->header.revision, core::now_ns()});
  }
  std::uint64_t total_hits = 0, total_reads = 0;
  for (int i = 0; i < kProbes; ++i) {
    auto code = probes[i]->wait(30s);
    ASSERT_TRUE(code.has_value()) << "probe " << i << " hangs";
    const auto out = probes[i]->out();
    EXPECT_EQ(*code, 0) << out << probes[i]->err();
    auto j = nlohmann::json::parse(out, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << out;
    EXPECT_EQ(j["violations"], 0) << j["first_violation"];
    EXPECT_TRUE(j["converged"]) << out;
    EXPECT_EQ(j["errors"], 0) << out;
    EXPECT_LT(j["slowest_get_us"].get<std::uint64_t>(), 2'000'000u) << out;
    total_hits += j["hit"].get<std::uint64_t>();
    total_reads += j["reads"].get<std::uint64_t>();
    std::string first;
    EXPECT_EQ(check_runs(c.base_dir() / ("probe" + std::to_string(i) + ".runs"), writes, &first),
              0u)
        << first;
  }
  std::cerr << "[ cache ] " << n << " writes, " << total_reads << " reads, " << total_hits
            << " cache hits\n";
  // The cache was really used: most reads were hits (the rest: first misses, fills).
  EXPECT_GT(total_hits * 2, total_reads);
  stop_agent(*agent);
}

TEST_F(CacheClusterTest, AgentKill9ReadersFallBackAndANewAgentTakesOver) {
  Cluster c(fast_cluster());
  c.start_all();
  ASSERT_TRUE(c.wait_leader(15s).has_value());
  auto writer = c.client({}, 2s);
  ASSERT_NE(writer, nullptr);
  std::map<int, std::vector<Write>> writes;
  for (int k = 0; k < kKeys; ++k) {
    auto r = writer->put("ck" + std::to_string(k), "init");
    ASSERT_TRUE(r);
    writes[k].push_back({r->header.revision, core::now_ns()});
  }
  auto agent = start_agent(c, c.base_dir(), 0);
  ASSERT_TRUE(test_eventually([&] { return serving(); }, 10s)) << agent->err();
  std::vector<std::unique_ptr<Child>> probes;
  for (int i = 0; i < 2; ++i)
    probes.push_back(start_probe(c, c.base_dir(), i, 6000));
  const std::uint64_t t_start = core::now_ns();
  auto write_for = [&](Ms d) {
    const auto until = SteadyClock::now() + d;
    int n = 0;
    while (SteadyClock::now() < until) {
      const int k = n++ % kKeys;
      auto r = writer->put("ck" + std::to_string(k), "w" + std::to_string(n));
      ASSERT_TRUE(r);
      writes[k].push_back({r->header.revision, core::now_ns()});
      std::this_thread::sleep_for(2ms);
    }
  };
  write_for(1500ms);
  const std::uint64_t t_kill = core::now_ns();
  agent->kill9();
  write_for(1500ms);  // the agent is dead: readers must not see these go missing for long
  const std::uint64_t t_restart = core::now_ns();
  auto agent2 = start_agent(c, c.base_dir(), 1);
  EXPECT_NE(agent2->out().find("\"took_over\":true"), std::string::npos) << agent2->out();
  ASSERT_TRUE(test_eventually([&] { return serving(); }, 10s)) << agent2->err();
  write_for(1000ms);
  for (int i = 0; i < 2; ++i) {
    auto code = probes[i]->wait(30s);
    ASSERT_TRUE(code.has_value()) << "probe " << i << " hangs";
    const auto out = probes[i]->out();
    EXPECT_EQ(*code, 0) << out << probes[i]->err();
    auto j = nlohmann::json::parse(out, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << out;
    EXPECT_EQ(j["errors"], 0) << out;
    EXPECT_LT(j["slowest_get_us"].get<std::uint64_t>(), 2'000'000u) << out;
    EXPECT_GT(j["stale"].get<std::uint64_t>() + j["unavailable"].get<std::uint64_t>(), 0u)
        << "no read noticed the dead agent: " << out;
    // Hits stop once the dead agent's last confirmation is older than the bound (plus one
    // 250 ms window of slack for where the window edges fall) and resume after the takeover.
    const auto& w = j["hit_windows_250ms"];
    const std::size_t dead_from = (t_kill - t_start) / 250'000'000 + 2;
    const std::size_t dead_to = (t_restart - t_start) / 250'000'000;
    for (std::size_t x = dead_from; x < dead_to && x < w.size(); ++x)
      EXPECT_EQ(w[x].get<std::uint64_t>(), 0u) << "hits while the agent was dead, window " << x;
    std::uint64_t after = 0;
    for (std::size_t x = dead_to + 4; x < w.size(); ++x)
      after += w[x].get<std::uint64_t>();
    EXPECT_GT(after, 0u) << "no hits after the new agent took over: " << out;
    std::string first;
    EXPECT_EQ(check_runs(c.base_dir() / ("probe" + std::to_string(i) + ".runs"), writes, &first),
              0u)
        << first;
  }
  kv::cache::CacheReader r(name_);
  auto s = r.stats();
  ASSERT_TRUE(s);
  EXPECT_EQ(s->takeovers, 1u);
  stop_agent(*agent2);
}

TEST_F(CacheClusterTest, ReaderKill9LeavesOthersAndTheAgentUnaffected) {
  Cluster c(fast_cluster());
  c.start_all();
  ASSERT_TRUE(c.wait_leader(15s).has_value());
  auto writer = c.client({}, 2s);
  ASSERT_NE(writer, nullptr);
  for (int k = 0; k < kKeys; ++k)
    ASSERT_TRUE(writer->put("ck" + std::to_string(k), "init"));
  auto agent = start_agent(c, c.base_dir(), 0);
  ASSERT_TRUE(test_eventually([&] { return serving(); }, 10s)) << agent->err();
  auto victim = start_probe(c, c.base_dir(), 0, 20000);
  auto survivor = start_probe(c, c.base_dir(), 1, 3000);
  std::this_thread::sleep_for(1s);
  // The victim is in its read loop (it reads back to back): killed mid-read, whatever it held.
  victim->kill9();
  for (int n = 0; n < 200; ++n)
    ASSERT_TRUE(writer->put("ck" + std::to_string(n % kKeys), "after" + std::to_string(n)));
  auto code = survivor->wait(30s);
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0) << survivor->out();
  auto j = nlohmann::json::parse(survivor->out(), nullptr, false);
  ASSERT_FALSE(j.is_discarded());
  EXPECT_TRUE(j["converged"]);
  EXPECT_GT(j["hit"].get<std::uint64_t>(), 0u);
  // The agent folds the dead reader's counters into the totals and frees its slot.
  kv::cache::ReaderOptions ro;
  ro.request_fills = false;
  kv::cache::CacheReader r(name_, ro);
  EXPECT_TRUE(test_eventually(
      [&] {
        auto s = r.stats();
        return s && s->readers == 1;  // just us
      },
      5s));
  EXPECT_TRUE(serving());
  stop_agent(*agent);
}

// A new agent that takes over a dead agent's table whose revision the cluster has compacted
// away cannot resume the Watch: it must clear the table (nothing the old agent cached may be
// served) and refill it from reads.
TEST_F(CacheClusterTest, TakeoverBelowTheCompactionClearsTheTableAndRefills) {
  Cluster c(fast_cluster());
  c.start_all();
  const auto leader = c.wait_leader(15s);
  ASSERT_TRUE(leader.has_value());
  auto writer = c.client({}, 2s);
  ASSERT_NE(writer, nullptr);
  for (int k = 0; k < kKeys; ++k)
    ASSERT_TRUE(writer->put("ck" + std::to_string(k), "old"));
  auto agent = start_agent(c, c.base_dir(), 0);
  ASSERT_TRUE(test_eventually([&] { return serving(); }, 10s)) << agent->err();
  kv::cache::CacheReader reader(name_);
  kv::cache::CachedEntry e;
  auto all_hit = [&](const std::string& want) {
    for (int k = 0; k < kKeys; ++k) {
      if (reader.get("ck" + std::to_string(k), e, 200ms) != kv::cache::ReadOutcome::hit ||
          e.value != want)
        return false;
    }
    return true;
  };
  ASSERT_TRUE(test_eventually([&] { return all_hit("old"); }, 10s)) << "the cache did not fill";
  agent->kill9();
  std::int64_t last = 0;
  for (int k = 0; k < kKeys; ++k) {
    auto r = writer->put("ck" + std::to_string(k), "new");
    ASSERT_TRUE(r);
    last = r->header.revision;
  }
  {
    grpc::ClientContext ctx;
    Cluster::set_deadline(ctx, 5s);
    etcdserverpb::CompactionRequest req;
    req.set_revision(last);
    etcdserverpb::CompactionResponse resp;
    const grpc::Status s = c.kv(*leader)->Compact(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  auto agent2 = start_agent(c, c.base_dir(), 1);
  EXPECT_NE(agent2->out().find("\"took_over\":true"), std::string::npos) << agent2->out();
  ASSERT_TRUE(test_eventually([&] { return serving(); }, 10s)) << agent2->err();
  // From here on no read may return the pre-compaction value; the keys come back as fills.
  for (int k = 0; k < kKeys; ++k) {
    const auto o = reader.get("ck" + std::to_string(k), e, 200ms);
    if (o == kv::cache::ReadOutcome::hit) {
      EXPECT_EQ(e.value, "new") << "ck" << k;
    }
  }
  const bool refilled = test_eventually([&] { return all_hit("new"); }, 10s);
  auto s = reader.stats();
  ASSERT_TRUE(s);
  EXPECT_TRUE(refilled) << "the cache did not refill: entries " << s->entries << ", fill requests "
                        << s->fill_requests << ", fills " << s->fills << ", state "
                        << s->agent_state << "; " << agent2->err();
  EXPECT_GE(s->clears, 1u) << "the table was not cleared";
  EXPECT_EQ(s->takeovers, 1u);
  stop_agent(*agent2);
}

// The agent cut off from the whole cluster (every member SIGSTOPped): its confirmations stop,
// so within the staleness bound readers stop getting hits (stale), without anyone telling
// them; when the cluster comes back the agent confirms again and hits resume.
TEST_F(CacheClusterTest, ClusterUnreachableMakesReadsStaleThenHitsResume) {
  Cluster c(fast_cluster());
  c.start_all();
  ASSERT_TRUE(c.wait_leader(15s).has_value());
  auto writer = c.client({}, 2s);
  ASSERT_NE(writer, nullptr);
  ASSERT_TRUE(writer->put("ck0", "v"));
  auto agent = start_agent(c, c.base_dir(), 0);
  ASSERT_TRUE(test_eventually([&] { return serving(); }, 10s)) << agent->err();
  kv::cache::CacheReader reader(name_);
  kv::cache::CachedEntry e;
  ASSERT_TRUE(test_eventually(
      [&] { return reader.get("ck0", e, 100ms) == kv::cache::ReadOutcome::hit; }, 10s));
  for (std::size_t m = 0; m < c.size(); ++m)
    c.pause(m);
  // Every confirmation carries a time from before its heartbeat's cluster read, so none can
  // be younger than the pause: once the bound has passed since, no read may hit. (A slow
  // machine only makes the wait longer, never the check wrong.)
  std::this_thread::sleep_for(110ms);
  EXPECT_EQ(reader.get("ck0", e, 100ms), kv::cache::ReadOutcome::stale) << "a hit past the bound";
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(reader.get("ck0", e, 100ms), kv::cache::ReadOutcome::stale);
  for (std::size_t m = 0; m < c.size(); ++m)
    c.resume(m);
  EXPECT_TRUE(test_eventually(
      [&] { return reader.get("ck0", e, 100ms) == kv::cache::ReadOutcome::hit && e.value == "v"; },
      15s))
      << agent->err();
  stop_agent(*agent);
}

}  // namespace
}  // namespace ringwire::kv::cluster_test
