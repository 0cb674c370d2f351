// Prometheus text-format metrics of one member, served at http://<--metrics>/metrics by a
// tiny blocking HTTP/1.0 responder (one thread; the scrape rate is low).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "ringwire/core/status.hpp"

namespace ringwire::kv::server {

// Latency histogram with fixed buckets (seconds), lock-free increments.
class Histogram {
 public:
  static constexpr std::array<double, 14> kBounds = {0.00005, 0.0001, 0.00025, 0.0005, 0.001,
                                                     0.0025,  0.005,  0.01,    0.025,  0.05,
                                                     0.1,     0.25,   0.5,     1.0};
  void observe(double seconds);
  void render(std::string& out, const std::string& name, const std::string& help) const;

 private:
  std::array<std::atomic<std::uint64_t>, kBounds.size() + 1> buckets_{};
  std::atomic<std::uint64_t> count_{0};
  std::atomic<std::uint64_t> sum_ns_{0};
};

struct Metrics {
  std::atomic<std::uint64_t> proposals{0};         // commands proposed by this member as leader
  std::atomic<std::uint64_t> proposals_failed{0};  // timed out or refused
  std::atomic<std::uint64_t> forwarded{0};         // writes this follower forwarded
  std::atomic<std::uint64_t> applied_entries{0};
  std::atomic<std::uint64_t> commit_index{0};
  std::atomic<std::uint64_t> applied_index{0};
  std::atomic<std::uint64_t> leader_changes{0};
  std::atomic<std::uint64_t> is_leader{0};
  std::atomic<std::uint64_t> term{0};
  std::atomic<std::uint64_t> snapshots_taken{0};
  std::atomic<std::uint64_t> snapshots_installed{0};
  std::atomic<std::uint64_t> read_index_reads{0};
  std::atomic<std::uint64_t> serializable_reads{0};
  std::atomic<std::uint64_t> rpc_range{0}, rpc_put{0}, rpc_delete{0}, rpc_txn{0}, rpc_compact{0},
      rpc_watch{0}, rpc_other{0}, rpc_errors{0};
  std::atomic<std::uint64_t> peer_messages_sent{0}, peer_messages_dropped{0},
      peer_messages_received{0};
  Histogram fsync_seconds;
  Histogram rpc_seconds;

  std::string render() const;
};

class MetricsEndpoint {
 public:
  // Binds host:port; errors when the address is unusable.
  static core::Result<std::unique_ptr<MetricsEndpoint>> start(const std::string& address,
                                                              const Metrics* metrics);
  ~MetricsEndpoint();

 private:
  MetricsEndpoint(int fd, const Metrics* m);
  void serve();
  int fd_;
  const Metrics* metrics_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace ringwire::kv::server
