// Command line of ipc_bench.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace ipcb {

struct Options {
  int cpu_a = 0, cpu_b = 1;
  int reps = 5;
  bool quick = false;
  bool json = false;
  std::vector<std::string> transports;   // empty: all
  std::uint64_t rtt = 100'000;           // timed round trips per latency rep
  std::size_t latency_size = 64;         // bytes per latency message
  std::uint32_t rtt_block = 1'000;       // alternating floor / transport blocks
  std::uint32_t warmup = 2'000;          // untimed round trips of each kind
  std::uint64_t msgs_small = 1'000'000;  // 64-byte throughput messages per rep
  std::uint64_t msgs_large = 200'000;    // 4 KiB throughput messages per rep
  std::uint32_t tput_batch = 32;         // ringwire publish / release batch
  std::uint64_t channel_capacity = std::uint64_t{1} << 20;
  double timeout_s = 60;            // per cell
  std::uint64_t corrupt_every = 0;  // self-test of the verification (0: off)
  std::string argv_line;
};

// 0: run with `out`; 1: --help was printed (exit 0); 2: bad arguments
// (message printed to stderr).
int parse_options(int argc, char** argv, Options& out);

}  // namespace ipcb
