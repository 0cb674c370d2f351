#include "server/metrics.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ringwire::kv::server {

void Histogram::observe(double seconds) {
  std::size_t i = 0;
  while (i < kBounds.size() && seconds > kBounds[i])
    ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_ns_.fetch_add(static_cast<std::uint64_t>(seconds * 1e9), std::memory_order_relaxed);
}

void Histogram::render(std::string& out, const std::string& name, const std::string& help) const {
  out += "# HELP " + name + " " + help + "\n# TYPE " + name + " histogram\n";
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < kBounds.size(); ++i) {
    cumulative += buckets_[i].load(std::memory_order_relaxed);
    char le[32];
    std::snprintf(le, sizeof le, "%g", kBounds[i]);
    out += name + "_bucket{le=\"" + le + "\"} " + std::to_string(cumulative) + "\n";
  }
  cumulative += buckets_[kBounds.size()].load(std::memory_order_relaxed);
  out += name + "_bucket{le=\"+Inf\"} " + std::to_string(cumulative) + "\n";
  char sum[64];
  std::snprintf(sum, sizeof sum, "%.9f",
                static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) / 1e9);
  out += name + "_sum " + sum + "\n";
  out += name + "_count " + std::to_string(count_.load(std::memory_order_relaxed)) + "\n";
}

namespace {
void counter(std::string& out, const char* name, const char* help,
             const std::atomic<std::uint64_t>& v, const char* type = "counter") {
  out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" +
         name + " " + std::to_string(v.load(std::memory_order_relaxed)) + "\n";
}
void rpc(std::string& out, const char* method, const std::atomic<std::uint64_t>& v) {
  out += std::string("ringwire_rpc_requests_total{method=\"") + method + "\"} " +
         std::to_string(v.load(std::memory_order_relaxed)) + "\n";
}
}  // namespace

std::string Metrics::render() const {
  std::string o;
  counter(o, "ringwire_proposals_total", "Commands proposed to Raft by this member.", proposals);
  counter(o, "ringwire_proposals_failed_total", "Proposals that timed out or were refused.",
          proposals_failed);
  counter(o, "ringwire_forwarded_total", "Writes forwarded to the leader.", forwarded);
  counter(o, "ringwire_applied_entries_total", "Log entries applied.", applied_entries);
  counter(o, "ringwire_commit_index", "Raft commit index.", commit_index, "gauge");
  counter(o, "ringwire_applied_index", "Raft applied index.", applied_index, "gauge");
  const auto lag =
      commit_index.load() > applied_index.load() ? commit_index.load() - applied_index.load() : 0;
  o += "# HELP ringwire_apply_lag Committed entries not applied yet.\n# TYPE ringwire_apply_lag "
       "gauge\nringwire_apply_lag " +
       std::to_string(lag) + "\n";
  counter(o, "ringwire_leader_changes_total", "Leader changes seen.", leader_changes);
  counter(o, "ringwire_is_leader", "1 when this member leads.", is_leader, "gauge");
  counter(o, "ringwire_raft_term", "Current Raft term.", term, "gauge");
  counter(o, "ringwire_snapshots_taken_total", "Log compactions.", snapshots_taken);
  counter(o, "ringwire_snapshots_installed_total", "Snapshots installed from the leader.",
          snapshots_installed);
  counter(o, "ringwire_read_index_reads_total", "Linearizable reads served.", read_index_reads);
  counter(o, "ringwire_serializable_reads_total", "Serializable reads served.", serializable_reads);
  counter(o, "ringwire_peer_messages_sent_total", "Raft messages sent.", peer_messages_sent);
  counter(o, "ringwire_peer_messages_dropped_total", "Raft messages dropped (peer down).",
          peer_messages_dropped);
  counter(o, "ringwire_peer_messages_received_total", "Raft messages received.",
          peer_messages_received);
  o += "# HELP ringwire_rpc_requests_total Client RPCs by method.\n"
       "# TYPE ringwire_rpc_requests_total counter\n";
  rpc(o, "Range", rpc_range);
  rpc(o, "Put", rpc_put);
  rpc(o, "DeleteRange", rpc_delete);
  rpc(o, "Txn", rpc_txn);
  rpc(o, "Compact", rpc_compact);
  rpc(o, "Watch", rpc_watch);
  rpc(o, "other", rpc_other);
  counter(o, "ringwire_rpc_errors_total", "Client RPCs answered with an error.", rpc_errors);
  fsync_seconds.render(o, "ringwire_wal_fsync_seconds", "WAL fdatasync latency.");
  rpc_seconds.render(o, "ringwire_rpc_seconds", "Client unary RPC latency.");
  return o;
}

core::Result<std::unique_ptr<MetricsEndpoint>> MetricsEndpoint::start(const std::string& address,
                                                                      const Metrics* metrics) {
  const auto colon = address.rfind(':');
  if (colon == std::string::npos) {
    return {core::Errc::invalid_argument, "--metrics: want host:port"};
  }
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  const std::string host =
      address.substr(0, colon) == "localhost" ? "127.0.0.1" : address.substr(0, colon);
  const int port = std::atoi(address.c_str() + colon + 1);
  if (port <= 0 || port > 65535 || ::inet_pton(AF_INET, host.c_str(), &sa.sin_addr) != 1) {
    return {core::Errc::invalid_argument, "--metrics: want an IPv4 host:port, got " + address};
  }
  sa.sin_port = htons(static_cast<std::uint16_t>(port));
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return {core::Errc::system_error, std::strerror(errno)};
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || ::listen(fd, 16) != 0) {
    const std::string err = std::strerror(errno);
    ::close(fd);
    return {core::Errc::invalid_argument, "--metrics " + address + ": " + err};
  }
  return std::unique_ptr<MetricsEndpoint>(new MetricsEndpoint(fd, metrics));
}

MetricsEndpoint::MetricsEndpoint(int fd, const Metrics* m)
    : fd_(fd), metrics_(m), thread_([this] { serve(); }) {}

MetricsEndpoint::~MetricsEndpoint() {
  stop_.store(true);
  thread_.join();
  ::close(fd_);
}

void MetricsEndpoint::serve() {
  while (!stop_.load()) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) continue;
    // Read the request line (bounded; a scraper sends a small GET).
    char buf[2048];
    pollfd pc{c, POLLIN, 0};
    ssize_t n = ::poll(&pc, 1, 1000) > 0 ? ::recv(c, buf, sizeof buf - 1, 0) : -1;
    std::string resp;
    if (n > 0) {
      buf[n] = 0;
      const bool ok = std::strncmp(buf, "GET /metrics", 12) == 0;
      const std::string body = ok ? metrics_->render() : std::string("not found\n");
      resp = std::string(ok ? "HTTP/1.0 200 OK\r\n" : "HTTP/1.0 404 Not Found\r\n") +
             "Content-Type: text/plain; version=0.0.4\r\nContent-Length: " +
             std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
      std::size_t off = 0;
      while (off < resp.size()) {
        const ssize_t w = ::send(c, resp.data() + off, resp.size() - off, MSG_NOSIGNAL);
        if (w <= 0) break;
        off += static_cast<std::size_t>(w);
      }
    }
    ::close(c);
  }
}

}  // namespace ringwire::kv::server
