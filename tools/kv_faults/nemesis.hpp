// The nemesis: a seeded schedule of faults against the cluster, applied from the main thread.
// Each round: a quiet gap, one fault held for a few seconds, then healed. Kinds:
//   kill       kill -9 a node (the leader, 3 times out of 4), restart it on its data dir
//   pause      SIGSTOP a node (the leader preferred), SIGCONT it: a paused old leader
//   partition  random majority / minority split
//   isolate    cut the leader off from every other node
//   bridge     two halves that cannot talk, and one node that sees both
//   slow       degrade one node's link (netem delay + loss, or a tbf rate limit without netem)
//   disk       fill a node's (tmpfs) data dir: its writes fail with ENOSPC (opt-in, not in "all")
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace ringwire::tools::kv_faults {

class Disks;
class Network;
class Nodes;

struct FaultEvent {
  std::string kind;
  std::string target;  // e.g. "n2 (leader)" or "{n1,n2} | {n3}"
  double start_s = 0;
  double end_s = 0;
  bool applied = true;
  std::string detail;
};

nlohmann::json to_json(const FaultEvent& e);

const std::vector<std::string>& all_fault_kinds();
const std::vector<std::string>& network_fault_kinds();  // need namespaces

struct NemesisOptions {
  std::vector<std::string> kinds;
  std::uint64_t seed = 1;
  double min_gap_s = 1.0, max_gap_s = 3.0;    // quiet time between faults
  double min_hold_s = 2.0, max_hold_s = 5.0;  // how long a fault lasts
};

class Nemesis {
 public:
  using Clock = std::chrono::steady_clock;
  // `network` may be null (loopback fallback: only kill and pause).
  // `disks` may be null (no disk fault).
  Nemesis(NemesisOptions o, Nodes* nodes, Network* network, Disks* disks, Clock::time_point epoch);

  // Runs rounds until `deadline` (a round that would not fit is not started) or `stop()`
  // says so. Heals everything before returning.
  void run(Clock::time_point deadline, const std::function<bool()>& stop);
  // Ends every fault still in effect: resumes, restarts, removes partitions and slow links.
  void heal_all();

  const std::vector<FaultEvent>& events() const { return events_; }
  std::map<std::string, int> counts() const;  // applied faults by kind

 private:
  double now_s() const;
  double uniform(double a, double b);
  int pick_target(bool prefer_leader, std::string* label);
  void sleep_until(Clock::time_point t, const std::function<bool()>& stop);
  void reap_and_restart();
  std::string names(const std::vector<int>& group) const;

  NemesisOptions opts_;
  Nodes* nodes_;
  Network* net_;
  Disks* disks_;
  Clock::time_point epoch_;
  std::mt19937_64 rng_;
  std::vector<FaultEvent> events_;
};

}  // namespace ringwire::tools::kv_faults
