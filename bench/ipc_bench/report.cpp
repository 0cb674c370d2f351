// The human table (text) and the JSON object of a run.
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "results.hpp"

namespace ipcb {

namespace {

using nlohmann::json;

std::string range_str(const Range& r, const char* f = "%.1f") {
  if (r.n == 0) return "-";
  char a[48], b[48], c[48], out[160];
  std::snprintf(a, sizeof a, f, r.median);
  std::snprintf(b, sizeof b, f, r.min);
  std::snprintf(c, sizeof c, f, r.max);
  std::snprintf(out, sizeof out, "%s [%s..%s]", a, b, c);
  return out;
}
std::string num(double v, const char* f = "%.2f") {
  if (v <= 0) return "-";
  char b[48];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

json range_json(const Range& r) {
  return {{"median", r.median}, {"min", r.min}, {"max", r.max}, {"n", r.n}};
}
json summary_json(const LatencySummary& s) {
  return {{"p50", s.p50}, {"p99", s.p99},   {"p999", s.p999},
          {"max", s.max}, {"mean", s.mean}, {"samples", s.samples}};
}

}  // namespace

void print_table(const Run& run, const Analysis& a, std::FILE* f) {
  const Options& o = run.opt;
  const MachineInfo& m = run.machine;
  std::fprintf(f,
               "\nipc_bench: %s, %ld CPUs, %s, clocksource %s (clock_gettime %.1f ns, latency "
               "timestamp %.1f ns)\n"
               "two processes, A on CPU %d (client / producer), B on CPU %d (echo / consumer); "
               "%d reps, interleaved;\nmedian [min..max] over reps. Latency: one-way = RTT/2, "
               "%zu-byte messages, %llu round trips per rep in blocks of %u alternating with\n"
               "floor blocks; throughput: %llu x 64 B and %llu x 4 KiB per rep, every message "
               "verified.\n",
               m.cpu_model.c_str(), m.online_cpus, m.kernel.c_str(), m.clocksource.c_str(),
               m.timer_ns, m.tick_ns, o.cpu_a, o.cpu_b, o.reps, o.latency_size,
               static_cast<unsigned long long>(o.rtt), o.rtt_block,
               static_cast<unsigned long long>(o.msgs_small),
               static_cast<unsigned long long>(o.msgs_large));

  std::fprintf(f, "\nOne-way latency (ns)\n");
  std::fprintf(f, "%-14s %-24s %-24s %-26s %-28s %-22s %-8s %-8s %s\n", "transport", "p50", "p99",
               "p99.9", "max", "floor p50 (same cell)", "x floor", "x kernel", "ok");
  for (const auto& r : a.latency) {
    std::fprintf(f, "%-14s %-24s %-24s %-26s %-28s %-22s %-8s %-8s %d/%d%s\n", r.name.c_str(),
                 range_str(r.p50).c_str(), range_str(r.p99).c_str(), range_str(r.p999).c_str(),
                 range_str(r.max, "%.0f").c_str(), range_str(r.floor_p50).c_str(),
                 num(r.x_floor_p50.median).c_str(), num(r.x_kernel).c_str(), r.ok_reps, r.reps,
                 r.mismatches ? "  MISMATCHES" : "");
  }
  std::fprintf(f,
               "x floor: median over reps of p50 / floor p50 of the same cell; x kernel: median "
               "p50 / that of the fastest kernel transport (%s)\n",
               a.best_kernel_latency.empty() ? "none" : a.best_kernel_latency.c_str());

  for (std::size_t size : {std::size_t{64}, std::size_t{4096}}) {
    std::fprintf(f, "\nThroughput, %s messages\n", size == 64 ? "64 B" : "4 KiB");
    const std::string at =
        a.common >= 0
            ? "M msg/s @" + std::to_string(static_cast<int>(a.placement_ns[a.common] + 0.5)) +
                  "ns (n)"
            : "@placement";
    std::fprintf(f, "%-14s %-28s %-28s %-24s %-20s %-9s %s\n", "transport", "M msg/s", "MB/s",
                 "floor probe RTT ns", at.c_str(), "x kernel", "ok");
    for (const auto& r : a.throughput) {
      if (r.size != size) continue;
      Range mm = r.msgs_per_s;
      mm.median /= 1e6;
      mm.min /= 1e6;
      mm.max /= 1e6;
      char atc[64] = "-";
      if (r.at_common.n > 0) {
        std::snprintf(atc, sizeof atc, "%.3f (%d)", r.at_common.median / 1e6, r.at_common.n);
      }
      std::fprintf(f, "%-14s %-28s %-28s %-24s %-20s %-9s %d/%d%s\n", r.name.c_str(),
                   range_str(mm, "%.3f").c_str(), range_str(r.mb_per_s, "%.0f").c_str(),
                   range_str(r.probe_ns).c_str(), atc, num(r.x_kernel).c_str(), r.ok_reps, r.reps,
                   r.mismatches ? "  MISMATCHES" : "");
    }
    const std::string& bk = size == 64 ? a.best_kernel_tput_small : a.best_kernel_tput_large;
    std::fprintf(f, "x kernel: median msgs/s / that of the fastest kernel transport (%s)\n",
                 bk.empty() ? "none" : bk.c_str());
  }

  std::fprintf(f, "\nThroughput placements (floor probe RTT before each rep, clustered):");
  for (std::size_t k = 0; k < a.placement_ns.size(); ++k) {
    std::fprintf(f, " ~%.0f ns x %d%s", a.placement_ns[k], a.placement_reps[k],
                 static_cast<int>(k) == a.common ? " (most common)" : "");
  }
  std::fprintf(f, "\n\nTransports\n");
  for (std::size_t i = 0; i < run.transports.size(); ++i) {
    const auto& t = *run.transports[i];
    std::fprintf(f, "  %-14s %-8s %s\n", t.name(), kind_name(t.kind()),
                 run.unavailable[i].empty() ? t.description().c_str()
                                            : ("NOT AVAILABLE: " + run.unavailable[i]).c_str());
  }
  bool any_skip = false;
  for (const auto& c : run.cells) {
    if (c.skipped.empty()) continue;
    if (!any_skip) std::fprintf(f, "Skipped cells\n");
    any_skip = true;
    std::fprintf(f, "  %-14s %s %zu B: %s\n", run.transports[c.transport]->name(),
                 c.workload == Workload::latency ? "latency" : "throughput", c.size,
                 c.skipped.c_str());
  }
  bool any_err = false;
  for (const auto& c : run.cells) {
    for (std::size_t k = 0; k < c.reps.size(); ++k) {
      const auto& r = c.reps[k];
      if (r.ok && r.mismatches == 0) continue;
      if (!any_err) std::fprintf(f, "Failed reps\n");
      any_err = true;
      std::fprintf(f, "  %-14s %s %zu B rep %zu: %s%s\n", run.transports[c.transport]->name(),
                   c.workload == Workload::latency ? "latency" : "throughput", c.size, k + 1,
                   r.error.empty() ? "" : r.error.c_str(),
                   r.mismatches ? (" mismatches: " + std::to_string(r.mismatches)).c_str() : "");
    }
  }
  std::fprintf(f, "\nTargets\n");
  for (const auto& t : a.targets) {
    std::fprintf(f, "  [%s] %s\n        %s\n", !t.evaluated ? "n/a " : (t.met ? "MET " : "MISS"),
                 t.text.c_str(), t.detail.empty() ? "not measured in this run" : t.detail.c_str());
  }
  for (const auto& l : run.leaks)
    std::fprintf(f, "LEAK: %s\n", l.c_str());
  // Busy-polling workers should own their CPUs: a CPU share (CPU time / wall
  // time of the worker) well below 1 means other work ran on those CPUs.
  std::vector<double> share;
  for (const auto& c : run.cells) {
    const std::string n = run.transports[c.transport]->name();
    if (n != "floor" && n != "channel-spin" && n != "iceoryx") continue;
    for (const auto& r : c.reps)
      if (r.ok) share.push_back(r.cpu_share);
  }
  if (!share.empty()) {
    const Range sr = range_of(share);
    std::fprintf(f,
                 "\nCPU share of the busy-polling workers (floor, channel-spin, iceoryx): median "
                 "%.2f [%.2f..%.2f]%s\n",
                 sr.median, sr.min, sr.max,
                 sr.median < 0.9 ? "  -- other work shared these CPUs: results are disturbed" : "");
  }
  std::fprintf(f, "\nverification: %llu mismatches; wall time %.1f s\n",
               static_cast<unsigned long long>(total_mismatches(run)), run.wall_s);
}

std::string to_json(const Run& run, const Analysis& a) {
  const Options& o = run.opt;
  json j;
  j["tool"] = "ipc_bench";
  j["command"] = o.argv_line;
  j["machine"] = {{"cpu_model", run.machine.cpu_model},
                  {"kernel", run.machine.kernel},
                  {"online_cpus", run.machine.online_cpus},
                  {"clocksource", run.machine.clocksource},
                  {"compiler", run.machine.compiler},
                  {"clock_gettime_ns", run.machine.timer_ns},
                  {"latency_timestamp_ns", run.machine.tick_ns},
                  {"loadavg_1min_at_start", run.machine.load1}};
  j["config"] = {{"cpus", {o.cpu_a, o.cpu_b}},
                 {"reps", o.reps},
                 {"quick", o.quick},
                 {"latency_message_bytes", o.latency_size},
                 {"latency_round_trips_per_rep", o.rtt},
                 {"latency_block", o.rtt_block},
                 {"latency_warmup", o.warmup},
                 {"throughput_msgs_64", o.msgs_small},
                 {"throughput_msgs_4096", o.msgs_large},
                 {"ringwire_tput_batch", o.tput_batch},
                 {"channel_capacity", o.channel_capacity},
                 {"timeout_s", o.timeout_s},
                 {"inject_corruption_every", o.corrupt_every},
                 {"units", "latency: one-way ns (RTT/2); throughput: msgs/s, MB/s (1e6 bytes)"}};
  json ts = json::array();
  for (std::size_t i = 0; i < run.transports.size(); ++i) {
    const auto& t = *run.transports[i];
    ts.push_back({{"name", t.name()},
                  {"kind", kind_name(t.kind())},
                  {"description", t.description()},
                  {"available", run.unavailable[i].empty()},
                  {"unavailable_reason", run.unavailable[i]}});
  }
  j["transports"] = ts;
  json cells = json::array();
  for (const auto& c : run.cells) {
    json jc = {{"transport", run.transports[c.transport]->name()},
               {"workload", c.workload == Workload::latency ? "latency" : "throughput"},
               {"size", c.size},
               {"count", c.count}};
    if (!c.skipped.empty()) jc["skipped"] = c.skipped;
    json reps = json::array();
    for (const auto& r : c.reps) {
      json jr = {{"ok", r.ok},
                 {"error", r.error},
                 {"mismatches", r.mismatches},
                 {"received", r.received},
                 {"preempted", r.preempted},
                 {"cpu_share", r.cpu_share},
                 {"wall_s", r.wall_s}};
      if (!r.note.empty()) jr["note"] = r.note;
      if (!r.leak.empty()) jr["leak"] = r.leak;
      if (c.workload == Workload::latency) {
        jr["one_way_ns"] = summary_json(r.lat);
        jr["floor_one_way_ns"] = summary_json(r.floor_lat);
      } else {
        jr["msgs_per_s"] = r.msgs_per_s;
        jr["mb_per_s"] = r.mb_per_s;
        jr["floor_probe_rtt_ns"] = {r.probe_before_ns, r.probe_after_ns};
      }
      reps.push_back(jr);
    }
    jc["reps"] = reps;
    cells.push_back(jc);
  }
  j["cells"] = cells;
  json lat = json::array();
  for (const auto& r : a.latency) {
    lat.push_back({{"transport", r.name},
                   {"kind", kind_name(r.kind)},
                   {"ok_reps", r.ok_reps},
                   {"reps", r.reps},
                   {"mismatches", r.mismatches},
                   {"p50", range_json(r.p50)},
                   {"p99", range_json(r.p99)},
                   {"p999", range_json(r.p999)},
                   {"max", range_json(r.max)},
                   {"floor_p50_same_cell", range_json(r.floor_p50)},
                   {"floor_p999_same_cell", range_json(r.floor_p999)},
                   {"x_floor_p50_same_cell", range_json(r.x_floor_p50)},
                   {"x_floor_p999_same_cell", range_json(r.x_floor_p999)},
                   {"x_floor_p999_vs_floor_p50", range_json(r.x_floor_p999_p50)},
                   {"x_floor_row_p50", r.x_floor_row},
                   {"x_fastest_kernel_p50", r.x_kernel}});
  }
  json tp = json::array();
  for (const auto& r : a.throughput) {
    tp.push_back({{"transport", r.name},
                  {"kind", kind_name(r.kind)},
                  {"size", r.size},
                  {"ok_reps", r.ok_reps},
                  {"reps", r.reps},
                  {"mismatches", r.mismatches},
                  {"msgs_per_s", range_json(r.msgs_per_s)},
                  {"mb_per_s", range_json(r.mb_per_s)},
                  {"floor_probe_rtt_ns", range_json(r.probe_ns)},
                  {"msgs_per_s_at_common_placement", range_json(r.at_common)},
                  {"x_fastest_kernel", r.x_kernel}});
  }
  json tg = json::array();
  for (const auto& t : a.targets) {
    tg.push_back({{"id", t.id},
                  {"target", t.text},
                  {"evaluated", t.evaluated},
                  {"met", t.met},
                  {"detail", t.detail}});
  }
  j["summary"] = {{"latency", lat},
                  {"throughput", tp},
                  {"fastest_kernel_latency", a.best_kernel_latency},
                  {"fastest_kernel_throughput_64", a.best_kernel_tput_small},
                  {"fastest_kernel_throughput_4096", a.best_kernel_tput_large},
                  {"throughput_placements_ns", a.placement_ns},
                  {"throughput_placement_reps", a.placement_reps},
                  {"common_placement_index", a.common},
                  {"targets", tg}};
  j["verification"] = {{"mismatches", total_mismatches(run)}, {"failed_reps", any_failed_rep(run)}};
  j["leaks"] = run.leaks;
  j["interrupted"] = run.interrupted;
  j["wall_s"] = run.wall_s;
  return j.dump(1);
}

}  // namespace ipcb
