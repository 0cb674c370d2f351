// Members coming back: via the log, via a snapshot, with a lost disk (refused), with a torn
// WAL tail (truncated, starts) and with a corrupted WAL record (refused, exit 3).
#include <algorithm>
#include <map>

#include "cluster_fixture.hpp"

namespace ringwire::kv::cluster_test {
namespace {

class RecoveryTest : public ::testing::Test {
 protected:
  void SetUp() override { RINGWIRE_REQUIRE_KV_SERVER(); }
};

std::size_t follower_of(std::size_t leader, std::size_t n) {
  return (leader + 1) % n;
}

std::vector<std::size_t> all_but(std::size_t skip, std::size_t n) {
  std::vector<std::size_t> v;
  for (std::size_t i = 0; i < n; ++i) {
    if (i != skip) v.push_back(i);
  }
  return v;
}

// Writes keys prefix+0 .. prefix+(n-1) from `threads` clients; returns the expected contents
// and sets *revision to the revision of the last acknowledged write.
std::map<std::string, std::string> write_keys(Cluster& c, const std::vector<std::size_t>& members,
                                              const std::string& prefix, int n, int threads,
                                              std::int64_t* revision) {
  std::map<std::string, std::string> expected;
  std::mutex mu;
  std::atomic<std::int64_t> max_rev{0};
  std::atomic<int> failures{0};
  std::vector<std::unique_ptr<client::Client>> clients;
  for (int t = 0; t < threads; ++t)
    clients.push_back(c.client(members, 3s, t));
  std::vector<std::thread> ws;
  for (int t = 0; t < threads; ++t) {
    ws.emplace_back([&, t] {
      for (int i = t; i < n; i += threads) {
        const std::string k = prefix + std::to_string(i);
        const std::string v = "value-" + std::to_string(i) + std::string(64, 'x');
        auto r = clients[static_cast<std::size_t>(t)]->put(k, v);
        if (!r) {
          failures.fetch_add(1);
          continue;
        }
        std::int64_t cur = max_rev.load();
        while (cur < r->header.revision &&
               !max_rev.compare_exchange_weak(cur, r->header.revision)) {
        }
        std::lock_guard lk(mu);
        expected[k] = v;
      }
    });
  }
  for (auto& w : ws)
    w.join();
  EXPECT_EQ(failures.load(), 0) << "writes failed";
  *revision = max_rev.load();
  return expected;
}

void expect_same(Cluster& c, std::size_t m, const std::string& prefix,
                 const std::map<std::string, std::string>& expected) {
  auto d = c.local_dump(m, prefix);
  ASSERT_TRUE(d.has_value()) << c.member(m).name << " did not answer";
  EXPECT_EQ(d->size(), expected.size()) << c.member(m).name;
  std::size_t bad = 0;
  for (const auto& [k, v] : expected) {
    auto it = d->find(k);
    if (it == d->end() || it->second != v) {
      if (bad++ == 0) ADD_FAILURE() << c.member(m).name << ": " << k << " missing or wrong";
    }
  }
  EXPECT_EQ(bad, 0u) << c.member(m).name;
}

TEST_F(RecoveryTest, FollowerRestartedWithItsDataCatchesUpViaLog) {
  Cluster c;
  c.start_all();
  const auto leader = c.wait_leader(15s);
  ASSERT_TRUE(leader.has_value());
  const std::size_t f = follower_of(*leader, c.size());
  std::int64_t rev0 = 0;
  auto before = write_keys(c, all_but(f, 3), "before/", 50, 2, &rev0);
  ASSERT_TRUE(c.wait_revision({f}, rev0, 10s));
  EXPECT_EQ(c.terminate(f), 0) << "SIGTERM must stop kv_server cleanly (exit 0)";
  std::int64_t rev = 0;
  auto expected = write_keys(c, all_but(f, 3), "log/", 300, 4, &rev);
  ASSERT_GT(rev, rev0);
  c.start(f);
  ASSERT_TRUE(c.wait_serving(f, 20s));
  ASSERT_TRUE(c.wait_revision({f}, rev, 20s)) << "follower did not catch up";
  expect_same(c, f, "log/", expected);
  expect_same(c, f, "before/", before);
  const std::string m = c.metrics(f);
  EXPECT_EQ(metric_value(m, "ringwire_snapshots_installed_total"), 0)
      << "a short absence is repaired from the log";
}

TEST_F(RecoveryTest, FollowerFarBehindCatchesUpViaSnapshot) {
  ClusterOptions o;
  o.extra_args = {"--snapshot-entries", "100"};
  Cluster c(o);
  c.start_all();
  const auto leader = c.wait_leader(15s);
  ASSERT_TRUE(leader.has_value());
  const std::size_t f = follower_of(*leader, c.size());
  c.hard_kill(f);
  std::int64_t rev = 0;
  auto expected = write_keys(c, all_but(f, 3), "snap/", 1200, 6, &rev);
  // Deletes and overwrites too, so the snapshot carries more than fresh keys.
  auto cl = c.client(all_but(f, 3));
  for (int i = 0; i < 1200; i += 10) {
    const std::string k = "snap/" + std::to_string(i);
    ASSERT_TRUE(cl->del(k));
    expected.erase(k);
  }
  for (int i = 5; i < 1200; i += 10) {
    const std::string k = "snap/" + std::to_string(i);
    auto r = cl->put(k, "overwritten");
    ASSERT_TRUE(r);
    expected[k] = "overwritten";
    rev = r->header.revision;
  }
  const std::string lm = c.metrics(*leader);
  EXPECT_GE(metric_value(lm, "ringwire_snapshots_taken_total"), 10) << "leader compacts its log";
  c.start(f);
  ASSERT_TRUE(c.wait_serving(f, 20s));
  ASSERT_TRUE(c.wait_revision({f}, rev, 30s)) << "follower did not catch up";
  expect_same(c, f, "snap/", expected);
  EXPECT_GE(metric_value(c.metrics(f), "ringwire_snapshots_installed_total"), 1)
      << "the leader's log no longer has what the follower missed: it must get a snapshot";
  // It keeps following after the snapshot.
  auto r = cl->put("snap/after", "yes");
  ASSERT_TRUE(r);
  ASSERT_TRUE(c.wait_revision({f}, r->header.revision, 10s));
  auto d = c.local_dump(f, "snap/after");
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ((*d)["snap/after"], "yes");
}

TEST_F(RecoveryTest, FoundingMemberWithEmptyDataDirAndExistingStateIsRefused) {
  Cluster c;
  c.start_all();
  const auto leader = c.wait_leader(15s);
  ASSERT_TRUE(leader.has_value());
  const std::size_t f = follower_of(*leader, c.size());
  auto cl = c.client(all_but(f, 3));
  ASSERT_TRUE(cl->put("k", "v"));
  c.hard_kill(f);
  c.wipe(f);
  const int rc = c.run_to_exit(f, {"--initial-cluster-state", "existing"}, 15s);
  EXPECT_EQ(rc, 2) << "an empty founding member joining an existing cluster must refuse (exit 2)";
  const std::string log = c.log(f);
  EXPECT_NE(log.find("remove"), std::string::npos) << "the message must say to remove it";
  EXPECT_NE(log.find("founding member"), std::string::npos);
  // The other two still serve.
  auto r = cl->put("k", "still-served");
  ASSERT_TRUE(r) << r.status().to_string();
  auto g = cl->get("k");
  ASSERT_TRUE(g);
  ASSERT_EQ(g->kvs.size(), 1u);
  EXPECT_EQ(g->kvs[0].value, "still-served");
}

std::vector<fs::path> wal_files(const fs::path& data_dir) {
  std::vector<fs::path> v;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(data_dir / "wal", ec)) {
    if (e.path().extension() == ".wal") v.push_back(e.path());
  }
  std::sort(v.begin(), v.end());
  return v;
}

struct RecordPos {
  std::size_t offset = 0;
  std::uint32_t length = 0;
};

// Record boundaries of a WAL segment (16-byte header, u32 LE payload length first).
std::vector<RecordPos> wal_records(const std::string& bytes) {
  std::vector<RecordPos> v;
  std::size_t off = 0;
  while (off + 16 <= bytes.size()) {
    std::uint32_t len = 0;
    for (int i = 3; i >= 0; --i)
      len = (len << 8) | static_cast<unsigned char>(bytes[off + static_cast<std::size_t>(i)]);
    if (off + 16 + len > bytes.size()) break;
    v.push_back({off, len});
    off += 16 + len;
  }
  return v;
}

TEST_F(RecoveryTest, TornWalTailIsTruncatedAndMemberCatchesUp) {
  Cluster c;
  c.start_all();
  const auto leader = c.wait_leader(15s);
  ASSERT_TRUE(leader.has_value());
  const std::size_t f = follower_of(*leader, c.size());
  std::int64_t rev = 0;
  auto expected = write_keys(c, all_but(f, 3), "torn/", 100, 2, &rev);
  ASSERT_TRUE(c.wait_revision({f}, rev, 10s));
  ASSERT_EQ(c.terminate(f), 0);
  auto files = wal_files(c.member(f).data_dir);
  ASSERT_FALSE(files.empty()) << "no WAL segment in " << c.member(f).data_dir;
  const fs::path last = files.back();
  const auto size = fs::file_size(last);
  ASSERT_GT(size, 64u);
  fs::resize_file(last, size - 5);  // a record cut short, as by a crash mid-append
  c.start(f);
  ASSERT_TRUE(c.wait_serving(f, 20s)) << "a torn tail must not stop the member";
  const std::string log = c.log(f);
  const std::size_t warn = log.find("torn tail record truncated");
  ASSERT_NE(warn, std::string::npos) << "no warning logged";
  const std::string line = log.substr(warn, log.find('\n', warn) - warn);
  EXPECT_NE(line.find(last.filename().string()), std::string::npos) << line;
  const std::size_t at = line.find("offset ");
  ASSERT_NE(at, std::string::npos) << line;
  const auto cut_at = std::strtoull(line.c_str() + at + 7, nullptr, 10);
  EXPECT_GT(cut_at, 0u) << line;
  EXPECT_LT(cut_at, size - 5) << "truncated at the start of the torn record: " << line;
  auto more = write_keys(c, all_but(f, 3), "torn/", 150, 2, &rev);
  ASSERT_TRUE(c.wait_revision({f}, rev, 20s)) << "member did not catch up after truncation";
  expect_same(c, f, "torn/", more);
}

TEST_F(RecoveryTest, CorruptedWalRecordRefusesStartWithExit3) {
  Cluster c;
  c.start_all();
  const auto leader = c.wait_leader(15s);
  ASSERT_TRUE(leader.has_value());
  const std::size_t f = follower_of(*leader, c.size());
  std::int64_t rev = 0;
  write_keys(c, all_but(f, 3), "corrupt/", 100, 2, &rev);
  ASSERT_TRUE(c.wait_revision({f}, rev, 10s));
  ASSERT_EQ(c.terminate(f), 0);
  auto files = wal_files(c.member(f).data_dir);
  ASSERT_FALSE(files.empty());
  const fs::path seg = files.front();
  std::string bytes = read_file(seg);
  auto recs = wal_records(bytes);
  ASSERT_GE(recs.size(), 10u) << "expected many records in " << seg;
  std::size_t pick = recs.size() / 2;
  while (pick > 0 && recs[pick].length < 8)
    --pick;
  ASSERT_GE(recs[pick].length, 8u);
  const std::size_t at = recs[pick].offset + 16 + recs[pick].length / 2;
  bytes[at] = static_cast<char>(bytes[at] ^ 0x5a);
  {
    std::ofstream out(seg, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  const int rc = c.run_to_exit(f, {}, 15s);
  EXPECT_EQ(rc, 3) << "WAL corruption in the middle must refuse start with exit 3";
  const std::string log = c.log(f);
  EXPECT_NE(log.find(seg.filename().string()), std::string::npos) << "message names the file";
  EXPECT_NE(log.find("offset " + std::to_string(recs[pick].offset)), std::string::npos)
      << "message names the record's offset " << recs[pick].offset;
  // The file was not "repaired" by truncation.
  EXPECT_EQ(fs::file_size(seg), bytes.size());
}

}  // namespace
}  // namespace ringwire::kv::cluster_test
