// The test network: one network namespace per node, each with a veth pair whose other end is
// on a bridge in the harness's own namespace (so the harness's clients reach every node, as
// Jepsen's control node does, while the nemesis cuts node-to-node links).
//
// Faults:
//   * partitions: `ip route add blackhole <peer>/32` inside a node's namespace, for each peer it
//     must not reach (both directions are cut). iptables is not needed.
//   * slow links: `tc qdisc ... netem delay/loss` on the node's interface when sch_netem exists;
//     otherwise (this kernel has no netem) a tight `tbf` rate limit, which queues and drops.
//
// Every name starts with "rwf<pid>" (interfaces) or "rwf-<pid>-" (namespaces), so leftovers of
// a crashed run are recognised by a dead PID and removed by cleanup_stale().
#pragma once

#include <set>
#include <string>
#include <utility>
#include <vector>

namespace ringwire::tools::kv_faults {

class Network {
 public:
  // Removes namespaces and links left by earlier runs whose process is gone. Returns how many.
  static int cleanup_stale();

  // Creates the bridge and `nodes` namespaces. On failure returns false with *error set and
  // leaves nothing behind.
  bool create(int nodes, std::string* error);
  // Removes everything create() made (idempotent; called by the destructor too).
  void destroy();
  ~Network() { destroy(); }

  int size() const { return static_cast<int>(ips_.size()); }
  const std::string& ip(int node) const { return ips_.at(static_cast<std::size_t>(node)); }
  const std::string& ns(int node) const { return namespaces_.at(static_cast<std::size_t>(node)); }
  std::string ns_path(int node) const { return "/var/run/netns/" + ns(node); }

  // Cuts node pairs (unordered); heal() restores full connectivity.
  bool partition(const std::vector<std::pair<int, int>>& cut, std::string* error);
  void heal_partition();
  const std::set<std::pair<int, int>>& cut() const { return cut_; }

  bool netem_available() const { return netem_; }
  // Degrades node's link (netem delay+loss, or tbf); heal_slow() undoes it for every node.
  bool slow(int node, std::string* detail);
  void heal_slow();

 private:
  bool ip_cmd(const std::vector<std::string>& args, std::string* error);
  bool ns_cmd(int node, const std::vector<std::string>& args, std::string* error);

  std::string tag_;     // "rwf<pid>"
  std::string bridge_;  // "rwf<pid>b"
  std::string subnet_;  // "10.77.<x>."
  std::vector<std::string> namespaces_;
  std::vector<std::string> host_veths_;
  std::vector<std::string> ips_;
  std::set<std::pair<int, int>> cut_;
  std::set<int> slowed_;
  bool netem_ = false;
  bool created_ = false;
};

}  // namespace ringwire::tools::kv_faults
