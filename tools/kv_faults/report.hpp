// The end of a run: the summary (stderr, or one JSON object on stdout), the files under --out
// (history.jsonl, faults.jsonl, summary.json, and failure.txt with the seed and the smallest
// failing window when something is wrong) and the exit code.
#pragma once

#include <functional>
#include <iosfwd>
#include <map>
#include <string>
#include <vector>

#include "final_checks.hpp"
#include "history.hpp"
#include "linearizability.hpp"
#include "nemesis.hpp"

namespace ringwire::tools::kv_faults {

struct RunConfig {
  int nodes = 3;
  double duration_s = 60;
  std::uint64_t seed = 0;
  int clients = 6;
  int keys = 4;
  std::vector<std::string> faults;
  bool unsafe = false;
  bool no_fsync = false;
  std::vector<std::string> server_args;  // extra kv_server flags
  int snapshot_entries = 2000;
  std::string out_dir;
  bool json = false;
  std::string network;
  bool netem = false;
};

struct RunResult {
  bool healthy_after_heal = false;
  bool interrupted = false;
  FinalResult final;
  std::vector<std::string> lost;
  std::vector<std::string> unexpected_exits;
  std::vector<std::string> expected_exits;  // members that stopped themselves under the disk fault
  CheckReport check;
  std::map<std::string, int> faults;
  std::vector<FaultEvent> fault_events;
};

// Writes the files and the summary; returns the exit code.
int write_report(const RunConfig& cfg, const History& h, const RunResult& r, std::ostream& out);

// --check FILE: checks a recorded history; returns the exit code.
int check_file_only(const std::string& path, const CheckOptions& o, bool json,
                    const std::function<int(const std::string&)>& invalid);

}  // namespace ringwire::tools::kv_faults
