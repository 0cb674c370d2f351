// What a run collected (one record per cell and repetition) and what is
// derived from it: median and min..max over reps, ratios against the floor
// of the same run and against the fastest kernel transport, and the targets.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "cell.hpp"
#include "machine.hpp"
#include "options.hpp"
#include "transport.hpp"

namespace ipcb {

struct RepRecord {
  bool ok = false;
  std::string error, leak, note;
  std::uint64_t mismatches = 0;  // A + B
  std::uint64_t received = 0;
  LatencySummary lat, floor_lat;
  double msgs_per_s = 0, mb_per_s = 0;
  double probe_before_ns = 0, probe_after_ns = 0;  // floor RTT around a throughput rep
  std::uint64_t preempted = 0;
  double cpu_share = 0;  // min over both workers
  double wall_s = 0;
};

struct Cell {
  std::size_t transport = 0;  // index into the run's transport list
  Workload workload = Workload::latency;
  std::size_t size = 64;
  std::uint64_t count = 0;
  std::string skipped;  // non-empty: not run, and why
  std::vector<RepRecord> reps;
};

struct Range {
  double median = 0, min = 0, max = 0;
  int n = 0;  // values it was taken over
};
Range range_of(std::vector<double> v);

struct LatencyRow {
  std::string name;
  Kind kind;
  int ok_reps = 0, reps = 0;
  std::uint64_t mismatches = 0;
  Range p50, p99, p999, max, floor_p50, floor_p999;
  Range x_floor_p50;       // per rep: p50 / floor p50 of the same cell
  Range x_floor_p999;      // per rep: p99.9 / floor p99.9 of the same cell
  Range x_floor_p999_p50;  // per rep: p99.9 / floor p50 of the same cell
  double x_floor_row = 0;  // median p50 / median p50 of the `floor` row (0: none)
  double x_kernel = 0;     // median p50 / best kernel median p50 (0: none)
};

struct TputRow {
  std::string name;
  Kind kind;
  std::size_t size = 0;
  int ok_reps = 0, reps = 0;
  std::uint64_t mismatches = 0;
  Range msgs_per_s, mb_per_s, probe_ns;
  Range at_common;      // msgs/s over the reps at the run's most common placement
  double x_kernel = 0;  // median msgs/s / best kernel median (0: none)
};

struct Target {
  std::string id, text;
  bool evaluated = false, met = false;
  std::string detail;
};

struct Analysis {
  std::vector<LatencyRow> latency;
  std::vector<TputRow> throughput;
  std::string best_kernel_latency;  // name
  std::string best_kernel_tput_small, best_kernel_tput_large;
  // Throughput placements: the floor probes of every throughput rep,
  // clustered (harness/placement.hpp); `common` is the most frequent one.
  std::vector<double> placement_ns;  // cluster labels (probe RTT, ns)
  std::vector<int> placement_reps;   // reps per cluster
  int common = -1;
  std::vector<Target> targets;
};

struct Run {
  Options opt;
  MachineInfo machine;
  std::vector<TransportPtr> transports;
  std::vector<std::string> unavailable;  // per transport ("" if available)
  std::vector<Cell> cells;
  std::vector<std::string> leaks;
  double wall_s = 0;
  bool interrupted = false;
};

Analysis analyze(const Run& run);
std::uint64_t total_mismatches(const Run& run);
bool any_failed_rep(const Run& run);

// report.cpp
void print_table(const Run& run, const Analysis& a, std::FILE* f);
std::string to_json(const Run& run, const Analysis& a);

}  // namespace ipcb
