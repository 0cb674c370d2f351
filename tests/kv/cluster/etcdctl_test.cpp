// etcdctl (v3 API) against a ringwire cluster: put / get / del / watch / member list /
// endpoint status, outputs checked. Skipped when /usr/bin/etcdctl is absent
// (scripts/setup-deps.sh installs etcd-client).
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include <cstdio>

#include "cluster_fixture.hpp"

namespace ringwire::kv::cluster_test {
namespace {

constexpr const char* kEtcdctl = "/usr/bin/etcdctl";

struct ShellRun {
  int rc = -1;
  std::string out;
};

// Runs a shell command (bounded by `timeout`), stdout and stderr together.
ShellRun sh(const std::string& cmd) {
  ShellRun r;
  std::fflush(nullptr);
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0)
    r.out.append(buf, n);
  const int st = ::pclose(p);
  r.rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

std::vector<std::string> lines(const std::string& s) {
  std::vector<std::string> v;
  std::istringstream in(s);
  std::string l;
  while (std::getline(in, l)) {
    if (!l.empty()) v.push_back(l);
  }
  return v;
}

std::vector<std::string> split(const std::string& s, const std::string& sep) {
  std::vector<std::string> v;
  std::size_t start = 0;
  for (;;) {
    const std::size_t at = s.find(sep, start);
    v.push_back(s.substr(start, at - start));
    if (at == std::string::npos) break;
    start = at + sep.size();
  }
  return v;
}

class EtcdctlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    RINGWIRE_REQUIRE_KV_SERVER();
    if (::access(kEtcdctl, X_OK) != 0) {
      GTEST_SKIP() << "SKIPPED: " << kEtcdctl
                   << " not installed (scripts/setup-deps.sh installs etcd-client)";
    }
  }
  std::string ctl(const std::string& endpoints, const std::string& args, int timeout_s = 10) {
    return "ETCDCTL_API=3 timeout " + std::to_string(timeout_s) + " " + kEtcdctl +
           " --endpoints=" + endpoints + " --dial-timeout=3s --command-timeout=5s " + args;
  }
};

TEST_F(EtcdctlTest, PutGetDelWatchMembersStatus) {
  Cluster c;
  c.start_all();
  const auto leader = c.wait_leader(15s);
  ASSERT_TRUE(leader.has_value());
  const std::string e0 = c.member(0).client_address();
  const std::string e1 = c.member(1).client_address();

  auto r = sh(ctl(e0, "put foo bar"));
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_EQ(r.out, "OK\n");
  r = sh(ctl(e1, "get foo"));
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_EQ(r.out, "foo\nbar\n") << "get through another member";
  r = sh(ctl(e1, "put foo baz --prev-kv"));
  EXPECT_EQ(r.out, "OK\nfoo\nbar\n");
  r = sh(ctl(e0, "put dir/a 1"));
  r = sh(ctl(e0, "put dir/b 2"));
  r = sh(ctl(e0, "get dir/ --prefix --print-value-only"));
  EXPECT_EQ(r.out, "1\n2\n");
  r = sh(ctl(e0, "get foo -w json"));
  EXPECT_NE(r.out.find("\"version\":2"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"create_revision\":2"), std::string::npos) << r.out;
  r = sh(ctl(e0,
             "txn --interactive=false <<'EOF'\nvalue(\"foo\") = \"baz\"\n\nput foo qux\n\n"
             "put foo never\n\nEOF"));
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_EQ(r.out, "SUCCESS\n\nOK\n") << r.out;
  r = sh(ctl(e0, "get foo --print-value-only"));
  EXPECT_EQ(r.out, "qux\n");
  r = sh(ctl(e1, "del dir/ --prefix"));
  EXPECT_EQ(r.out, "2\n");
  r = sh(ctl(e1, "del nothing"));
  EXPECT_EQ(r.out, "0\n");
  r = sh(ctl(e0, "get dir/ --prefix"));
  EXPECT_EQ(r.out, "");

  // Watch from revision 1 replays the history of foo (etcdctl watch runs until killed).
  r = sh(ctl(e1, "watch foo --rev=1", 3));
  EXPECT_EQ(r.out, "PUT\nfoo\nbar\nPUT\nfoo\nbaz\nPUT\nfoo\nqux\n") << r.out;
  // A live watch: etcdctl started (by PID, so it can be stopped by PID), then the writes. It
  // watches from the next revision, so a slow etcdctl start cannot miss an event.
  auto cl = c.client();
  ASSERT_NE(cl, nullptr);
  auto head = cl->get("foo");
  ASSERT_TRUE(head);
  const std::string expected_live =
      "PUT\nlive/x\n1\nPUT\nlive/x\n1\nlive/x\n2\nDELETE\nlive/x\n2\nlive/x\n\n";
  std::string live;
  {
    int fds[2];
    ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
    const std::string rev = "--rev=" + std::to_string(head->header.revision + 1);
    const std::string ep = "--endpoints=" + e0;
    const char* argv[] = {kEtcdctl,   ep.c_str(),  "watch",     "live",
                          "--prefix", "--prev-kv", rev.c_str(), nullptr};
    const pid_t parent = ::getpid();
    std::fflush(nullptr);
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(120);
      ::dup2(fds[1], 1);
      ::dup2(fds[1], 2);
      ::setenv("ETCDCTL_API", "3", 1);
      ::execv(kEtcdctl, const_cast<char* const*>(argv));
      ::_exit(127);
    }
    ::close(fds[1]);
    std::this_thread::sleep_for(500ms);
    EXPECT_EQ(sh(ctl(e1, "put live/x 1")).out, "OK\n");
    EXPECT_EQ(sh(ctl(e1, "put live/x 2")).out, "OK\n");
    EXPECT_EQ(sh(ctl(e1, "del live/x")).out, "1\n");
    const auto until = SteadyClock::now() + 20s;
    ::fcntl(fds[0], F_SETFL, O_NONBLOCK);
    while (live.size() < expected_live.size() && SteadyClock::now() < until) {
      char buf[512];
      const ssize_t n = ::read(fds[0], buf, sizeof buf);
      if (n > 0) {
        live.append(buf, static_cast<std::size_t>(n));
      } else if (n == 0) {
        break;
      } else {
        std::this_thread::sleep_for(20ms);
      }
    }
    ::kill(pid, SIGTERM);
    int st = 0;
    ::waitpid(pid, &st, 0);
    ::close(fds[0]);
  }
  EXPECT_EQ(live, expected_live);

  // member list: id, status, name, peer URLs, client URLs, is learner.
  r = sh(ctl(e0, "member list"));
  EXPECT_EQ(r.rc, 0) << r.out;
  auto ml = lines(r.out);
  EXPECT_EQ(ml.size(), 3u) << r.out;
  for (std::size_t i = 0; i < c.size(); ++i) {
    const auto& m = c.member(i);
    char id[20];
    std::snprintf(id, sizeof id, "%llx", static_cast<unsigned long long>(m.id));
    const std::string want = std::string(id) + ", started, " + m.name + ", http://" +
                             m.peer_address() + ", http://" + m.client_address() + ", false";
    bool found = false;
    for (const auto& l : ml)
      found = found || l == want;
    EXPECT_TRUE(found) << "no line '" << want << "' in:\n" << r.out;
  }

  // endpoint status: endpoint, id, version, db size, is leader, is learner, term, index, ...
  r = sh(ctl(c.endpoints_csv(), "endpoint status"));
  EXPECT_EQ(r.rc, 0) << r.out;
  auto es = lines(r.out);
  ASSERT_EQ(es.size(), 3u) << r.out;
  int leaders = 0;
  for (const auto& l : es) {
    auto f = split(l, ", ");
    ASSERT_GE(f.size(), 9u) << l;
    EXPECT_EQ(f[2], "3.4.0") << l;
    EXPECT_EQ(f[5], "false") << l;
    if (f[4] == "true") {
      ++leaders;
      EXPECT_EQ(f[0], c.member(*leader).client_address()) << l;
    }
  }
  EXPECT_EQ(leaders, 1) << r.out;
  r = sh(ctl(c.endpoints_csv(), "endpoint health"));
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_EQ(lines(r.out).size(), 3u) << r.out;
  EXPECT_EQ(r.out.find("unhealthy"), std::string::npos) << r.out;

  // Compaction through etcdctl, then a read below it fails with etcd's message.
  r = sh(ctl(e0, "compact 3"));
  EXPECT_EQ(r.out, "compacted revision 3\n");
  r = sh(ctl(e0, "get foo --rev=2"));
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.out.find("required revision has been compacted"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace ringwire::kv::cluster_test
