// ipc_bench: inter-process transports between two forked processes pinned to
// two CPUs. One-way latency (ping-pong RTT/2, 64 B) with the floor measured
// in the same cells, and verified throughput (64 B, 4 KiB), for the floor,
// ringwire Channel (spin / yield / futex), pipe, Unix socket, POSIX mq, TCP
// loopback and the installed peers (boost::interprocess message_queue,
// ZeroMQ, iceoryx). Repetitions are interleaved: rep 1 of every cell, then
// rep 2, ... so slow drift of a shared machine hits every cell alike.
#include <dirent.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>

#include "options.hpp"
#include "results.hpp"
#include "runner.hpp"

namespace {

using namespace ipcb;

RepRecord record_of(const Cell& c, const CellOutcome& out) {
  RepRecord r;
  const Results& s = out.result;
  r.error = out.error;
  r.leak = out.leak;
  r.note = s.note;
  r.mismatches = s.mismatches_a + s.mismatches_b;
  r.received = s.received;
  r.preempted = s.a_preempt + s.b_preempt;
  r.cpu_share = std::min(s.a_cpu_share, s.b_cpu_share);
  r.ok = out.ok;
  if (c.workload == Workload::latency) {
    r.lat = s.lat;
    r.floor_lat = s.floor_lat;
    // A kept exactly `count` timed samples of each kind.
    if (r.ok && r.lat.samples != c.count) {
      r.ok = false;
      r.error = "latency samples missing";
    }
  } else {
    const std::uint64_t t0 = s.t_start, t1 = s.t_end;
    if (r.ok && (s.received != c.count || t1 <= t0)) {
      r.ok = false;
      r.error =
          "consumer received " + std::to_string(s.received) + " of " + std::to_string(c.count);
    }
    if (r.ok) {
      const double dt = static_cast<double>(t1 - t0) / 1e9;
      r.msgs_per_s = static_cast<double>(c.count) / dt;
      r.mb_per_s = static_cast<double>(c.count) * static_cast<double>(c.size) / dt / 1e6;
    }
    r.probe_before_ns = s.probe_before_ns;
    r.probe_after_ns = s.probe_after_ns;
  }
  return r;
}

// Anything of ours still named after the run: removed, and reported.
std::vector<std::string> sweep_leftovers() {
  std::vector<std::string> out;
  const std::string pid = std::to_string(::getpid());
  const std::string a = "ringwire.ipcb." + pid + ".", b = "ipcb." + pid + ".";
  for (const char* dir : {"/dev/shm", "/tmp"}) {
    DIR* d = ::opendir(dir);
    if (!d) continue;
    while (dirent* e = ::readdir(d)) {
      const std::string n = e->d_name;
      if (n.rfind(a, 0) != 0 && n.rfind(b, 0) != 0) continue;
      const std::string path = std::string(dir) + "/" + n;
      if (std::string(dir) == "/dev/shm") {
        ::shm_unlink(("/" + n).c_str());
      } else {
        ::unlink(path.c_str());
      }
      out.push_back(path);
    }
    ::closedir(d);
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  Run run;
  if (const int rc = parse_options(argc, argv, run.opt); rc != 0) return rc == 1 ? 0 : 2;
  const Options& o = run.opt;
  std::FILE* table = o.json ? stderr : stdout;
  run.machine = probe_machine();
  const std::uint64_t t_run = rwbench::now_ns();

  for (auto& t : all_transports()) {
    bool wanted = o.transports.empty();
    for (const auto& n : o.transports)
      wanted |= n == t->name();
    if (!wanted) continue;
    run.unavailable.push_back(t->unavailable());
    run.transports.push_back(std::move(t));
  }
  for (std::size_t i = 0; i < run.transports.size(); ++i) {
    if (!run.unavailable[i].empty()) continue;
    const Transport& t = *run.transports[i];
    const struct {
      Workload w;
      std::size_t size;
      std::uint64_t count;
    } plan[] = {{Workload::latency, o.latency_size, o.rtt},
                {Workload::throughput, 64, o.msgs_small},
                {Workload::throughput, 4096, o.msgs_large}};
    for (const auto& p : plan) {
      Cell c;
      c.transport = i;
      c.workload = p.w;
      c.size = p.size;
      c.count = p.count;
      c.skipped = t.unsupported(p.w, p.size);
      run.cells.push_back(c);
    }
  }
  for (std::size_t i = 0; i < run.transports.size(); ++i) {
    if (!run.unavailable[i].empty()) {
      std::fprintf(stderr, "ipc_bench: %s not available: %s\n", run.transports[i]->name(),
                   run.unavailable[i].c_str());
    }
  }

  unsigned serial = 0;
  for (int rep = 0; rep < o.reps && !run.interrupted; ++rep) {
    std::fprintf(stderr, "ipc_bench: rep %d/%d\n", rep + 1, o.reps);
    for (auto& c : run.cells) {
      if (!c.skipped.empty()) continue;
      Transport& t = *run.transports[c.transport];
      CellSpec spec;
      spec.workload = c.workload;
      spec.size = c.size;
      spec.count = c.count;
      spec.block = o.rtt_block;
      spec.warmup = o.warmup;
      spec.tput_batch = o.tput_batch;
      spec.channel_capacity = o.channel_capacity;
      spec.cpu_a = o.cpu_a;
      spec.cpu_b = o.cpu_b;
      spec.rep = rep;
      spec.corrupt_every = o.corrupt_every;
      spec.tag = std::to_string(::getpid()) + "." + std::to_string(serial++);
      const std::uint64_t t0 = rwbench::now_ns();
      spec.deadline_ns = t0 + static_cast<std::uint64_t>(o.timeout_s * 1e9);
      const CellOutcome out = run_cell(t, spec);
      RepRecord r = record_of(c, out);
      r.wall_s = static_cast<double>(rwbench::now_ns() - t0) / 1e9;
      if (!r.leak.empty()) run.leaks.push_back(std::string(t.name()) + ": " + r.leak);
      if (c.workload == Workload::latency) {
        std::fprintf(stderr, "  %-14s latency    p50 %8.1f ns  p99.9 %9.1f ns  floor p50 %6.1f ns",
                     t.name(), r.lat.p50, r.lat.p999, r.floor_lat.p50);
      } else {
        std::fprintf(stderr, "  %-14s %4zu B      %8.3f M msg/s %9.1f MB/s  floor RTT %6.1f ns",
                     t.name(), c.size, r.msgs_per_s / 1e6, r.mb_per_s, r.probe_before_ns);
      }
      std::fprintf(stderr, "%s%s%s\n", r.ok ? "" : "  FAILED: ", r.ok ? "" : r.error.c_str(),
                   r.mismatches ? ("  MISMATCHES " + std::to_string(r.mismatches)).c_str() : "");
      c.reps.push_back(std::move(r));
      if (out.interrupted) {
        run.interrupted = true;
        break;
      }
    }
  }
  for (auto& l : sweep_leftovers())
    run.leaks.push_back("left over after the run (removed): " + l);
  run.wall_s = static_cast<double>(rwbench::now_ns() - t_run) / 1e9;

  const Analysis a = analyze(run);
  print_table(run, a, table);
  if (o.json) std::printf("%s\n", to_json(run, a).c_str());
  std::fflush(nullptr);
  if (total_mismatches(run) != 0) return 3;
  if (run.interrupted || any_failed_rep(run) || !run.leaks.empty()) return 1;
  return 0;
}
