// Placement classes for the floor probes of a run.
//
// The hypervisor decides where the two vCPUs run: the floor round trip (one
// atomic ping-ponged between the two pinned threads) takes a few discrete
// values (~30, ~75 and ~380 ns on the machine in docs/benchmarks.md) and can
// change between cells, even during one. Every rep carries the floor probed on
// the same CPUs in the same cell; after the run all those floors are
// clustered (sorted, split where two neighbours differ by more than `gap`x)
// and a comparison between two cells uses reps of the same cluster only.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <string>
#include <vector>

namespace rwbench {

struct Placements {
  std::vector<double> lo, hi, label;  // per cluster: min, max, median floor (ns)

  // Cluster index of a floor value, -1 if it is in none (or v <= 0).
  int of(double v) const {
    if (v <= 0) return -1;
    for (std::size_t i = 0; i < lo.size(); ++i)
      if (v >= lo[i] && v <= hi[i]) return static_cast<int>(i);
    return -1;
  }
  std::string name(int i) const {
    if (i < 0 || static_cast<std::size_t>(i) >= label.size()) return "?";
    char b[32];
    std::snprintf(b, sizeof b, "~%.0fns", label[static_cast<std::size_t>(i)]);
    return b;
  }

  // `floors` in any order; values <= 0 (unknown) are ignored.
  static Placements cluster(std::vector<double> floors, double gap = 1.4) {
    std::vector<double> v;
    for (double x : floors)
      if (x > 0) v.push_back(x);
    std::sort(v.begin(), v.end());
    Placements p;
    std::vector<double> cur;
    auto close = [&] {
      if (cur.empty()) return;
      p.lo.push_back(cur.front());
      p.hi.push_back(cur.back());
      const std::size_t n = cur.size();
      p.label.push_back(n % 2 ? cur[n / 2] : (cur[n / 2 - 1] + cur[n / 2]) / 2);
      cur.clear();
    };
    for (double x : v) {
      if (!cur.empty() && x > gap * cur.back()) close();
      cur.push_back(x);
    }
    close();
    return p;
  }
};

}  // namespace rwbench
