#include "network.hpp"

#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <sstream>

#include <spdlog/spdlog.h>

#include "proc.hpp"

namespace ringwire::tools::kv_faults {

namespace {

// The PID in "rwf<pid>..." or "rwf-<pid>-...", or -1.
pid_t pid_in_name(const std::string& name) {
  if (name.rfind("rwf", 0) != 0) return -1;
  std::size_t i = 3;
  if (i < name.size() && name[i] == '-') ++i;
  std::size_t j = i;
  while (j < name.size() && name[j] >= '0' && name[j] <= '9')
    ++j;
  if (j == i) return -1;
  return static_cast<pid_t>(std::strtol(name.substr(i, j - i).c_str(), nullptr, 10));
}

std::vector<std::string> lines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  std::string l;
  while (std::getline(in, l))
    if (!l.empty()) out.push_back(l);
  return out;
}

}  // namespace

int Network::cleanup_stale() {
  int removed = 0;
  std::string out;
  if (run_command({"ip", "netns", "list"}, &out) == 0) {
    for (const auto& l : lines(out)) {
      const std::string name = l.substr(0, l.find(' '));
      const pid_t owner = pid_in_name(name);
      if (owner <= 0 || pid_alive(owner)) continue;
      // kv_servers of a crashed run still inside (they normally die with the harness).
      std::string pids;
      run_command({"ip", "netns", "pids", name}, &pids);
      for (const auto& p : lines(pids)) {
        const pid_t pid = static_cast<pid_t>(std::strtol(p.c_str(), nullptr, 10));
        if (pid > 0) ::kill(pid, SIGKILL);
      }
      run_command({"ip", "netns", "del", name});
      spdlog::warn("removed stale network namespace {} (run {} is gone)", name, owner);
      ++removed;
    }
  }
  out.clear();
  if (run_command({"ip", "-o", "link", "show"}, &out) == 0) {
    for (const auto& l : lines(out)) {
      // "12: rwf123v1@if11: <...>"
      const auto colon = l.find(": ");
      if (colon == std::string::npos) continue;
      std::string name = l.substr(colon + 2);
      name = name.substr(0, name.find_first_of("@:"));
      const pid_t owner = pid_in_name(name);
      if (owner <= 0 || pid_alive(owner)) continue;
      run_command({"ip", "link", "del", name});
      spdlog::warn("removed stale link {} (run {} is gone)", name, owner);
      ++removed;
    }
  }
  return removed;
}

bool Network::ip_cmd(const std::vector<std::string>& args, std::string* error) {
  std::vector<std::string> argv{"ip"};
  argv.insert(argv.end(), args.begin(), args.end());
  std::string out;
  const int rc = run_command(argv, &out);
  if (rc == 0) return true;
  if (error != nullptr) {
    std::string cmd;
    for (const auto& a : argv)
      cmd += (cmd.empty() ? "" : " ") + a;
    *error = "'" + cmd + "' failed (" + std::to_string(rc) + "): " + out;
  }
  return false;
}

bool Network::ns_cmd(int node, const std::vector<std::string>& args, std::string* error) {
  std::vector<std::string> a{"-n", ns(node)};
  a.insert(a.end(), args.begin(), args.end());
  return ip_cmd(a, error);
}

bool Network::create(int nodes, std::string* error) {
  const pid_t me = ::getpid();
  tag_ = "rwf" + std::to_string(me);
  bridge_ = tag_ + "b";
  // A /24 no other interface here uses (two runs at once must not share one).
  std::string addrs;
  run_command({"ip", "-o", "addr", "show"}, &addrs);
  for (int k = 0; k < 200; ++k) {
    subnet_ = "10.77." + std::to_string(20 + (me + k) % 200) + ".";
    if (addrs.find(" " + subnet_) == std::string::npos) break;
  }
  created_ = true;  // from here on destroy() removes whatever exists
  if (!ip_cmd({"link", "add", bridge_, "type", "bridge"}, error) ||
      !ip_cmd({"addr", "add", subnet_ + "254/24", "dev", bridge_}, error) ||
      !ip_cmd({"link", "set", bridge_, "up"}, error)) {
    destroy();
    return false;
  }
  for (int i = 0; i < nodes; ++i) {
    const std::string n = std::to_string(i + 1);
    namespaces_.push_back("rwf-" + std::to_string(me) + "-n" + n);
    host_veths_.push_back(tag_ + "v" + n);
    ips_.push_back(subnet_ + n);
    const std::string peer = tag_ + "p" + n;
    if (!ip_cmd({"netns", "add", namespaces_.back()}, error) ||
        !ip_cmd({"link", "add", host_veths_.back(), "type", "veth", "peer", "name", peer}, error) ||
        !ip_cmd({"link", "set", peer, "netns", namespaces_.back()}, error) ||
        !ns_cmd(i, {"link", "set", peer, "name", "eth0"}, error) ||
        !ns_cmd(i, {"addr", "add", ips_.back() + "/24", "dev", "eth0"}, error) ||
        !ns_cmd(i, {"link", "set", "eth0", "up"}, error) ||
        !ns_cmd(i, {"link", "set", "lo", "up"}, error) ||
        !ip_cmd({"link", "set", host_veths_.back(), "master", bridge_}, error) ||
        !ip_cmd({"link", "set", host_veths_.back(), "up"}, error)) {
      destroy();
      return false;
    }
  }
  // Probe for netem once (a qdisc on the namespace's loopback, removed right away).
  std::string out;
  netem_ = run_command({"ip", "netns", "exec", ns(0), "tc", "qdisc", "add", "dev", "lo", "root",
                        "netem", "delay", "1ms"},
                       &out) == 0;
  if (netem_)
    run_command({"ip", "netns", "exec", ns(0), "tc", "qdisc", "del", "dev", "lo", "root"});
  return true;
}

void Network::destroy() {
  if (!created_) return;
  for (const auto& n : namespaces_)
    run_command({"ip", "netns", "del", n});  // also destroys the veth ends inside
  for (const auto& v : host_veths_)
    run_command({"ip", "link", "del", v});  // usually gone with its peer already
  run_command({"ip", "link", "del", bridge_});
  namespaces_.clear();
  host_veths_.clear();
  cut_.clear();
  slowed_.clear();
  created_ = false;
}

bool Network::partition(const std::vector<std::pair<int, int>>& cut, std::string* error) {
  for (auto [a, b] : cut) {
    if (a > b) std::swap(a, b);
    if (a == b || !cut_.insert({a, b}).second) continue;
    if (!ns_cmd(a, {"route", "add", "blackhole", ip(b) + "/32"}, error) ||
        !ns_cmd(b, {"route", "add", "blackhole", ip(a) + "/32"}, error)) {
      return false;
    }
  }
  return true;
}

void Network::heal_partition() {
  for (auto [a, b] : cut_) {
    std::string e;
    if (!ns_cmd(a, {"route", "del", "blackhole", ip(b) + "/32"}, &e)) spdlog::warn("heal: {}", e);
    if (!ns_cmd(b, {"route", "del", "blackhole", ip(a) + "/32"}, &e)) spdlog::warn("heal: {}", e);
  }
  cut_.clear();
}

bool Network::slow(int node, std::string* detail) {
  std::vector<std::string> argv{"ip",    "netns",   "exec", ns(node), "tc",
                                "qdisc", "replace", "dev",  "eth0",   "root"};
  if (netem_) {
    for (const char* a : {"netem", "delay", "100ms", "50ms", "loss", "10%"})
      argv.push_back(a);
    *detail = "netem delay 100ms +-50ms loss 10%";
  } else {
    // 256 kbit/s with a 4 KiB bucket and at most 50 ms of queue: Raft appends and gRPC
    // frames back up and are dropped once the queue is full, as on a congested link.
    for (const char* a : {"tbf", "rate", "256kbit", "burst", "4kb", "latency", "50ms"})
      argv.push_back(a);
    *detail = "tbf rate 256kbit burst 4kb latency 50ms (no netem in this kernel)";
  }
  std::string out;
  if (run_command(argv, &out) != 0) {
    *detail += ": tc failed: " + out;
    return false;
  }
  slowed_.insert(node);
  return true;
}

void Network::heal_slow() {
  for (int node : slowed_)
    run_command({"ip", "netns", "exec", ns(node), "tc", "qdisc", "del", "dev", "eth0", "root"});
  slowed_.clear();
}

}  // namespace ringwire::tools::kv_faults
