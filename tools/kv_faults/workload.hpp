// The clients of a fault run: threads doing random reads, writes and compare-and-swaps on a
// few keys (so that operations collide), each with its own kv client bound to one node (so
// clients keep talking to nodes on the minority side of a partition, or to a paused leader).
// Every call is recorded with invoke and complete times; a write that errored after it may
// have been sent is recorded as unknown, never as failed.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "history.hpp"

namespace ringwire::tools::kv_faults {

struct WorkloadOptions {
  int clients = 6;
  int keys = 4;
  std::uint64_t seed = 1;
  std::chrono::milliseconds op_timeout{1500};
  std::vector<std::string> endpoints;  // node i's client address at [i]
  // -1: every client reads. Otherwise only clients bound to this node read; the others only
  // write and CAS (so a stale read can only come from this node: --readers-on-leader).
  int read_node = -1;
};

class Workload {
 public:
  using Clock = std::chrono::steady_clock;
  Workload(WorkloadOptions o, Clock::time_point epoch);
  ~Workload() { stop(); }
  Workload(const Workload&) = delete;
  Workload& operator=(const Workload&) = delete;

  void start();
  void stop();             // joins the threads
  History take_history();  // after stop(): every op, ordered by invoke time
  std::uint64_t ops() const { return ops_.load(std::memory_order_relaxed); }

  static std::string key_name(int k) { return "k" + std::to_string(k); }

 private:
  void run(int client);

  WorkloadOptions opts_;
  Clock::time_point epoch_;
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> ops_{0};
  std::vector<std::thread> threads_;
  std::vector<History> per_client_;
};

}  // namespace ringwire::tools::kv_faults
