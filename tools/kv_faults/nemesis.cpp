#include "nemesis.hpp"

#include <algorithm>
#include <thread>

#include <spdlog/spdlog.h>

#include "disks.hpp"
#include "network.hpp"
#include "nodes.hpp"

namespace ringwire::tools::kv_faults {

using namespace std::chrono_literals;

nlohmann::json to_json(const FaultEvent& e) {
  return {{"kind", e.kind},   {"target", e.target},   {"start_s", e.start_s},
          {"end_s", e.end_s}, {"applied", e.applied}, {"detail", e.detail}};
}

const std::vector<std::string>& all_fault_kinds() {
  static const std::vector<std::string> k{"kill",    "pause",  "partition",
                                          "isolate", "bridge", "slow"};
  return k;
}

const std::vector<std::string>& network_fault_kinds() {
  static const std::vector<std::string> k{"partition", "isolate", "bridge", "slow"};
  return k;
}

Nemesis::Nemesis(NemesisOptions o, Nodes* nodes, Network* network, Disks* disks,
                 Clock::time_point epoch)
    : opts_(std::move(o)),
      nodes_(nodes),
      net_(network),
      disks_(disks),
      epoch_(epoch),
      rng_(opts_.seed) {}

double Nemesis::now_s() const {
  return std::chrono::duration<double>(Clock::now() - epoch_).count();
}

double Nemesis::uniform(double a, double b) {
  return std::uniform_real_distribution<double>(a, b)(rng_);
}

std::string Nemesis::names(const std::vector<int>& group) const {
  std::string s = "{";
  for (int i : group)
    s += (s.size() > 1 ? "," : "") + nodes_->spec(i).name;
  return s + "}";
}

int Nemesis::pick_target(bool prefer_leader, std::string* label) {
  if (prefer_leader && rng_() % 4 != 0) {
    if (auto l = nodes_->leader()) {
      *label = nodes_->spec(*l).name + " (leader)";
      return *l;
    }
  }
  std::vector<int> up;
  for (int i = 0; i < nodes_->size(); ++i)
    if (nodes_->running(i)) up.push_back(i);
  if (up.empty()) return -1;
  const int t = up[rng_() % up.size()];
  *label = nodes_->spec(t).name;
  return t;
}

void Nemesis::reap_and_restart() {
  for (int i : nodes_->reap_exited()) {
    std::string err;
    if (!nodes_->start(i, &err)) spdlog::error("restart of {}: {}", nodes_->spec(i).name, err);
  }
}

void Nemesis::sleep_until(Clock::time_point t, const std::function<bool()>& stop) {
  while (Clock::now() < t && !stop()) {
    reap_and_restart();
    std::this_thread::sleep_for(std::min<Clock::duration>(50ms, t - Clock::now()));
  }
}

void Nemesis::heal_all() {
  for (int i = 0; i < nodes_->size(); ++i) {
    if (disks_ != nullptr && disks_->active()) disks_->unfill(i);
    nodes_->reap_exited();
    nodes_->set_may_exit(i, false);
    nodes_->resume(i);
    if (!nodes_->running(i)) {
      std::string err;
      if (!nodes_->start(i, &err)) spdlog::error("restart of {}: {}", nodes_->spec(i).name, err);
    }
  }
  if (net_ != nullptr) {
    net_->heal_partition();
    net_->heal_slow();
  }
}

void Nemesis::run(Clock::time_point deadline, const std::function<bool()>& stop) {
  if (opts_.kinds.empty()) {
    sleep_until(deadline, stop);
    return;
  }
  const int n = nodes_->size();
  for (;;) {
    const double gap = uniform(opts_.min_gap_s, opts_.max_gap_s);
    const double hold = uniform(opts_.min_hold_s, opts_.max_hold_s);
    const auto start = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                          std::chrono::duration<double>(gap));
    const auto end =
        start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(hold));
    if (end > deadline || stop()) break;
    sleep_until(start, stop);
    if (stop()) break;

    FaultEvent ev;
    ev.kind = opts_.kinds[rng_() % opts_.kinds.size()];
    ev.start_s = now_s();
    std::vector<int> order(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i)
      order[static_cast<std::size_t>(i)] = i;
    std::shuffle(order.begin(), order.end(), rng_);
    std::vector<std::pair<int, int>> cut;
    auto cut_between = [&](const std::vector<int>& a, const std::vector<int>& b) {
      for (int x : a)
        for (int y : b)
          cut.emplace_back(x, y);
    };
    int target = -1;
    std::uintmax_t log_mark = 0;
    const bool needs_three = ev.kind == "partition" || ev.kind == "isolate" || ev.kind == "bridge";
    if (needs_three && n < 3) {
      ev.applied = false;  // no majority/minority split of fewer than 3 members
      ev.detail = "needs at least 3 members";
    }
    if (ev.kind == "disk" && (disks_ == nullptr || !disks_->active())) {
      ev.applied = false;
      ev.detail = "no tmpfs data dirs";
    }
    if (ev.applied &&
        (ev.kind == "kill" || ev.kind == "pause" || ev.kind == "slow" || ev.kind == "disk")) {
      target = pick_target(ev.kind != "slow", &ev.target);
      if (target < 0) ev.applied = false;
    }
    if (ev.kind == "kill" && target >= 0) {
      nodes_->kill9(target);
      ev.detail = "SIGKILL, restart after the hold";
    } else if (ev.kind == "pause" && target >= 0) {
      nodes_->pause(target);
      ev.detail = "SIGSTOP, SIGCONT after the hold";
    } else if (ev.kind == "disk" && target >= 0) {
      log_mark = nodes_->log_size(target);
      nodes_->set_may_exit(target, true);
      ev.applied = disks_->fill(target, &ev.detail);
    } else if (ev.kind == "slow" && target >= 0) {
      ev.applied = net_->slow(target, &ev.detail);
    } else if (ev.kind == "partition" && ev.applied) {
      const int minority = 1 + static_cast<int>(rng_() % static_cast<std::uint64_t>((n - 1) / 2));
      std::vector<int> a(order.begin(), order.begin() + minority),
          b(order.begin() + minority, order.end());
      cut_between(a, b);
      ev.target = names(a) + " | " + names(b);
    } else if (ev.kind == "isolate" && ev.applied) {
      std::string label;
      auto l = nodes_->leader();
      const int victim = l ? *l : order[0];
      std::vector<int> rest;
      for (int i = 0; i < n; ++i)
        if (i != victim) rest.push_back(i);
      cut_between({victim}, rest);
      ev.target = nodes_->spec(victim).name + (l ? " (leader)" : "") + " | " + names(rest);
    } else if (ev.kind == "bridge" && ev.applied) {
      // order[0] sees everyone; the others split in two halves that cannot talk.
      std::vector<int> a, b;
      for (std::size_t i = 1; i < order.size(); ++i)
        (i % 2 == 1 ? a : b).push_back(order[i]);
      cut_between(a, b);
      ev.target = names(a) + " | " + names(b) + ", bridge " + nodes_->spec(order[0]).name;
    }
    if (!cut.empty()) {
      std::string err;
      ev.applied = net_->partition(cut, &err);
      ev.detail = ev.applied ? "blackhole routes in each side's namespace" : err;
    }
    spdlog::info("nemesis: {} {} {}", ev.kind, ev.target, ev.applied ? "" : "(not applied)");
    sleep_until(end, stop);
    if (ev.kind == "kill" && target >= 0) {
      std::string err;
      if (!nodes_->start(target, &err)) spdlog::error("restart: {}", err);
    } else if (ev.kind == "pause" && target >= 0) {
      nodes_->resume(target);
    } else if (ev.kind == "disk" && target >= 0) {
      disks_->unfill(target);
      // A member that hit ENOSPC logs that it stops; give it time to finish exiting (its exit
      // is expected), then make sure it is gone before restarting it.
      if (nodes_->log_since(target, log_mark).find("stopping this member") != std::string::npos) {
        const auto t0 = Clock::now();
        if (!nodes_->wait_exit(target, 15s)) {
          nodes_->kill9(target);
          ev.detail += "; still running 15 s after it said it stops: killed";
        } else {
          ev.detail += "; it stopped itself, exit after " +
                       std::to_string(
                           std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0)
                               .count()) +
                       " ms more";
        }
      }
      nodes_->reap_exited();
      nodes_->set_may_exit(target, false);
      if (!nodes_->running(target)) {
        std::string err;
        if (!nodes_->start(target, &err)) spdlog::error("restart: {}", err);
      }
    } else if (ev.kind == "slow") {
      net_->heal_slow();
    } else if (!cut.empty()) {
      net_->heal_partition();
    }
    ev.end_s = now_s();
    events_.push_back(ev);
  }
  heal_all();
}

std::map<std::string, int> Nemesis::counts() const {
  std::map<std::string, int> c;
  for (const auto& e : events_)
    if (e.applied) ++c[e.kind];
  return c;
}

}  // namespace ringwire::tools::kv_faults
