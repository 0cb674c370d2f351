// Load: at least 100,000 puts and linearizable gets from 12 client threads against a 3-member
// cluster, every answer checked, then every key checked on every member.
//
// --no-fsync: measured on the shared 2-core machine (load ~16), 20,000 operations ran at
// 527 ops/s with fsync and 1,279 ops/s without; with fsync the 100,000 operations take ~190 s,
// far over this test's ~60 s CI budget. Durability under crashes is the failover and recovery
// tests' job (they keep fsync on). RINGWIRE_KV_LOAD_FSYNC=1 turns fsync back on,
// RINGWIRE_KV_LOAD_OPS overrides the operation count.
#include <map>

#include "cluster_fixture.hpp"

namespace ringwire::kv::cluster_test {
namespace {

class LoadTest : public ::testing::Test {
 protected:
  void SetUp() override { RINGWIRE_REQUIRE_KV_SERVER(); }
};

TEST_F(LoadTest, HundredThousandCheckedOperations) {
  std::uint64_t total_ops = 100000;
  if (const char* e = std::getenv("RINGWIRE_KV_LOAD_OPS"); e != nullptr && *e != '\0')
    total_ops = std::strtoull(e, nullptr, 10);
  constexpr int kThreads = 12;
  constexpr int kKeysPerThread = 200;
  const std::uint64_t iters_per_thread = (total_ops / 2 + kThreads - 1) / kThreads;

  ClusterOptions o;
  o.log_level = "warn";
  o.no_fsync = true;
  if (const char* e = std::getenv("RINGWIRE_KV_LOAD_FSYNC"); e != nullptr && *e != '\0')
    o.no_fsync = std::string(e) == "0";
  Cluster c(o);
  c.start_all();
  ASSERT_TRUE(c.wait_leader(15s).has_value());

  std::vector<std::unique_ptr<client::Client>> clients;
  for (int t = 0; t < kThreads; ++t) {
    std::vector<std::size_t> order;
    for (std::size_t k = 0; k < c.size(); ++k)
      order.push_back((static_cast<std::size_t>(t) + k) % c.size());
    clients.push_back(c.client(order, 5s, t));
    ASSERT_NE(clients.back(), nullptr);
  }
  std::atomic<std::uint64_t> ops{0};
  std::atomic<std::uint64_t> failed{0};
  std::atomic<std::uint64_t> wrong{0};
  std::mutex mu;
  std::string first_problem;
  std::vector<std::map<std::string, std::string>> last(kThreads);
  auto note = [&](const std::string& what) {
    std::lock_guard lk(mu);
    if (first_problem.empty()) first_problem = what;
  };
  const auto t0 = SteadyClock::now();
  std::vector<std::thread> ws;
  for (int t = 0; t < kThreads; ++t) {
    ws.emplace_back([&, t] {
      auto& cl = *clients[static_cast<std::size_t>(t)];
      auto& mine = last[static_cast<std::size_t>(t)];
      for (std::uint64_t i = 0; i < iters_per_thread; ++i) {
        const std::string key =
            "load/" + std::to_string(t) + "/" + std::to_string(i % kKeysPerThread);
        const std::string value = std::to_string(t) + ":" + std::to_string(i);
        auto p = cl.put(key, value);
        ops.fetch_add(1, std::memory_order_relaxed);
        if (!p) {
          failed.fetch_add(1);
          note("put " + key + ": " + p.status().to_string());
          continue;
        }
        mine[key] = value;
        // Only this thread writes its keys: a linearizable get must return this value.
        auto g = cl.get(key);
        ops.fetch_add(1, std::memory_order_relaxed);
        if (!g) {
          failed.fetch_add(1);
          note("get " + key + ": " + g.status().to_string());
        } else if (g->kvs.size() != 1 || g->kvs[0].value != value ||
                   g->kvs[0].mod_revision != p->header.revision) {
          wrong.fetch_add(1);
          note("get " + key + " returned " + (g->kvs.empty() ? "nothing" : g->kvs[0].value) +
               ", want " + value);
        }
      }
    });
  }
  for (auto& w : ws)
    w.join();
  const double secs = seconds_between(t0, SteadyClock::now());
  std::printf(
      "[ load ] %llu operations (puts + linearizable gets, %d threads, fsync %s) in "
      "%.2f s: %.0f ops/s\n",
      static_cast<unsigned long long>(ops.load()), kThreads, o.no_fsync ? "off" : "on", secs,
      static_cast<double>(ops.load()) / secs);
  EXPECT_GE(ops.load(), total_ops);
  EXPECT_EQ(failed.load(), 0u) << first_problem;
  EXPECT_EQ(wrong.load(), 0u) << first_problem;

  // Final check of every key on every member.
  auto probe = clients[0]->put("load-probe", "end");
  ASSERT_TRUE(probe);
  ASSERT_TRUE(c.wait_revision({0, 1, 2}, probe->header.revision, 20s));
  for (std::size_t m = 0; m < c.size(); ++m) {
    std::size_t bad = 0;
    std::string first;
    for (int t = 0; t < kThreads; ++t) {
      const std::string prefix = "load/" + std::to_string(t) + "/";
      auto d = c.local_dump(m, prefix);
      ASSERT_TRUE(d.has_value()) << c.member(m).name;
      const auto& want = last[static_cast<std::size_t>(t)];
      if (d->size() != want.size()) {
        ++bad;
        first = prefix + ": " + std::to_string(d->size()) + " keys, want " +
                std::to_string(want.size());
      }
      for (const auto& [k, v] : want) {
        auto it = d->find(k);
        if (it == d->end() || it->second != v) {
          if (bad++ == 0) first = k + " missing or stale";
        }
      }
    }
    EXPECT_EQ(bad, 0u) << c.member(m).name << ": " << first;
  }
}

}  // namespace
}  // namespace ringwire::kv::cluster_test
