// raft_bench: the Raft core's own ceiling. Three nodes in one process, an instant network and
// an in-memory "disk": every cost measured is the core's (plus the copies a host makes).
// Proposes 100-byte commands and counts entries committed (and applied) on the leader.
//   unbatched: one proposal, then run the cluster until it is committed, then the next
//   batched:   `--batch` commands per propose_batch() between two rounds of Ready processing
// Reports, per mode, the median over `--reps` of committed entries per second and the CPU
// time (process CPU clock, all nodes) per committed entry. Every run checks that all three
// nodes applied the same commands in the same order (exit 3 otherwise).
#include <time.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "ringwire/core/clock.hpp"
#include "ringwire/raft/node.hpp"

namespace {

using namespace ringwire::raft;

std::uint64_t cpu_ns() {
  timespec ts;
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ull +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

class Bench {
 public:
  explicit Bench(std::size_t max_entries_per_msg) {
    for (NodeId id = 1; id <= 3; ++id) {
      Config c;
      c.id = id;
      c.voters = {1, 2, 3};
      c.seed = id;
      c.max_entries_per_msg = max_entries_per_msg;
      c.max_inflight_msgs = 256;
      nodes_[id] = std::make_unique<Node>(c);
    }
    nodes_[1]->campaign();
    run();
  }
  Node& leader() { return *nodes_[1]; }

  // Processes every Ready and delivers every message until the cluster is quiet.
  void run() {
    for (bool busy = true; busy;) {
      busy = false;
      for (auto& [id, n] : nodes_) {
        while (n->has_ready()) {
          busy = true;
          Ready rd = n->ready();
          auto& disk = disks_[id];
          if (!rd.entries.empty()) {
            disk.resize(rd.entries.front().index - 1);
            disk.insert(disk.end(), rd.entries.begin(), rd.entries.end());
          }
          for (auto& m : rd.messages)
            net_.push_back(std::move(m));
          for (const auto& e : rd.committed_entries) {
            if (!e.data.empty()) applied_[id].push_back(e.data);
          }
          n->advance(rd);
        }
      }
      std::vector<Message> batch;
      batch.swap(net_);
      for (const auto& m : batch) {
        busy = true;
        nodes_[m.to]->step(m);
      }
    }
  }
  bool consistent() const {
    return applied_.at(1) == applied_.at(2) && applied_.at(1) == applied_.at(3);
  }
  std::size_t applied_count() const { return applied_.at(1).size(); }

 private:
  std::map<NodeId, std::unique_ptr<Node>> nodes_;
  std::map<NodeId, std::vector<Entry>> disks_;
  std::map<NodeId, std::vector<std::string>> applied_;
  std::vector<Message> net_;
};

struct Rep {
  double entries_per_s;
  double cpu_ns_per_entry;
};

Rep run_rep(std::uint64_t entries, std::size_t batch, bool& ok) {
  Bench b(batch == 1 ? 1 : 64);
  const std::string cmd(100, 'x');
  const std::uint64_t start_commit = b.leader().log().committed();
  const std::uint64_t t0 = ringwire::core::now_ns(), c0 = cpu_ns();
  for (std::uint64_t done = 0; done < entries;) {
    const std::size_t n = std::min<std::uint64_t>(batch, entries - done);
    const bool proposed =
        n == 1 ? b.leader().propose(cmd).has_value()
               : b.leader().propose_batch(std::vector<std::string>(n, cmd)).has_value();
    if (!proposed) {
      ok = false;
      return {0, 0};
    }
    b.run();
    done += n;
  }
  const std::uint64_t t1 = ringwire::core::now_ns(), c1 = cpu_ns();
  const std::uint64_t committed = b.leader().log().committed() - start_commit;
  if (committed != entries || b.applied_count() != entries || !b.consistent()) ok = false;
  return {static_cast<double>(committed) * 1e9 / static_cast<double>(t1 - t0),
          static_cast<double>(c1 - c0) / static_cast<double>(committed)};
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "raft_bench: proposals committed per second by the Raft core (3 nodes, one process, "
      "instant network, in-memory disk), 100-byte commands"};
  std::uint64_t entries = 200'000;
  std::size_t batch = 256;
  int reps = 5;
  bool as_json = false;
  app.add_option("--entries", entries, "entries per rep")->check(CLI::Range(1ull, 100'000'000ull));
  app.add_option("--batch", batch, "proposals per round in the batched mode")
      ->check(CLI::Range(std::size_t{2}, std::size_t{100'000}));
  app.add_option("--reps", reps, "repetitions (median reported)")->check(CLI::Range(1, 100));
  app.add_flag("--json", as_json, "print one JSON object");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  bool ok = true;
  nlohmann::json out{{"entries_per_rep", entries}, {"reps", reps}, {"command_bytes", 100}};
  for (const auto& [name, b] : {std::pair<const char*, std::size_t>{"unbatched", 1},
                                std::pair<const char*, std::size_t>{"batched", batch}}) {
    std::vector<double> rate, cpu;
    // Unbatched is ~100x slower per entry: a tenth of the entries keeps it short.
    const std::uint64_t n = b == 1 ? std::max<std::uint64_t>(entries / 10, 1) : entries;
    for (int r = 0; r < reps; ++r) {
      const Rep rep = run_rep(n, b, ok);
      rate.push_back(rep.entries_per_s);
      cpu.push_back(rep.cpu_ns_per_entry);
    }
    out[name] = {{"batch", b},
                 {"entries", n},
                 {"committed_per_s_median", median(rate)},
                 {"committed_per_s_min", *std::min_element(rate.begin(), rate.end())},
                 {"committed_per_s_max", *std::max_element(rate.begin(), rate.end())},
                 {"cpu_ns_per_entry_median", median(cpu)}};
    if (!as_json) {
      std::printf(
          "%-10s batch %-6zu %10.0f committed/s (median of %d; min %.0f, max %.0f), "
          "%.0f ns CPU per entry (3 nodes)\n",
          name, b, median(rate), reps, *std::min_element(rate.begin(), rate.end()),
          *std::max_element(rate.begin(), rate.end()), median(cpu));
    }
  }
  out["verified"] = ok;
  if (as_json) std::printf("%s\n", out.dump().c_str());
  if (!ok) {
    std::fprintf(stderr, "raft_bench: nodes disagree or an entry was not committed\n");
    return 3;
  }
  return 0;
}
