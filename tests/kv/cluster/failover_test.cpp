// Leader crash with writes in flight, and a paused (SIGSTOP) leader that must not serve stale
// reads or lead writes after it wakes up.
#include <map>
#include <mutex>

#include "cluster_fixture.hpp"

namespace ringwire::kv::cluster_test {
namespace {

class FailoverTest : public ::testing::Test {
 protected:
  void SetUp() override { RINGWIRE_REQUIRE_KV_SERVER(); }
};

struct Acked {
  std::string value;
  int attempts = 0;  // puts issued for this key (each retry after a failure is a new request)
};

TEST_F(FailoverTest, LeaderKill9WithWritesInFlight) {
  Cluster c;
  c.start_all();
  const auto leader = c.wait_leader(15s);
  ASSERT_TRUE(leader.has_value());

  constexpr int kThreads = 6;
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> acks{0};
  std::atomic<std::int64_t> last_ack_ns{0};
  std::mutex mu;
  std::map<std::string, Acked> acked;  // every acknowledged write
  std::vector<std::string> errors;
  const auto t0 = SteadyClock::now();
  std::vector<std::unique_ptr<client::Client>> clients;
  std::vector<std::thread> writers;
  // Stops and joins the writers on every way out of the test (a failed ASSERT included).
  struct Joiner {
    std::atomic<bool>& stop;
    std::vector<std::thread>& threads;
    ~Joiner() {
      stop.store(true);
      for (auto& t : threads) {
        if (t.joinable()) t.join();
      }
    }
  } joiner{stop, writers};
  for (int t = 0; t < kThreads; ++t) {
    // Start on different members; 1 s per attempt so a dead endpoint is left quickly.
    std::vector<std::size_t> order;
    for (std::size_t k = 0; k < c.size(); ++k)
      order.push_back((static_cast<std::size_t>(t) + k) % c.size());
    clients.push_back(c.client(order, 1s, t));
    ASSERT_NE(clients.back(), nullptr);
  }
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([&, t] {
      client::Client& cl = *clients[static_cast<std::size_t>(t)];
      for (int j = 0; !stop.load(); ++j) {
        const std::string key = "t" + std::to_string(t) + "/k" + std::to_string(j);
        const std::string value = "v" + std::to_string(j) + "-" + std::to_string(t);
        int attempts = 0;
        for (;;) {
          ++attempts;
          auto r = cl.put(key, value);
          if (r) {
            std::lock_guard lk(mu);
            acked[key] = Acked{value, attempts};
            acks.fetch_add(1);
            last_ack_ns.store(
                std::chrono::duration_cast<std::chrono::nanoseconds>(SteadyClock::now() - t0)
                    .count());
            break;
          }
          if (stop.load()) break;  // outcome unknown: not counted as acknowledged
          if (attempts > 50) {
            std::lock_guard lk(mu);
            errors.push_back(key + ": " + r.status().to_string());
            break;
          }
          std::this_thread::sleep_for(20ms);
        }
      }
    });
  }

  // Let the writes flow, then crash the leader mid-stream.
  ASSERT_TRUE(test_eventually([&] { return acks.load() >= 300; }, 20s)) << "writes too slow";
  const std::uint64_t acks_at_kill = acks.load();
  const auto kill_at = SteadyClock::now();
  c.hard_kill(*leader);
  const auto new_leader = c.wait_leader(10s, {*leader});
  const auto elected_at = SteadyClock::now();
  ASSERT_TRUE(new_leader.has_value()) << "no new leader within 10 s";
  EXPECT_NE(*new_leader, *leader);
  const double failover = seconds_between(kill_at, elected_at);
  // Writes resume: wait for 300 more acks after the election.
  const std::uint64_t acks_at_election = acks.load();
  const bool resumed = test_eventually([&] { return acks.load() >= acks_at_election + 300; }, 20s);
  const auto resumed_at = SteadyClock::now();
  stop.store(true);
  for (auto& w : writers)
    w.join();
  writers.clear();
  std::printf(
      "[ failover ] leader %s killed after %llu acks; new leader %s elected in %.3f s "
      "(write path back after %.3f s); %llu writes acknowledged in total\n",
      c.member(*leader).name.c_str(), static_cast<unsigned long long>(acks_at_kill),
      c.member(*new_leader).name.c_str(), failover, seconds_between(kill_at, resumed_at),
      static_cast<unsigned long long>(acks.load()));
  EXPECT_TRUE(resumed) << "writes did not resume after the failover";
  EXPECT_LT(failover, 5.0) << "failover slower than a few seconds";
  EXPECT_TRUE(errors.empty()) << errors.size() << " writes failed 50 times, first: " << errors[0];

  // Every acknowledged write is on both survivors, with its value; a key was applied at most
  // as many times as it was sent (kv_client's retries of one request are applied once).
  std::vector<std::size_t> live;
  for (std::size_t i = 0; i < c.size(); ++i) {
    if (i != *leader) live.push_back(i);
  }
  auto lin = c.client(live, 5s);
  ASSERT_NE(lin, nullptr);
  auto probe = lin->put("probe", "after");  // a write after all others: its revision bounds them
  ASSERT_TRUE(probe) << probe.status().to_string();
  const std::int64_t final_rev = probe->header.revision;
  ASSERT_TRUE(c.wait_revision(live, final_rev, 10s)) << "survivors did not converge";
  auto check_member = [&](std::size_t m) {
    std::size_t missing = 0;
    std::size_t wrong = 0;
    std::string first;
    for (int t = 0; t < kThreads; ++t) {
      const std::string prefix = "t" + std::to_string(t) + "/";
      auto dump = c.local_dump(m, prefix);
      ASSERT_TRUE(dump.has_value()) << c.member(m).name;
      for (const auto& [k, a] : acked) {
        if (k.rfind(prefix, 0) != 0) continue;
        auto it = dump->find(k);
        if (it == dump->end()) {
          if (missing++ == 0 && first.empty()) first = "missing " + k;
        } else if (it->second != a.value) {
          if (wrong++ == 0 && first.empty()) first = k + " = " + it->second + ", want " + a.value;
        }
      }
    }
    EXPECT_EQ(missing, 0u) << c.member(m).name << ": " << first;
    EXPECT_EQ(wrong, 0u) << c.member(m).name << ": " << first;
  };
  for (auto m : live)
    check_member(m);
  {
    std::size_t over = 0;
    std::string first;
    for (int t = 0; t < kThreads; ++t) {
      auto r = lin->get("t" + std::to_string(t) + "/", client::GetOptions{.prefix = true});
      ASSERT_TRUE(r) << r.status().to_string();
      for (const auto& kv : r->kvs) {
        auto it = acked.find(kv.key);
        if (it != acked.end() && kv.version > it->second.attempts) {
          if (over++ == 0) {
            first = kv.key + " version " + std::to_string(kv.version) + " after " +
                    std::to_string(it->second.attempts) + " put(s)";
          }
        }
      }
    }
    EXPECT_EQ(over, 0u) << "a retried write was applied twice: " << first;
  }

  // The killed member comes back with its data dir and catches up.
  c.start(*leader);
  ASSERT_TRUE(c.wait_serving(*leader, 20s));
  ASSERT_TRUE(c.wait_revision({*leader}, final_rev, 20s)) << "restarted member did not catch up";
  check_member(*leader);
}

// Paused leader: while it sleeps the others elect a new leader and take writes. When it wakes
// up it still believes it leads until it hears otherwise; it must not answer a linearizable
// read with the old value, nor commit a write on its own.
void split_brain_round(bool unsafe_reads, int* stale_reads) {
  ClusterOptions o;
  if (unsafe_reads) o.extra_args = {"--unsafe-local-reads"};
  Cluster c(o);
  c.start_all();
  const auto old_leader = c.wait_leader(15s);
  ASSERT_TRUE(old_leader.has_value());
  std::vector<std::size_t> others;
  for (std::size_t i = 0; i < c.size(); ++i) {
    if (i != *old_leader) others.push_back(i);
  }
  auto majority = c.client(others, 3s);
  ASSERT_NE(majority, nullptr);
  ASSERT_TRUE(majority->put("sb", "old"));
  // Connect to the old leader before pausing it, so requests reach its socket while it sleeps.
  auto old_kv = c.kv(*old_leader);
  ASSERT_TRUE(c.status(*old_leader, 2s).has_value());
  {
    grpc::ClientContext ctx;
    Cluster::set_deadline(ctx, 2s);
    epb::RangeRequest req;
    req.set_key("sb");
    epb::RangeResponse resp;
    ASSERT_TRUE(old_kv->Range(&ctx, req, &resp).ok());
    ASSERT_EQ(resp.kvs_size(), 1);
    ASSERT_EQ(resp.kvs(0).value(), "old");
  }

  c.pause(*old_leader);
  const auto new_leader = c.wait_leader(15s, {*old_leader});
  ASSERT_TRUE(new_leader.has_value()) << "no leader among the other two";
  auto np = majority->put("sb", "new");
  ASSERT_TRUE(np) << np.status().to_string();
  const std::uint64_t new_term = c.status(*new_leader, 2s)->raftterm();

  // Requests to the sleeping old leader, then wake it.
  grpc::Status read_status;
  epb::RangeResponse read_resp;
  grpc::Status put_status;
  epb::PutResponse put_resp;
  std::thread reader([&] {
    grpc::ClientContext ctx;
    Cluster::set_deadline(ctx, 3s);
    epb::RangeRequest req;
    req.set_key("sb");
    read_status = old_kv->Range(&ctx, req, &read_resp);
  });
  std::thread writer([&] {
    grpc::ClientContext ctx;
    Cluster::set_deadline(ctx, 3s);
    ctx.AddMetadata("ringwire-client-id", "4242");
    ctx.AddMetadata("ringwire-seq", "1");
    epb::PutRequest req;
    req.set_key("sb-old-leader");
    req.set_value("written-via-old-leader");
    put_status = old_kv->Put(&ctx, req, &put_resp);
  });
  std::this_thread::sleep_for(200ms);
  c.resume(*old_leader);
  reader.join();
  writer.join();
  // And a read right after it woke.
  grpc::Status read2_status;
  epb::RangeResponse read2_resp;
  {
    grpc::ClientContext ctx;
    Cluster::set_deadline(ctx, 3s);
    epb::RangeRequest req;
    req.set_key("sb");
    read2_status = old_kv->Range(&ctx, req, &read2_resp);
  }
  auto stale = [&](const grpc::Status& s, const epb::RangeResponse& r) {
    return s.ok() && (r.kvs_size() != 1 || r.kvs(0).value() != "new");
  };
  *stale_reads =
      (stale(read_status, read_resp) ? 1 : 0) + (stale(read2_status, read2_resp) ? 1 : 0);
  if (unsafe_reads) return;

  EXPECT_FALSE(stale(read_status, read_resp))
      << "old leader served a stale linearizable read: " << read_resp.DebugString();
  EXPECT_FALSE(stale(read2_status, read2_resp))
      << "old leader served a stale linearizable read: " << read2_resp.DebugString();
  std::printf("[ split-brain ] read sent while paused: %s; put: %s\n",
              read_status.ok() ? "new value" : read_status.error_message().c_str(),
              put_status.ok() ? "ok" : put_status.error_message().c_str());

  // The write sent to the old leader: failed, or applied exactly once under the new term.
  ASSERT_TRUE(c.wait_leader(15s).has_value());
  std::optional<client::GetResult> g;
  for (int i = 0; i < 50; ++i) {
    auto r = majority->get("sb-old-leader");
    if (r) {
      g = std::move(r.value());
      if (!put_status.ok() || !g->kvs.empty()) break;
    }
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_TRUE(g.has_value());
  if (put_status.ok()) {
    ASSERT_EQ(g->kvs.size(), 1u) << "acknowledged put is not on the majority";
    EXPECT_EQ(g->kvs[0].value, "written-via-old-leader");
    EXPECT_EQ(g->kvs[0].version, 1) << "applied more than once";
    EXPECT_EQ(g->kvs[0].mod_revision, put_resp.header().revision());
    EXPECT_GE(put_resp.header().raft_term(), new_term) << "acknowledged in the old term";
    EXPECT_GT(put_resp.header().revision(), np->header.revision);
  } else if (!g->kvs.empty()) {
    // Outcome unknown to the client, but if applied then once, after the new leader's write.
    EXPECT_EQ(g->kvs[0].version, 1);
    EXPECT_GT(g->kvs[0].mod_revision, np->header.revision);
  }
  // The final value of sb is the new one everywhere, the old leader included.
  auto probe = majority->put("sb-probe", "x");
  ASSERT_TRUE(probe);
  ASSERT_TRUE(c.wait_revision({0, 1, 2}, probe->header.revision, 10s));
  for (std::size_t i = 0; i < c.size(); ++i) {
    auto d = c.local_dump(i, "sb");
    ASSERT_TRUE(d.has_value());
    EXPECT_EQ((*d)["sb"], "new") << c.member(i).name;
  }
}

TEST_F(FailoverTest, PausedOldLeaderServesNoStaleReadAndLeadsNoWrite) {
  int stale = 0;
  split_brain_round(false, &stale);
  EXPECT_EQ(stale, 0);
}

// The same scenario with --unsafe-local-reads (no ReadIndex): shows that the check above can
// fail. The old leader answers from its own state the moment it wakes up.
TEST_F(FailoverTest, UnsafeLocalReadsAreCaughtServingStaleData) {
  int stale = 0;
  split_brain_round(true, &stale);
  if (HasFatalFailure()) return;
  EXPECT_GE(stale, 1) << "the split-brain check did not catch a server that reads locally";
}

}  // namespace
}  // namespace ringwire::kv::cluster_test
