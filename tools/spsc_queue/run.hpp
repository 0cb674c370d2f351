// spsc_queue: options, results and the entry point that runs one scenario.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ringwire::tools {

enum class QueueMode { lockfree, mutex };
enum class Role { both, producer, consumer };
enum class WaitKind { spin, sleep };

struct Options {
  std::uint64_t iters = 1'000'000;
  QueueMode mode = QueueMode::lockfree;
  bool threads = false;  // two threads instead of two processes
  std::uint64_t capacity = 4096;
  std::size_t payload = 64;
  std::size_t batch = 1;
  std::optional<std::pair<int, int>> pin;  // producer CPU, consumer CPU
  bool latency = false;
  bool json = false;
  Role role = Role::both;
  std::string name;  // segment name; generated when empty
  WaitKind wait = WaitKind::spin;
  double timeout_s = 10.0;  // how long to wait for a peer or for space/data
};

struct Verification {
  std::uint64_t received = 0;
  std::uint64_t lost = 0;          // sequence numbers skipped
  std::uint64_t out_of_order = 0;  // duplicates or older sequence numbers
  std::uint64_t corrupt = 0;       // checksum or length mismatch
  bool ok(std::uint64_t expected) const {
    return received == expected && lost == 0 && out_of_order == 0 && corrupt == 0;
  }
};

struct Report {
  int exit_code = 0;
  std::string error;  // set when exit_code != 0
  std::string transport;
  std::uint64_t messages = 0;
  std::size_t message_bytes = 0;
  double elapsed_s = 0;
  Verification verify;
  std::vector<std::uint64_t> rtt_ns;  // latency mode, sorted
  std::uint64_t wakeups = 0;
  bool has_results = false;
};

// Payload sizes the tool is compiled for (message = 16-byte header + payload).
const std::vector<std::size_t>& supported_payloads();

// Runs the scenario for this process's role and fills the report.
Report run(const Options& opt);

}  // namespace ringwire::tools
