// Multi-process kv_server clusters for the `cluster` tests: free loopback ports, temporary
// data dirs, kv_server children (fork/exec, output to a per-member log file that is printed
// when the test failed), crash / pause / stop / restart of a member, leader discovery through
// Maintenance.Status, raw etcd v3 stubs and ringwire::kv::client clients per member.
//
// Every child is killed (SIGKILL) and reaped by PID in ~Cluster, and dies with the test
// process anyway (PR_SET_PDEATHSIG), so no test leaves a kv_server behind.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "etcdserverpb/rpc.grpc.pb.h"
#include "ringwire/kv/client/client.hpp"

#ifndef RINGWIRE_BIN_DIR
#error "RINGWIRE_BIN_DIR must name the directory holding kv_server"
#endif

namespace ringwire::kv::cluster_test {

namespace fs = std::filesystem;
namespace epb = etcdserverpb;
using namespace std::chrono_literals;
using Ms = std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;

// kv_server to run: $RINGWIRE_KV_SERVER, else the build's bin dir.
inline std::string kv_server_path() {
  if (const char* e = std::getenv("RINGWIRE_KV_SERVER"); e != nullptr && *e != '\0') return e;
  return std::string(RINGWIRE_BIN_DIR) + "/kv_server";
}

inline double seconds_between(SteadyClock::time_point a, SteadyClock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// Polls `pred` every 10 ms until it holds or `timeout` passes.
template <class Pred>
bool test_eventually(Pred pred, Ms timeout) {
  const auto until = SteadyClock::now() + timeout;
  for (;;) {
    if (pred()) return true;
    if (SteadyClock::now() >= until) return false;
    std::this_thread::sleep_for(10ms);
  }
}

// A loopback port nobody listens on right now (bind port 0), never the same twice per process.
inline int free_port() {
  static std::set<int> handed_out;
  for (int attempt = 0; attempt < 100; ++attempt) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) continue;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    socklen_t len = sizeof a;
    int port = -1;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
      port = ntohs(a.sin_port);
    }
    ::close(fd);
    if (port > 0 && handed_out.insert(port).second) return port;
  }
  ADD_FAILURE() << "no free loopback port";
  return 1;
}

// Member id as kv_server computes it: FNV-1a 64 of the "host:port" peer address.
inline std::uint64_t member_id_of(std::string_view peer_address) {
  std::uint64_t h = 14695981039346656037ull;
  for (const char c : peer_address) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  return h;
}

inline std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A raw GET /metrics; "" when the endpoint does not answer.
inline std::string http_get_metrics(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return {};
  timeval tv{2, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  std::string out;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    const std::string req = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (::write(fd, req.data(), req.size()) == static_cast<ssize_t>(req.size())) {
      char buf[8192];
      for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) break;
        out.append(buf, static_cast<std::size_t>(n));
      }
    }
  }
  ::close(fd);
  return out;
}

// The value of a Prometheus sample `name value` in a /metrics body, or -1.
inline double metric_value(const std::string& body, const std::string& name) {
  std::istringstream in(body);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(name + " ", 0) == 0) return std::strtod(line.c_str() + name.size() + 1, nullptr);
  }
  return -1;
}

struct ClusterOptions {
  int size = 3;
  std::vector<std::string> extra_args;  // given to every member
  bool no_fsync = false;
  std::string log_level = "info";
  int founding = 0;  // members in --cluster (0: all); the others join later via MemberAdd
};

struct Member {
  std::string name;
  int client_port = 0;
  int peer_port = 0;
  int metrics_port = 0;
  fs::path data_dir;
  fs::path log_path;
  std::uint64_t id = 0;
  pid_t pid = -1;  // -1: not running (reaped)
  bool paused = false;
  int last_exit = 0;  // exit code, or -signal, of the last reaped run
  std::shared_ptr<grpc::Channel> channel;
  std::string client_address() const { return "127.0.0.1:" + std::to_string(client_port); }
  std::string peer_address() const { return "127.0.0.1:" + std::to_string(peer_port); }
};

class Cluster {
 public:
  explicit Cluster(ClusterOptions o = {}) : opts_(std::move(o)) {
    static std::atomic<int> counter{0};
    base_ = fs::temp_directory_path() / ("ringwire-cluster." + std::to_string(::getpid()) + "." +
                                         std::to_string(counter.fetch_add(1)));
    fs::remove_all(base_);
    fs::create_directories(base_);
    for (int i = 0; i < opts_.size; ++i) {
      Member m;
      m.name = "n" + std::to_string(i + 1);
      m.client_port = free_port();
      m.peer_port = free_port();
      m.metrics_port = free_port();
      m.data_dir = base_ / m.name;
      m.log_path = base_ / (m.name + ".log");
      m.id = member_id_of(m.peer_address());
      members_.push_back(std::move(m));
    }
    const std::size_t founding =
        opts_.founding > 0 ? static_cast<std::size_t>(opts_.founding) : members_.size();
    for (std::size_t i = 0; i < founding && i < members_.size(); ++i) {
      const auto& m = members_[i];
      cluster_flag_ += (cluster_flag_.empty() ? "" : ",") + m.name + "=" + m.peer_address();
    }
  }

  ~Cluster() {
    for (std::size_t i = 0; i < members_.size(); ++i)
      hard_kill(i);
    if (::testing::Test::HasFailure()) print_logs();
    std::error_code ec;
    fs::remove_all(base_, ec);
  }

  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  std::size_t size() const { return members_.size(); }
  Member& member(std::size_t i) { return members_.at(i); }
  const fs::path& base_dir() const { return base_; }

  std::string endpoints_csv() const {
    std::string s;
    for (const auto& m : members_)
      s += (s.empty() ? "" : ",") + m.client_address();
    return s;
  }
  std::vector<std::string> endpoints(std::vector<std::size_t> which = {}) const {
    std::vector<std::string> v;
    if (which.empty()) {
      for (const auto& m : members_)
        v.push_back(m.client_address());
    } else {
      for (auto i : which)
        v.push_back(members_.at(i).client_address());
    }
    return v;
  }

  std::vector<std::string> args_for(std::size_t i, const std::vector<std::string>& extra) const {
    const Member& m = members_.at(i);
    std::vector<std::string> a = {kv_server_path(),
                                  "--name",
                                  m.name,
                                  "--listen",
                                  m.client_address(),
                                  "--peer-listen",
                                  m.peer_address(),
                                  "--cluster",
                                  cluster_flag_,
                                  "--data-dir",
                                  m.data_dir.string(),
                                  "--metrics",
                                  "127.0.0.1:" + std::to_string(m.metrics_port),
                                  "--log-level",
                                  opts_.log_level};
    if (opts_.no_fsync) a.push_back("--no-fsync");
    a.insert(a.end(), opts_.extra_args.begin(), opts_.extra_args.end());
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }

  // Starts member i (output appended to its log). Call from the test's main thread:
  // PR_SET_PDEATHSIG fires when the forking thread exits.
  void start(std::size_t i, const std::vector<std::string>& extra = {}) {
    Member& m = members_.at(i);
    if (m.pid > 0) {
      ADD_FAILURE() << m.name << " is already running";
      return;
    }
    const auto args = args_for(i, extra);
    std::vector<char*> argv;
    for (const auto& s : args)
      argv.push_back(const_cast<char*>(s.c_str()));
    argv.push_back(nullptr);
    {
      std::ofstream log(m.log_path, std::ios::app);
      log << "==== test: start";
      for (const auto& s : args)
        log << ' ' << s;
      log << '\n';
    }
    const int log_fd = ::open(m.log_path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (log_fd < 0 || null_fd < 0) {
      ADD_FAILURE() << "cannot open " << m.log_path << ": " << std::strerror(errno);
      return;
    }
    const pid_t parent = ::getpid();
    std::fflush(nullptr);
    const pid_t pid = ::fork();
    if (pid == 0) {
      // Only async-signal-safe calls until exec.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(120);
      ::dup2(null_fd, 0);
      ::dup2(log_fd, 1);
      ::dup2(log_fd, 2);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(log_fd);
    ::close(null_fd);
    if (pid < 0) {
      ADD_FAILURE() << "fork: " << std::strerror(errno);
      return;
    }
    m.pid = pid;
    m.paused = false;
    m.channel.reset();
  }

  void start_all(Ms serving_timeout = 20s) {
    for (std::size_t i = 0; i < members_.size(); ++i)
      start(i);
    for (std::size_t i = 0; i < members_.size(); ++i)
      EXPECT_TRUE(wait_serving(i, serving_timeout)) << members_[i].name << " is not serving";
  }

  bool running(std::size_t i) {
    reap(i, 0ms);
    return members_.at(i).pid > 0;
  }

  // Waits up to `timeout` for member i to exit; true when it did (exit code in last_exit).
  bool reap(std::size_t i, Ms timeout) {
    Member& m = members_.at(i);
    const auto until = SteadyClock::now() + timeout;
    while (m.pid > 0) {
      int st = 0;
      const pid_t r = ::waitpid(m.pid, &st, WNOHANG);
      if (r == m.pid || (r < 0 && errno == ECHILD)) {
        m.last_exit = WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? -WTERMSIG(st) : -1000;
        m.pid = -1;
        m.paused = false;
        m.channel.reset();
        return true;
      }
      if (SteadyClock::now() >= until) return false;
      std::this_thread::sleep_for(5ms);
    }
    return true;
  }

  // kill -9 and reap.
  void hard_kill(std::size_t i) {
    Member& m = members_.at(i);
    if (m.pid <= 0) return;
    ::kill(m.pid, SIGKILL);
    int st = 0;
    while (::waitpid(m.pid, &st, 0) < 0 && errno == EINTR) {
    }
    m.last_exit = WIFSIGNALED(st) ? -WTERMSIG(st) : WIFEXITED(st) ? WEXITSTATUS(st) : -1000;
    m.pid = -1;
    m.paused = false;
    m.channel.reset();
  }

  // SIGTERM; returns the exit code (or -signal). Kills it after `timeout` (returns -1000).
  int terminate(std::size_t i, Ms timeout = 15s) {
    Member& m = members_.at(i);
    if (m.pid <= 0) return m.last_exit;
    if (m.paused) resume(i);
    ::kill(m.pid, SIGTERM);
    if (!reap(i, timeout)) {
      hard_kill(i);
      ADD_FAILURE() << m.name << " did not stop within " << timeout.count() << " ms of SIGTERM";
      return -1000;
    }
    return m.last_exit;
  }

  void pause(std::size_t i) {
    Member& m = members_.at(i);
    if (m.pid > 0) {
      ::kill(m.pid, SIGSTOP);
      m.paused = true;
    }
  }
  void resume(std::size_t i) {
    Member& m = members_.at(i);
    if (m.pid > 0) {
      ::kill(m.pid, SIGCONT);
      m.paused = false;
    }
  }

  // Removes the member's data dir (it must not be running).
  void wipe(std::size_t i) {
    EXPECT_LE(members_.at(i).pid, 0) << "wipe of a running member";
    fs::remove_all(members_.at(i).data_dir);
  }

  // Runs member i expecting it to exit by itself; returns its exit code, or -2000 on timeout.
  int run_to_exit(std::size_t i, const std::vector<std::string>& extra, Ms timeout) {
    start(i, extra);
    if (!reap(i, timeout)) {
      hard_kill(i);
      return -2000;
    }
    return members_.at(i).last_exit;
  }

  std::shared_ptr<grpc::Channel> channel(std::size_t i) {
    Member& m = members_.at(i);
    if (!m.channel) {
      grpc::ChannelArguments args;
      // Quick reconnects, but no small GRPC_ARG_MIN_RECONNECT_BACKOFF_MS: it is also the
      // connect timeout, and a busy member (catching up) misses a 100 ms handshake.
      args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
      args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 500);
      args.SetInt(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, 64 << 20);
      // A fresh connection per start (so a restarted member is not behind a backoff).
      args.SetInt("ringwire.test.generation", ++generation_);
      m.channel =
          grpc::CreateCustomChannel(m.client_address(), grpc::InsecureChannelCredentials(), args);
    }
    return m.channel;
  }
  std::unique_ptr<epb::KV::Stub> kv(std::size_t i) { return epb::KV::NewStub(channel(i)); }
  std::unique_ptr<epb::Watch::Stub> watch(std::size_t i) { return epb::Watch::NewStub(channel(i)); }
  std::unique_ptr<epb::Cluster::Stub> cluster(std::size_t i) {
    return epb::Cluster::NewStub(channel(i));
  }
  std::unique_ptr<epb::Maintenance::Stub> maintenance(std::size_t i) {
    return epb::Maintenance::NewStub(channel(i));
  }

  static void set_deadline(grpc::ClientContext& ctx, Ms d) {
    ctx.set_deadline(std::chrono::system_clock::now() + d);
  }

  std::optional<epb::StatusResponse> status(std::size_t i, Ms timeout = 500ms,
                                            std::string* error = nullptr) {
    if (members_.at(i).pid <= 0 || members_.at(i).paused) return std::nullopt;
    grpc::ClientContext ctx;
    set_deadline(ctx, timeout);
    epb::StatusRequest req;
    epb::StatusResponse resp;
    const grpc::Status s = maintenance(i)->Status(&ctx, req, &resp);
    if (!s.ok()) {
      if (error != nullptr) *error = std::to_string(s.error_code()) + " " + s.error_message();
      return std::nullopt;
    }
    return resp;
  }

  bool wait_serving(std::size_t i, Ms timeout) {
    const auto until = SteadyClock::now() + timeout;
    std::string error;
    int attempts = 0;
    while (SteadyClock::now() < until) {
      if (!running(i)) {
        std::cerr << "[ cluster ] " << members_[i].name << " exited with " << members_[i].last_exit
                  << " while waiting for it to serve\n";
        return false;
      }
      if (status(i, 500ms, &error)) return true;
      if (++attempts % 40 == 0) members_[i].channel.reset();  // a fresh connection now and then
      std::this_thread::sleep_for(20ms);
    }
    std::cerr << "[ cluster ] " << members_[i].name << " (pid " << members_[i].pid
              << ") did not answer Status on " << members_[i].client_address() << " within "
              << timeout.count() << " ms: " << error << "\n";
    return false;
  }

  std::optional<std::size_t> index_of(std::uint64_t id) const {
    for (std::size_t i = 0; i < members_.size(); ++i) {
      if (members_[i].id == id) return i;
    }
    return std::nullopt;
  }

  // A leader that says so itself and that a majority of the cluster (counting every member,
  // down or not) follows in the same term. Members in `exclude` are not asked.
  std::optional<std::size_t> wait_leader(Ms timeout, std::set<std::size_t> exclude = {}) {
    const auto until = SteadyClock::now() + timeout;
    while (SteadyClock::now() < until) {
      std::vector<std::optional<epb::StatusResponse>> st(members_.size());
      for (std::size_t i = 0; i < members_.size(); ++i) {
        if (exclude.count(i) == 0) st[i] = status(i, 300ms);
      }
      for (std::size_t l = 0; l < members_.size(); ++l) {
        if (!st[l] || st[l]->leader() != members_[l].id) continue;
        std::size_t agree = 0;
        for (const auto& s : st) {
          if (s && s->leader() == members_[l].id && s->raftterm() == st[l]->raftterm()) ++agree;
        }
        if (agree * 2 > members_.size()) return l;
      }
      std::this_thread::sleep_for(20ms);
    }
    return std::nullopt;
  }

  // Waits until every listed (running) member's store revision is at least `revision`.
  bool wait_revision(const std::vector<std::size_t>& which, std::int64_t revision, Ms timeout) {
    const auto until = SteadyClock::now() + timeout;
    while (SteadyClock::now() < until) {
      bool all = true;
      for (auto i : which) {
        auto s = status(i, 300ms);
        all = all && s && s->header().revision() >= revision;
      }
      if (all) return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }

  std::unique_ptr<client::Client> client(std::vector<std::size_t> which = {}, Ms timeout = 2s,
                                         int connection = 0) {
    client::Options o;
    o.endpoints = endpoints(std::move(which));
    o.timeout = timeout;
    o.connection = connection;
    auto c = client::Client::create(o);
    if (!c) {
      ADD_FAILURE() << "client: " << c.status().to_string();
      return nullptr;
    }
    return std::move(c.value());
  }

  // Every key under `prefix` as served locally by member i (serializable), key -> value.
  std::optional<std::map<std::string, std::string>> local_dump(std::size_t i,
                                                               const std::string& prefix,
                                                               Ms timeout = 5s) {
    grpc::ClientContext ctx;
    set_deadline(ctx, timeout);
    epb::RangeRequest req;
    req.set_key(prefix);
    req.set_range_end(client::prefix_range_end(prefix));
    req.set_serializable(true);
    epb::RangeResponse resp;
    if (!kv(i)->Range(&ctx, req, &resp).ok()) return std::nullopt;
    std::map<std::string, std::string> out;
    for (const auto& kv : resp.kvs())
      out[kv.key()] = kv.value();
    return out;
  }

  std::string log(std::size_t i) const { return read_file(members_.at(i).log_path); }
  std::string metrics(std::size_t i) const { return http_get_metrics(members_.at(i).metrics_port); }

  void print_logs() const {
    for (const auto& m : members_) {
      std::string text = read_file(m.log_path);
      const std::size_t keep = 24 * 1024;
      if (text.size() > keep) text = "...\n" + text.substr(text.size() - keep);
      std::cerr << "======== " << m.name << " log (" << m.log_path << ") ========\n"
                << text << "======== end of " << m.name << " log ========\n";
    }
  }

 private:
  ClusterOptions opts_;
  fs::path base_;
  std::vector<Member> members_;
  std::string cluster_flag_;
  int generation_ = 0;
};

// One raw Watch stream with a reader thread, so responses can be awaited with a timeout.
class WatchSession {
 public:
  explicit WatchSession(epb::Watch::Stub* stub) {
    stream_ = stub->Watch(&ctx_);
    reader_ = std::thread([this] {
      epb::WatchResponse r;
      while (stream_->Read(&r)) {
        std::lock_guard lk(mu_);
        q_.push_back(r);
        cv_.notify_all();
      }
      std::lock_guard lk(mu_);
      ended_ = true;
      cv_.notify_all();
    });
  }
  ~WatchSession() {
    ctx_.TryCancel();
    reader_.join();
    (void)stream_->Finish();
  }
  WatchSession(const WatchSession&) = delete;
  WatchSession& operator=(const WatchSession&) = delete;

  bool send(const epb::WatchRequest& r) { return stream_->Write(r); }
  bool create(const std::string& key, const std::string& range_end, std::int64_t start_revision,
              bool prev_kv = false, std::int64_t watch_id = 0) {
    epb::WatchRequest r;
    auto* c = r.mutable_create_request();
    c->set_key(key);
    c->set_range_end(range_end);
    c->set_start_revision(start_revision);
    c->set_prev_kv(prev_kv);
    c->set_watch_id(watch_id);
    return send(r);
  }
  bool cancel(std::int64_t watch_id) {
    epb::WatchRequest r;
    r.mutable_cancel_request()->set_watch_id(watch_id);
    return send(r);
  }
  // The next response, skipping progress notifications (no events, not created/canceled).
  std::optional<epb::WatchResponse> next(Ms timeout) {
    std::unique_lock lk(mu_);
    const auto until = SteadyClock::now() + timeout;
    for (;;) {
      while (!q_.empty()) {
        epb::WatchResponse r = std::move(q_.front());
        q_.erase(q_.begin());
        if (r.events_size() == 0 && !r.created() && !r.canceled()) continue;
        return r;
      }
      if (ended_) return std::nullopt;
      if (cv_.wait_until(lk, until) == std::cv_status::timeout && q_.empty()) return std::nullopt;
    }
  }
  // Collects `n` events of watch `watch_id` (fewer if the time runs out).
  std::vector<mvccpb::Event> events(std::int64_t watch_id, std::size_t n, Ms timeout) {
    std::vector<mvccpb::Event> out;
    const auto until = SteadyClock::now() + timeout;
    while (out.size() < n) {
      const auto left = std::chrono::duration_cast<Ms>(until - SteadyClock::now());
      if (left.count() <= 0) break;
      auto r = next(left);
      if (!r) break;
      if (r->watch_id() != watch_id) continue;
      for (const auto& e : r->events())
        out.push_back(e);
    }
    return out;
  }

 private:
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReaderWriter<epb::WatchRequest, epb::WatchResponse>> stream_;
  std::thread reader_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<epb::WatchResponse> q_;
  bool ended_ = false;
};

// Fails the test when kv_server was not built (a cluster test must not pass vacuously).
#define RINGWIRE_REQUIRE_KV_SERVER()                                                               \
  do {                                                                                             \
    if (::access(::ringwire::kv::cluster_test::kv_server_path().c_str(), X_OK) != 0) {             \
      GTEST_FAIL() << "kv_server not found at " << ::ringwire::kv::cluster_test::kv_server_path(); \
    }                                                                                              \
  } while (0)

}  // namespace ringwire::kv::cluster_test
