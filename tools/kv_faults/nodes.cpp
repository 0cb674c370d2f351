#include "nodes.hpp"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <thread>

#include <spdlog/spdlog.h>

namespace ringwire::tools::kv_faults {

using namespace std::chrono_literals;

Nodes::Nodes(std::string kv_server, std::vector<NodeSpec> specs,
             std::vector<std::string> extra_args)
    : kv_server_(std::move(kv_server)),
      specs_(std::move(specs)),
      state_(specs_.size()),
      extra_args_(std::move(extra_args)) {
  kv::client::Options o;
  o.endpoints = client_addresses();
  o.timeout = 500ms;
  o.connection = 1000;  // never share a connection with the workload's clients
  auto c = kv::client::Client::create(o);
  if (c) status_client_ = std::move(c.value());
}

Nodes::~Nodes() {
  kill_all();
}

std::vector<std::string> Nodes::client_addresses() const {
  std::vector<std::string> out;
  for (const auto& s : specs_)
    out.push_back(s.client_address());
  return out;
}

bool Nodes::start(int i, std::string* error) {
  const NodeSpec& s = spec(i);
  NodeState& st = state_.at(static_cast<std::size_t>(i));
  if (st.pid > 0) return true;
  std::string cluster;
  for (const auto& p : specs_)
    cluster += (cluster.empty() ? "" : ",") + p.name + "=" + p.peer_address();
  std::vector<std::string> args{
      kv_server_,       "--name",    s.name,  "--listen",   s.client_address(), "--peer-listen",
      s.peer_address(), "--cluster", cluster, "--data-dir", s.data_dir.string()};
  args.insert(args.end(), extra_args_.begin(), extra_args_.end());
  {
    std::ofstream log(s.log_path, std::ios::app);
    log << "==== kv_faults: start";
    for (const auto& a : args)
      log << ' ' << a;
    log << '\n';
  }
  std::vector<char*> argv;
  for (const auto& a : args)
    argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const int log_fd = ::open(s.log_path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  const int ns_fd = s.netns_path.empty() ? -2 : ::open(s.netns_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (log_fd < 0 || null_fd < 0 || ns_fd == -1) {
    *error = "cannot open log, /dev/null or " + s.netns_path + ": " + std::strerror(errno);
    for (int fd : {log_fd, null_fd, ns_fd})
      if (fd >= 0) ::close(fd);
    return false;
  }
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    // Only async-signal-safe calls until exec.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(120);
    if (ns_fd >= 0 && ::setns(ns_fd, CLONE_NEWNET) != 0) ::_exit(121);
    ::dup2(null_fd, 0);
    ::dup2(log_fd, 1);
    ::dup2(log_fd, 2);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  for (int fd : {log_fd, null_fd, ns_fd})
    if (fd >= 0) ::close(fd);
  if (pid < 0) {
    *error = std::string("fork: ") + std::strerror(errno);
    return false;
  }
  st.pid = pid;
  st.paused = false;
  ++st.starts;
  return true;
}

void Nodes::kill9(int i) {
  NodeState& st = state_.at(static_cast<std::size_t>(i));
  if (st.pid <= 0) return;
  ::kill(st.pid, SIGKILL);
  int status = 0;
  while (::waitpid(st.pid, &status, 0) < 0 && errno == EINTR) {
  }
  st.pid = -1;
  st.paused = false;
}

void Nodes::pause(int i) {
  NodeState& st = state_.at(static_cast<std::size_t>(i));
  if (st.pid > 0 && !st.paused) {
    ::kill(st.pid, SIGSTOP);
    st.paused = true;
  }
}

void Nodes::resume(int i) {
  NodeState& st = state_.at(static_cast<std::size_t>(i));
  if (st.pid > 0 && st.paused) {
    ::kill(st.pid, SIGCONT);
    st.paused = false;
  }
}

void Nodes::kill_all() {
  for (int i = 0; i < size(); ++i)
    kill9(i);
}

std::vector<int> Nodes::reap_exited() {
  std::vector<int> out;
  for (int i = 0; i < size(); ++i) {
    NodeState& st = state_[static_cast<std::size_t>(i)];
    if (st.pid <= 0) continue;
    int status = 0;
    if (::waitpid(st.pid, &status, WNOHANG) == st.pid) {
      const int code = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
      st.pid = -1;
      st.paused = false;
      if (st.may_exit) {
        st.expected_exits.push_back(code);
        spdlog::info("{} exited with {} under its fault", spec(i).name, code);
        continue;
      }
      st.unexpected_exits.push_back(code);
      spdlog::error("{} exited by itself with {} (see {})", spec(i).name, code,
                    spec(i).log_path.string());
      out.push_back(i);
    }
  }
  return out;
}

std::optional<kv::client::EndpointStatus> Nodes::status(int i) {
  if (!status_client_ || !running(i) || state(i).paused) return std::nullopt;
  auto r = status_client_->status(spec(i).client_address());
  if (!r) return std::nullopt;
  return std::move(r.value());
}

std::optional<int> Nodes::leader() {
  std::optional<int> best;
  std::uint64_t best_term = 0;
  for (int i = 0; i < size(); ++i) {
    auto s = status(i);
    if (!s || s->leader == 0 || s->leader != s->header.member_id) continue;
    if (!best || s->raft_term > best_term) {
      best = i;
      best_term = s->raft_term;
    }
  }
  return best;
}

bool Nodes::wait_healthy(std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    bool all = true;
    std::uint64_t leader = 0;
    for (int i = 0; i < size() && all; ++i) {
      if (!running(i)) continue;
      auto s = status(i);
      all = s.has_value() && s->leader != 0 && (leader == 0 || s->leader == leader);
      if (s) leader = s->leader;
    }
    if (all && leader != 0) return true;
    std::this_thread::sleep_for(100ms);
  }
  return false;
}

}  // namespace ringwire::tools::kv_faults

namespace ringwire::tools::kv_faults {

std::uintmax_t Nodes::log_size(int i) const {
  std::error_code ec;
  const auto n = std::filesystem::file_size(spec(i).log_path, ec);
  return ec ? 0 : n;
}

std::string Nodes::log_since(int i, std::uintmax_t offset) const {
  std::ifstream in(spec(i).log_path, std::ios::binary);
  in.seekg(static_cast<std::streamoff>(offset));
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

bool Nodes::wait_exit(int i, std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (running(i)) {
    reap_exited();
    if (!running(i)) break;
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

}  // namespace ringwire::tools::kv_faults
