// What happens after the faults are healed: a linearizable read of every key from every node
// (recorded into the history, so the linearizability check covers them), a convergence check
// (every node's local state equal once they applied the same index), and the lost-write check
// (the final value must not be older than an acknowledged write that started after it).
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "history.hpp"

namespace ringwire::tools::kv_faults {

class Nodes;

struct FinalResult {
  bool compared = false;   // the members reached one applied index and their states were compared
  bool converged = false;  // ... and were equal
  std::string convergence_detail;
  int reads_ok = 0;
  int reads_failed = 0;
};

// Final process ids are kFinalProcess + node.
inline constexpr int kFinalProcess = 10000;

FinalResult final_reads(Nodes& nodes, int keys, std::chrono::steady_clock::time_point epoch,
                        std::chrono::milliseconds timeout, History* h);

// Acknowledged writes the final reads contradict, one line each (empty: none lost).
std::vector<std::string> lost_writes(const History& h);

}  // namespace ringwire::tools::kv_faults
