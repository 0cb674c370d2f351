// Medians, ratios and the targets, from the records of one run.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "harness/placement.hpp"
#include "results.hpp"

namespace ipcb {

Range range_of(std::vector<double> v) {
  Range r;
  v.erase(std::remove_if(v.begin(), v.end(), [](double x) { return !std::isfinite(x); }), v.end());
  if (v.empty()) return r;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  r.median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  r.min = v.front();
  r.max = v.back();
  r.n = static_cast<int>(n);
  return r;
}

std::uint64_t total_mismatches(const Run& run) {
  std::uint64_t n = 0;
  for (const auto& c : run.cells)
    for (const auto& r : c.reps)
      n += r.mismatches;
  return n;
}

bool any_failed_rep(const Run& run) {
  for (const auto& c : run.cells)
    for (const auto& r : c.reps)
      if (!r.ok) return true;
  return false;
}

namespace {

template <class F>
Range over_ok(const Cell& c, F f) {
  std::vector<double> v;
  for (const auto& r : c.reps)
    if (r.ok) v.push_back(f(r));
  return range_of(std::move(v));
}

std::string fmt(const char* f, double a, double b = 0, double c = 0) {
  char buf[256];
  std::snprintf(buf, sizeof buf, f, a, b, c);
  return buf;
}

const LatencyRow* find_lat(const Analysis& a, const std::string& name) {
  for (const auto& r : a.latency)
    if (r.name == name && r.ok_reps > 0) return &r;
  return nullptr;
}
const TputRow* find_tput(const Analysis& a, const std::string& name, std::size_t size) {
  for (const auto& r : a.throughput)
    if (r.name == name && r.size == size && r.ok_reps > 0) return &r;
  return nullptr;
}

}  // namespace

// The placement a throughput rep ran at: its probe before the transfer,
// unless the probe after disagrees by more than 1.5x (the vCPUs moved).
int placement_of(const rwbench::Placements& p, const RepRecord& r) {
  const double lo = std::min(r.probe_before_ns, r.probe_after_ns);
  const double hi = std::max(r.probe_before_ns, r.probe_after_ns);
  if (lo <= 0 || hi > 1.5 * lo) return -1;
  return p.of(r.probe_before_ns);
}

Analysis analyze(const Run& run) {
  Analysis a;
  std::vector<double> probes;
  for (const auto& c : run.cells)
    if (c.workload == Workload::throughput)
      for (const auto& r : c.reps)
        if (r.ok) probes.push_back(r.probe_before_ns);
  const rwbench::Placements places = rwbench::Placements::cluster(probes);
  a.placement_ns = places.label;
  a.placement_reps.assign(places.label.size(), 0);
  for (const auto& c : run.cells)
    if (c.workload == Workload::throughput)
      for (const auto& r : c.reps)
        if (r.ok) {
          const int k = placement_of(places, r);
          if (k >= 0) ++a.placement_reps[static_cast<std::size_t>(k)];
        }
  for (std::size_t k = 0; k < a.placement_reps.size(); ++k)
    if (a.common < 0 || a.placement_reps[k] > a.placement_reps[static_cast<std::size_t>(a.common)])
      a.common = static_cast<int>(k);
  for (const auto& c : run.cells) {
    if (!c.skipped.empty()) continue;
    const Transport& t = *run.transports[c.transport];
    int ok = 0;
    std::uint64_t bad = 0;
    for (const auto& r : c.reps) {
      ok += r.ok;
      bad += r.mismatches;
    }
    if (c.workload == Workload::latency) {
      LatencyRow row;
      row.name = t.name();
      row.kind = t.kind();
      row.ok_reps = ok;
      row.reps = static_cast<int>(c.reps.size());
      row.mismatches = bad;
      row.p50 = over_ok(c, [](const RepRecord& r) { return r.lat.p50; });
      row.p99 = over_ok(c, [](const RepRecord& r) { return r.lat.p99; });
      row.p999 = over_ok(c, [](const RepRecord& r) { return r.lat.p999; });
      row.max = over_ok(c, [](const RepRecord& r) { return r.lat.max; });
      row.floor_p50 = over_ok(c, [](const RepRecord& r) { return r.floor_lat.p50; });
      row.floor_p999 = over_ok(c, [](const RepRecord& r) { return r.floor_lat.p999; });
      row.x_floor_p50 = over_ok(c, [](const RepRecord& r) { return r.lat.p50 / r.floor_lat.p50; });
      row.x_floor_p999 =
          over_ok(c, [](const RepRecord& r) { return r.lat.p999 / r.floor_lat.p999; });
      row.x_floor_p999_p50 =
          over_ok(c, [](const RepRecord& r) { return r.lat.p999 / r.floor_lat.p50; });
      a.latency.push_back(row);
    } else {
      TputRow row;
      row.name = t.name();
      row.kind = t.kind();
      row.size = c.size;
      row.ok_reps = ok;
      row.reps = static_cast<int>(c.reps.size());
      row.mismatches = bad;
      row.msgs_per_s = over_ok(c, [](const RepRecord& r) { return r.msgs_per_s; });
      row.mb_per_s = over_ok(c, [](const RepRecord& r) { return r.mb_per_s; });
      row.probe_ns = over_ok(c, [](const RepRecord& r) { return r.probe_before_ns; });
      std::vector<double> at;
      for (const auto& r : c.reps)
        if (r.ok && a.common >= 0 && placement_of(places, r) == a.common)
          at.push_back(r.msgs_per_s);
      row.at_common = range_of(std::move(at));
      a.throughput.push_back(row);
    }
  }

  // Ratios against the floor row and the fastest kernel transport.
  const LatencyRow* floor_row = find_lat(a, "floor");
  double best_kernel = std::numeric_limits<double>::infinity();
  for (const auto& r : a.latency) {
    if (r.kind == Kind::kernel && r.ok_reps > 0 && r.p50.median < best_kernel) {
      best_kernel = r.p50.median;
      a.best_kernel_latency = r.name;
    }
  }
  for (auto& r : a.latency) {
    if (r.ok_reps == 0) continue;
    if (floor_row && floor_row->p50.median > 0)
      r.x_floor_row = r.p50.median / floor_row->p50.median;
    if (std::isfinite(best_kernel) && best_kernel > 0) r.x_kernel = r.p50.median / best_kernel;
  }
  for (std::size_t size : {std::size_t{64}, std::size_t{4096}}) {
    double best = 0;
    std::string who;
    for (const auto& r : a.throughput) {
      if (r.size == size && r.kind == Kind::kernel && r.ok_reps > 0 && r.msgs_per_s.median > best) {
        best = r.msgs_per_s.median;
        who = r.name;
      }
    }
    (size == 64 ? a.best_kernel_tput_small : a.best_kernel_tput_large) = who;
    for (auto& r : a.throughput)
      if (r.size == size && r.ok_reps > 0 && best > 0) r.x_kernel = r.msgs_per_s.median / best;
  }

  // ---- targets ----
  const LatencyRow* spin = find_lat(a, "channel-spin");
  {
    Target t{"spin_p50", "channel-spin p50 within 1.3x the floor (same cell)", false, false, ""};
    if (spin) {
      t.evaluated = true;
      t.met = spin->x_floor_p50.median <= 1.3;
      t.detail = fmt("p50 %.1f ns vs floor p50 %.1f ns in the same cells: %.2fx", spin->p50.median,
                     spin->floor_p50.median, spin->x_floor_p50.median) +
                 fmt(" (reps %.2f..%.2f)", spin->x_floor_p50.min, spin->x_floor_p50.max);
      if (floor_row) t.detail += fmt("; vs the floor row: %.2fx", spin->x_floor_row);
      if (!t.met) t.detail += fmt("; missed by %.0f%%", (spin->x_floor_p50.median / 1.3 - 1) * 100);
    }
    a.targets.push_back(t);
  }
  {
    Target t{"spin_p999", "channel-spin p99.9 under 4x the floor (floor p50, same cell)", false,
             false, ""};
    if (spin) {
      t.evaluated = true;
      t.met = spin->x_floor_p999_p50.median < 4.0;
      t.detail = fmt("p99.9 %.1f ns vs floor p50 %.1f ns: %.2fx", spin->p999.median,
                     spin->floor_p50.median, spin->x_floor_p999_p50.median) +
                 fmt("; same percentile (vs floor p99.9 %.1f ns): %.2fx", spin->floor_p999.median,
                     spin->x_floor_p999.median);
      if (!t.met) {
        t.detail += fmt("; missed by %.0f%%", (spin->x_floor_p999_p50.median / 4.0 - 1) * 100);
      }
    }
    a.targets.push_back(t);
  }
  {
    Target t{"futex_vs_kernel",
             "channel-futex ahead of every kernel transport (latency p50 and p99.9, throughput "
             "64 B and 4 KiB)",
             false, false, ""};
    const LatencyRow* fx = find_lat(a, "channel-futex");
    if (fx) {
      t.evaluated = true;
      t.met = true;
      for (const auto& r : a.latency) {
        if (r.kind != Kind::kernel || r.ok_reps == 0) continue;
        const bool ahead = fx->p50.median < r.p50.median && fx->p999.median < r.p999.median;
        t.met &= ahead;
        t.detail += (t.detail.empty() ? "" : "; ") + r.name +
                    fmt(" latency p50 %.2fx, p99.9 %.2fx", r.p50.median / fx->p50.median,
                        r.p999.median / fx->p999.median) +
                    (ahead ? "" : " (NOT ahead)");
      }
      for (std::size_t size : {std::size_t{64}, std::size_t{4096}}) {
        const TputRow* ft = find_tput(a, "channel-futex", size);
        if (!ft) {
          t.met = false;
          t.detail += fmt("; no channel-futex throughput at %.0f B", static_cast<double>(size));
          continue;
        }
        for (const auto& r : a.throughput) {
          if (r.kind != Kind::kernel || r.size != size || r.ok_reps == 0) continue;
          const bool ahead = ft->msgs_per_s.median > r.msgs_per_s.median;
          t.met &= ahead;
          t.detail += "; " + r.name +
                      fmt(" throughput %.0f B: %.2fx", static_cast<double>(size),
                          ft->msgs_per_s.median / r.msgs_per_s.median) +
                      (ahead ? "" : " (NOT ahead)");
        }
      }
      t.detail = "channel-futex vs " + t.detail +
                 " (ratios: kernel / futex for latency, "
                 "futex / kernel for throughput; > 1 means futex is ahead)";
    }
    a.targets.push_back(t);
  }
  for (std::size_t size : {std::size_t{64}, std::size_t{4096}}) {
    Target t{size == 64 ? "tput_vs_peers_64" : "tput_vs_peers_4k",
             std::string("Channel throughput (") + (size == 64 ? "64 B" : "4 KiB") +
                 ", every wait strategy) ahead of every other transport, iceoryx included",
             false, false, ""};
    double best_other = 0;
    std::string who;
    for (const auto& r : a.throughput) {
      if (r.size != size || r.ok_reps == 0 || r.kind == Kind::ringwire || r.kind == Kind::baseline)
        continue;
      if (r.msgs_per_s.median > best_other) {
        best_other = r.msgs_per_s.median;
        who = r.name;
      }
    }
    bool any = false, all = true;
    std::string d, missing;
    for (const char* m : {"channel-spin", "channel-yield", "channel-futex"}) {
      const TputRow* r = find_tput(a, m, size);
      if (!r) {
        missing += (missing.empty() ? "" : ", ") + std::string(m);
        continue;
      }
      any = true;
      const bool ahead = r->msgs_per_s.median > best_other;
      all &= ahead;
      d += (d.empty() ? "" : ", ") + std::string(m) +
           fmt(" %.2f M msg/s (%.2fx)", r->msgs_per_s.median / 1e6,
               best_other > 0 ? r->msgs_per_s.median / best_other : 0.0);
    }
    if (any && best_other > 0) {
      t.evaluated = true;
      t.met = all;
      t.detail = "best other: " + who + fmt(" %.2f M msg/s; ", best_other / 1e6) + d;
      if (!missing.empty()) t.detail += "; not measured: " + missing;
      if (find_tput(a, "iceoryx", size) == nullptr) t.detail += "; iceoryx not measured";
    }
    a.targets.push_back(t);
  }
  return a;
}

}  // namespace ipcb
