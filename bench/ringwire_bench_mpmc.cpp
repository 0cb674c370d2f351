// ringwire_bench_mpmc: multi-producer / multi-consumer throughput benchmark.
//
// One run measures, for the ringwire MPSC / MPMC queues, MutexQueue and every
// peer queue whose header was found at configure time, the throughput of 8-byte
// items between pinned threads in three configurations:
//   1P1C  one producer, one consumer (one thread per CPU);
//   2P1C  two producers, one consumer: 3 threads on 2 CPUs (oversubscribed);
//   2P2C  two producers, two consumers: 4 threads on 2 CPUs (oversubscribed),
//         MPMC queues only.
// Every repetition runs in its own forked child, checks exactly-once delivery
// and (where the queue promises it) per-producer FIFO order of every item, and
// probes the floor (atomic ping-pong between the CPUs) before and after, like
// ringwire_bench. Repetitions are interleaved (rep 1 of every cell, then rep
// 2, ...); each cell reports the median over repetitions with min and max.
// See harness/mpmc_cells.hpp for the workload and docs/benchmarks.md for the
// methodology and results.
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "harness/cells.hpp"  // median()
#include "harness/mpmc_cells.hpp"
#include "harness/placement.hpp"
#include "ringwire/core/status.hpp"

namespace {

using namespace rwbench;
using namespace rwbench::mpmc;
using nlohmann::json;

// ---- options -------------------------------------------------------------------

struct Options {
  int cpu_a = 0, cpu_b = 1;
  int reps = 5;
  bool quick = false;
  bool json_out = false;
  std::string json_file;
  std::uint64_t items = 4'000'000;  // per cell and rep, over all producers
  std::string filter;
  double timeout_s = 60;
  int retries = 2;
  double retry_budget_s = 150;
  std::string argv_line;
};

void usage(std::FILE* f) {
  std::fprintf(
      f,
      "usage: ringwire_bench_mpmc [options]\n"
      "  --cpus A,B        CPUs to spread the threads over (default 0,1): producer i on\n"
      "                    A if i is even else B, consumer j on B if j is even else A\n"
      "  --reps N          repetitions per cell, interleaved (default 5)\n"
      "  --quick           short run: 500000 items per cell, 3 reps\n"
      "  --items N         8-byte items per cell and rep, over all producers (default\n"
      "                    4000000)\n"
      "  --filter S        only cells whose 'config/queue' contains S\n"
      "  --timeout SEC     a rep that has not finished after SEC seconds is stopped and\n"
      "                    reported (default 60; its child is killed 30 s later if it\n"
      "                    does not answer)\n"
      "  --retries N       re-run a rep up to N times while it is disturbed (another task\n"
      "                    took > 3%% of a CPU, or steal time); default 2, none after\n"
      "                    150 s of run time (20 s with --quick)\n"
      "  --json            print one JSON object instead of the table\n"
      "  --json-file PATH  print the table and also write the JSON object to PATH\n"
      "  --help            this text\n"
      "Configurations: 1P1C, 2P1C (3 threads on 2 CPUs) for every queue; 2P2C (4 threads\n"
      "on 2 CPUs) for the MPMC queues. Every item is verified: exactly once, and\n"
      "per-producer order where the queue promises FIFO.\n"
      "Exit status: 0 all cells verified, 3 a cell saw a lost, duplicated, corrupt or\n"
      "(FIFO queues) reordered item, 2 bad arguments, 1 a cell could not run.\n");
}

bool parse_u64(const char* s, std::uint64_t& out) {
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0') return false;
  out = v;
  return true;
}

std::optional<Options> parse(int argc, char** argv) {
  Options o;
  bool items_set = false, reps_set = false;
  for (int i = 0; i < argc; ++i) {
    if (i) o.argv_line.push_back(' ');
    o.argv_line.append(argv[i]);
  }
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&](std::uint64_t& v) -> bool {
      if (i + 1 >= argc || !parse_u64(argv[i + 1], v)) {
        std::fprintf(stderr, "ringwire_bench_mpmc: %s needs a non-negative integer\n", a.c_str());
        return false;
      }
      ++i;
      return true;
    };
    std::uint64_t v = 0;
    if (a == "--help" || a == "-h") {
      usage(stdout);
      std::exit(0);
    } else if (a == "--json") {
      o.json_out = true;
    } else if (a == "--quick") {
      o.quick = true;
    } else if (a == "--cpus") {
      int x = -1, y = -1;
      char extra = 0;
      if (i + 1 >= argc || std::sscanf(argv[i + 1], "%d,%d%c", &x, &y, &extra) != 2 || x < 0 ||
          y < 0 || x == y || x >= CPU_SETSIZE || y >= CPU_SETSIZE) {
        std::fprintf(stderr, "ringwire_bench_mpmc: --cpus needs two different CPU numbers: A,B\n");
        return std::nullopt;
      }
      o.cpu_a = x;
      o.cpu_b = y;
      ++i;
    } else if (a == "--reps") {
      if (!value(v) || v == 0 || v > 1000) return std::nullopt;
      o.reps = static_cast<int>(v);
      reps_set = true;
    } else if (a == "--items") {
      if (!value(v) || v < 10'000 || v > (std::uint64_t{1} << 32)) return std::nullopt;
      o.items = v;
      items_set = true;
    } else if (a == "--timeout") {
      if (!value(v) || v == 0 || v > 3600) return std::nullopt;
      o.timeout_s = static_cast<double>(v);
    } else if (a == "--retries") {
      if (!value(v) || v > 10) return std::nullopt;
      o.retries = static_cast<int>(v);
    } else if (a == "--json-file") {
      if (i + 1 >= argc) return std::nullopt;
      o.json_file = argv[++i];
    } else if (a == "--filter") {
      if (i + 1 >= argc) return std::nullopt;
      o.filter = argv[++i];
    } else {
      std::fprintf(stderr, "ringwire_bench_mpmc: unknown option '%s' (see --help)\n", a.c_str());
      return std::nullopt;
    }
  }
  if (o.quick) {
    if (!items_set) o.items = 500'000;
    if (!reps_set) o.reps = 3;
    o.retry_budget_s = 20;
  }
  return o;
}

// ---- cells ---------------------------------------------------------------------

struct Cell {
  Topology topo;
  std::string queue;
  bool peer = false, fifo = true;
  std::string order;  // what the queue promises
  std::function<RepResult()> run;
  std::vector<std::optional<RepResult>> reps;
  std::vector<std::string> errors;
  bool verify_failed = false;
  int retried = 0;
};

std::string key(const Cell& c) {
  return c.topo.name + "/" + c.queue;
}

struct Plan {
  std::vector<Topology> configs;
  std::map<std::string, std::vector<Cell>> by;  // config name -> cells, in run order
  std::vector<std::string> skipped;
  template <class F>
  void each(F f) {
    for (const auto& t : configs)
      for (auto& c : by[t.name])
        f(c);
  }
  template <class F>
  void each(F f) const {
    for (const auto& t : configs)
      for (const auto& c : by.at(t.name))
        f(c);
  }
};

const char* kPadded = "MpmcRing<padded>";
const char* kUnpadded = "MpmcRing<unpadded>";
const char* kPawl = "MpmcUnorderedRing (Pawl)";

template <class A>
void add(Plan& pl, const Options& o, const Topology& t) {
  if (t.consumers > 1 && !A::kMpmc) return;
  Cell c;
  c.topo = t;
  c.queue = A::kName;
  c.peer = A::kPeer;
  c.fifo = A::kFifo;
  c.order = A::kOrder;
  const std::uint64_t items = o.items;
  const std::uint64_t timeout_ns = static_cast<std::uint64_t>(o.timeout_s * 1e9);
  const int cpu_a = o.cpu_a;
  const double timeout_s = o.timeout_s;
  c.run = [t, items, timeout_ns, cpu_a, timeout_s]() {
    return run_isolated([&] { return run_rep<A>(t, items, timeout_ns, cpu_a); }, timeout_s);
  };
  pl.by[t.name].push_back(std::move(c));
}

Plan make_plan(const Options& o) {
  Plan pl;
  pl.configs = {make_topology(1, 1, o.cpu_a, o.cpu_b), make_topology(2, 1, o.cpu_a, o.cpu_b),
                make_topology(2, 2, o.cpu_a, o.cpu_b)};
  for (const auto& t : pl.configs) {
    pl.by[t.name];
    add<MpmcRingA<true>>(pl, o, t);
    add<MpmcRingA<false>>(pl, o, t);
    add<PawlA>(pl, o, t);
    add<MpscRingA>(pl, o, t);
    add<MpscQueueA>(pl, o, t);
    add<MutexQueueA>(pl, o, t);
#if RWBENCH_MPMC_HAVE_MOODYCAMEL
    if (t.producers <= MoodycamelA<true>::kMaxProducers) add<MoodycamelA<true>>(pl, o, t);
    add<MoodycamelA<false>>(pl, o, t);
#endif
#if RWBENCH_MPMC_HAVE_BOOST
    add<BoostQueueA>(pl, o, t);
#endif
#if RWBENCH_MPMC_HAVE_ATOMIC_QUEUE
    add<AtomicQueueA<false>>(pl, o, t);
    add<AtomicQueueA<true>>(pl, o, t);
#endif
#if RWBENCH_MPMC_HAVE_TBB
    add<TbbQueueA>(pl, o, t);
#endif
  }
#if !RWBENCH_MPMC_HAVE_MOODYCAMEL
  pl.skipped.push_back(
      "moodycamel::ConcurrentQueue: concurrentqueue/concurrentqueue.h not found at configure time");
#endif
#if !RWBENCH_MPMC_HAVE_BOOST
  pl.skipped.push_back(
      "boost::lockfree::queue: boost/lockfree/queue.hpp not found at configure time");
#endif
#if !RWBENCH_MPMC_HAVE_ATOMIC_QUEUE
  pl.skipped.push_back("atomic_queue: atomic_queue/atomic_queue.h not found at configure time");
#endif
#if !RWBENCH_MPMC_HAVE_TBB
  pl.skipped.push_back(
      "tbb::concurrent_bounded_queue: TBB (find_package) not found at configure time");
#endif
  if (!o.filter.empty()) {
    for (auto& [name, cells] : pl.by) {
      std::vector<Cell> kept;
      for (auto& c : cells)
        if (key(c).find(o.filter) != std::string::npos) kept.push_back(std::move(c));
      cells = std::move(kept);
    }
    std::vector<Topology> kept;
    for (const auto& t : pl.configs)
      if (!pl.by[t.name].empty()) kept.push_back(t);
    pl.configs = kept;
  }
  return pl;
}

// ---- conditions, placement, aggregation ------------------------------------------

// Disturbed: the hypervisor reported steal time, or on one of the two CPUs the
// benchmark threads pinned there got < 97% of the span as CPU time although
// none of them slept (so another task ran there). A CPU whose threads slept
// (voluntary switches: MutexQueue's futex waits) cannot be judged this way.
bool disturbed(const RepResult& r) {
  if (r.steal_ms > 0) return true;
  for (int k = 0; k < 2; ++k)
    if (r.cpu_share[k] < 0.97 && r.vol_switches[k] == 0) return true;
  return false;
}
bool slept(const RepResult& r) {
  return r.vol_switches[0] + r.vol_switches[1] > 0;
}
bool moved(const RepResult& r) {
  const double a = r.probe_before_ns, b = r.probe_after_ns;
  return a > 0 && b > 0 && (a > 1.5 * b || b > 1.5 * a);
}
double rep_floor(const RepResult& r) {
  return moved(r) ? 0 : r.probe_before_ns;  // a rep that saw two placements has none
}

Placements g_place;
int place_of(const RepResult& r) {
  return g_place.of(rep_floor(r));
}

struct Agg {
  int ok = 0, disturbed = 0, moved = 0, slept = 0;
  double med = 0, min = 0, max = 0, floor_ns = 0;
  double share_min = 0;  // median over reps of the lower CPU share
  std::uint64_t inversions = 0, busy = 0;
  std::map<int, std::vector<double>> by_place;
};

Agg aggregate(const Cell& c) {
  Agg a;
  std::vector<double> v, f, sh;
  for (const auto& r : c.reps) {
    if (!r) continue;
    v.push_back(r->value);
    f.push_back(r->probe_before_ns);
    sh.push_back(std::min(r->cpu_share[0], r->cpu_share[1]));
    a.disturbed += disturbed(*r);
    a.moved += moved(*r);
    a.slept += slept(*r);
    a.inversions += r->order_inversions;
    a.busy += r->busy;
    a.by_place[place_of(*r)].push_back(r->value);
  }
  a.ok = static_cast<int>(v.size());
  if (v.empty()) return a;
  a.med = median(v);
  a.min = *std::min_element(v.begin(), v.end());
  a.max = *std::max_element(v.begin(), v.end());
  a.floor_ns = median(f);
  a.share_min = median(sh);
  return a;
}

const Cell* find(const Plan& pl, const std::string& config, const std::string& queue) {
  auto it = pl.by.find(config);
  if (it == pl.by.end()) return nullptr;
  for (const auto& c : it->second)
    if (c.queue == queue) return &c;
  return nullptr;
}

void classify(const Plan& pl) {
  std::vector<double> v;
  pl.each([&](const Cell& c) {
    for (const auto& r : c.reps)
      if (r) v.push_back(rep_floor(*r));
  });
  g_place = Placements::cluster(v);
}

std::string placement_summary(const Agg& a) {
  std::string out;
  for (const auto& [k, v] : a.by_place) {
    if (!out.empty()) out += " ";
    out += g_place.name(k) + "x" + std::to_string(v.size());
  }
  return out;
}

// Two cells compared at the placement where both have the most reps
// (maximising the smaller count); all reps if they never shared one.
struct Matched {
  std::optional<double> a, b;
  int place = -1, na = 0, nb = 0;
  bool same_placement = false;
  std::string basis() const {
    if (!a || !b) return "no data";
    if (!same_placement) return "all reps, no common placement";
    return "at " + g_place.name(place) + ", " + std::to_string(na) + " vs " + std::to_string(nb) +
           " reps";
  }
};

Matched matched(const Cell* ca, const Cell* cb) {
  Matched m;
  if (!ca || !cb) return m;
  Agg a = aggregate(*ca), b = aggregate(*cb);
  if (a.ok == 0 || b.ok == 0) return m;
  int best = -2;
  std::size_t best_min = 0, best_sum = 0;
  for (const auto& [k, va] : a.by_place) {
    if (k < 0) continue;
    auto it = b.by_place.find(k);
    if (it == b.by_place.end()) continue;
    const std::size_t mn = std::min(va.size(), it->second.size());
    const std::size_t sum = va.size() + it->second.size();
    if (mn > best_min || (mn == best_min && sum > best_sum)) {
      best = k;
      best_min = mn;
      best_sum = sum;
    }
  }
  if (best >= 0) {
    m.a = median(a.by_place[best]);
    m.b = median(b.by_place[best]);
    m.place = best;
    m.na = static_cast<int>(a.by_place[best].size());
    m.nb = static_cast<int>(b.by_place[best].size());
    m.same_placement = true;
  } else {
    m.a = a.med;
    m.b = b.med;
    m.na = a.ok;
    m.nb = b.ok;
  }
  return m;
}

struct Ratio {
  std::string name;
  std::optional<double> value;
  std::string target;
  std::optional<bool> met;
  std::string basis;
};

Ratio ratio(const std::string& name, const Cell* a, const Cell* b, const std::string& target) {
  Matched m = matched(a, b);
  Ratio r{name, std::nullopt, target, std::nullopt, m.basis()};
  if (m.a && m.b && *m.a > 0 && *m.b > 0) r.value = *m.a / *m.b;
  return r;
}

// The peer against which `ours` compares worst (lowest ratio) in `config`.
std::optional<Ratio> vs_fastest_peer(const Plan& pl, const std::string& config,
                                     const std::string& ours) {
  const Cell* oc = find(pl, config, ours);
  if (!oc) return std::nullopt;
  std::optional<Ratio> worst;
  for (const auto& c : pl.by.at(config)) {
    if (!c.peer) continue;
    Ratio r = ratio("", oc, &c, "");
    r.name = config + ": " + ours + " / fastest peer (" + c.queue + ")";
    if (r.value && (!worst || !worst->value || *r.value < *worst->value)) worst = r;
  }
  if (!worst) worst = Ratio{config + ": " + ours + " / fastest peer (none)", {}, "", {}, ""};
  return worst;
}

std::vector<Ratio> ratios(const Plan& pl) {
  std::vector<Ratio> out;
  auto check = [](Ratio r, double bound) {
    if (r.value) r.met = *r.value >= bound;
    return r;
  };
  for (const auto& t : pl.configs) {
    for (const char* q : {kPadded, kUnpadded, kPawl}) {
      auto r = vs_fastest_peer(pl, t.name, q);
      if (!r) continue;
      if (t.name == "1P1C") {
        r->target = ">= 1.2";
        out.push_back(check(*r, 1.2));
      } else {
        r->target = "none (info)";
        out.push_back(*r);
      }
    }
  }
  for (const auto& t : pl.configs) {
    for (const char* fifo : {kPadded, kUnpadded}) {
      const Cell *u = find(pl, t.name, kPawl), *f = find(pl, t.name, fifo);
      if (u && f)
        out.push_back(ratio(t.name + ": unordered / FIFO, Pawl / " + fifo, u, f, "none (info)"));
    }
  }
  for (const auto& t : pl.configs) {
    const Cell *p = find(pl, t.name, kPadded), *u = find(pl, t.name, kUnpadded);
    if (p && u) out.push_back(ratio(t.name + ": MpmcRing padded / unpadded", p, u, "none (info)"));
  }
  for (const auto& t : pl.configs) {
    const Cell *r = find(pl, t.name, "MpscRing"), *q = find(pl, t.name, "MpscQueue");
    if (r && q) out.push_back(ratio(t.name + ": MpscRing / MpscQueue", r, q, "none (info)"));
  }
  return out;
}

// ---- machine -----------------------------------------------------------------------

std::string cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("model name", 0) == 0) {
      auto p = line.find(':');
      if (p != std::string::npos) return line.substr(p + 2);
    }
  return "unknown";
}

std::string kernel() {
  utsname u{};
  if (::uname(&u) != 0) return "unknown";
  return std::string(u.sysname) + " " + u.release + " " + u.machine;
}

std::string loadavg() {
  std::ifstream f("/proc/loadavg");
  std::string a, b, c;
  f >> a >> b >> c;
  return a + " " + b + " " + c;
}

// ---- output ----------------------------------------------------------------------

std::string mps(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f M/s", v / 1e6);
  return buf;
}

std::string config_title(const Topology& t) {
  std::string s = t.name + " (" + t.placement + ")";
  if (t.oversubscribed)
    s += ", oversubscribed: " + std::to_string(t.producers + t.consumers) + " threads on 2 vCPUs";
  return s;
}

void print_table(const Plan& pl, const Options& o, const std::vector<Ratio>& rs,
                 const std::string& load0) {
  std::printf("ringwire_bench_mpmc  %s\n", o.argv_line.c_str());
  std::printf("machine: %s, %ld online CPUs, %s; load average at start %s\n", cpu_model().c_str(),
              ::sysconf(_SC_NPROCESSORS_ONLN), kernel().c_str(), load0.c_str());
  std::printf(
      "%d reps, interleaved, each in a forked child; %llu x 8B items per cell and rep (split "
      "evenly over the producers);\nevery queue bounded at %zu slots; every item verified "
      "(exactly once; per-producer order where promised).\n",
      o.reps, static_cast<unsigned long long>(o.items), kCapacity);
  for (const auto& s : pl.skipped)
    std::printf("skipped: %s\n", s.c_str());
  for (const auto& t : pl.configs) {
    std::printf("\n== %s: items per second, median of reps [min .. max] ==\n",
                config_title(t).c_str());
    std::printf("  %-30s %11s  %-24s %11s %5s  %-18s %s\n", "queue", "median", "[min .. max]",
                "floor probe", "cpu", "placement x reps", "notes");
    for (const auto& c : pl.by.at(t.name)) {
      Agg a = aggregate(c);
      if (a.ok == 0) {
        std::printf("  %-30s %11s  (%s)\n", c.queue.c_str(), "FAILED",
                    c.errors.empty() ? "no run" : c.errors.front().c_str());
        continue;
      }
      char range[64], fl[32];
      std::snprintf(range, sizeof range, "[%s .. %s]", mps(a.min).c_str(), mps(a.max).c_str());
      std::snprintf(fl, sizeof fl, "%.1f ns", a.floor_ns);
      std::string note;
      if (c.verify_failed) note += "  VERIFICATION FAILED in some reps";
      if (a.ok < o.reps) note += "  " + std::to_string(o.reps - a.ok) + " reps failed";
      if (a.disturbed) note += "  " + std::to_string(a.disturbed) + " disturbed";
      if (c.retried) note += "  " + std::to_string(c.retried) + " retries";
      if (a.moved) note += "  " + std::to_string(a.moved) + " placement changed";
      if (a.slept) note += "  slept in " + std::to_string(a.slept);
      if (!c.fifo) note += "  order not promised: " + std::to_string(a.inversions) + " inversions";
      if (a.busy) note += "  busy answers " + std::to_string(a.busy);
      std::printf("  %-30s %11s  %-24s %11s %5.2f  %-18s%s\n", c.queue.c_str(), mps(a.med).c_str(),
                  range, fl, a.share_min, placement_summary(a).c_str(), note.c_str());
      if (a.ok > 0 && !c.errors.empty()) {
        for (const auto& e : c.errors)
          std::printf("      %s\n", e.c_str());
      }
    }
  }
  std::printf("\n== ratios (medians at a common placement) ==\n");
  std::printf("  %-78s %8s  %-12s %-7s %s\n", "ratio", "value", "target", "", "compared reps");
  for (const auto& r : rs) {
    char v[32] = "n/a";
    if (r.value) std::snprintf(v, sizeof v, "%.3fx", *r.value);
    std::printf("  %-78s %8s  %-12s %-7s %s\n", r.name.c_str(), v, r.target.c_str(),
                !r.met ? "" : (*r.met ? "MET" : "MISSED"), r.basis.c_str());
  }
  std::printf(
      "\nfloor probe: atomic ping-pong round trip between P0 (CPU %d) and C0 (CPU %d) just before "
      "the run (median over reps);\nreps are grouped by its value (placement) and ratios compare "
      "reps at the same placement.\ncpu: median over reps of the lower of the two CPUs' share "
      "(CPU time of the benchmark threads pinned there / span).\n'disturbed': steal time, or a "
      "CPU share < 0.97 on a CPU whose threads never slept (another task ran);\nre-run up to "
      "--retries times, kept and counted if it stays disturbed. 'slept in N': in N reps a thread "
      "slept\n(futex; MutexQueue), so the share cannot tell disturbance. 'busy answers': the MPSC "
      "consumer met a half-done push.\n",
      o.cpu_a, o.cpu_b);
}

json to_json(const Plan& pl, const Options& o, const std::vector<Ratio>& rs,
             const std::string& load0) {
  json j;
  j["tool"] = "ringwire_bench_mpmc";
  j["command"] = o.argv_line;
  j["machine"] = {{"cpu_model", cpu_model()},
                  {"online_cpus", ::sysconf(_SC_NPROCESSORS_ONLN)},
                  {"kernel", kernel()},
                  {"cpus", {o.cpu_a, o.cpu_b}},
                  {"loadavg_at_start", load0}};
  j["config"] = {{"reps", o.reps},
                 {"items_per_cell", o.items},
                 {"item_bytes", 8},
                 {"capacity", kCapacity},
                 {"timeout_s", o.timeout_s},
                 {"retries", o.retries},
                 {"retry_budget_s", o.retry_budget_s},
                 {"yield_after_failed_tries_on_shared_cpu", Spin::kYieldAfter}};
  j["skipped"] = pl.skipped;
  json res = json::array();
  pl.each([&](const Cell& c) {
    json r;
    r["config"] = c.topo.name;
    r["threads"] = c.topo.placement;
    r["oversubscribed"] = c.topo.oversubscribed;
    r["queue"] = c.queue;
    r["peer"] = c.peer;
    r["order_promise"] = c.order;
    r["order_checked"] = c.fifo;
    r["unit"] = "items_per_second";
    json reps = json::array();
    for (const auto& s : c.reps) {
      if (!s) {
        reps.push_back(nullptr);
        continue;
      }
      reps.push_back({{"value", s->value},
                      {"elapsed_ns", s->elapsed_ns},
                      {"items", s->items},
                      {"order_inversions", s->order_inversions},
                      {"busy", s->busy},
                      {"floor_probe_before_ns", s->probe_before_ns},
                      {"floor_probe_after_ns", s->probe_after_ns},
                      {"placement", g_place.name(place_of(*s))},
                      {"steal_ms", s->steal_ms},
                      {"cpu_share", {s->cpu_share[0], s->cpu_share[1]}},
                      {"voluntary_switches", {s->vol_switches[0], s->vol_switches[1]}},
                      {"involuntary_switches", {s->invol_switches[0], s->invol_switches[1]}},
                      {"disturbed", disturbed(*s)}});
    }
    r["reps"] = reps;
    Agg a = aggregate(c);
    r["ok_reps"] = a.ok;
    r["disturbed_reps"] = a.disturbed;
    r["placement_changed_reps"] = a.moved;
    r["retries"] = c.retried;
    r["verified"] = a.ok > 0 && !c.verify_failed;
    if (a.ok) {
      r["median"] = a.med;
      r["min"] = a.min;
      r["max"] = a.max;
      r["floor_probe_ns_median"] = a.floor_ns;
      json bp = json::object();
      for (const auto& [k, v] : a.by_place)
        bp[g_place.name(k)] = {{"reps", v.size()}, {"median", median(v)}};
      r["by_placement"] = bp;
    }
    if (!c.errors.empty()) r["errors"] = c.errors;
    res.push_back(r);
  });
  j["results"] = res;
  json pj = json::array();
  for (std::size_t i = 0; i < g_place.label.size(); ++i)
    pj.push_back({{"name", g_place.name(static_cast<int>(i))},
                  {"floor_ns_min", g_place.lo[i]},
                  {"floor_ns_max", g_place.hi[i]},
                  {"floor_ns_median", g_place.label[i]}});
  j["placements"] = pj;
  json jr = json::array();
  for (const auto& r : rs)
    jr.push_back({{"name", r.name},
                  {"value", r.value ? json(*r.value) : json(nullptr)},
                  {"target", r.target},
                  {"met", r.met ? json(*r.met) : json(nullptr)},
                  {"basis", r.basis}});
  j["ratios"] = jr;
  return j;
}

}  // namespace

int main(int argc, char** argv) {
  auto opt = parse(argc, argv);
  if (!opt) {
    usage(stderr);
    return ringwire::core::kExitInvalid;
  }
  const Options& o = *opt;
  cpu_set_t allowed;
  if (!get_affinity(allowed) || !CPU_ISSET(o.cpu_a, &allowed) || !CPU_ISSET(o.cpu_b, &allowed)) {
    std::fprintf(stderr,
                 "ringwire_bench_mpmc: CPUs %d and %d must both be in this process's affinity "
                 "mask\n",
                 o.cpu_a, o.cpu_b);
    return ringwire::core::kExitInvalid;
  }
  Plan pl = make_plan(o);
  if (pl.configs.empty()) {
    std::fprintf(stderr, "ringwire_bench_mpmc: no cell matches --filter '%s'\n", o.filter.c_str());
    return ringwire::core::kExitInvalid;
  }
  const std::string load0 = loadavg();
  pl.each([&](Cell& c) { c.reps.resize(static_cast<std::size_t>(o.reps)); });
  const bool progress = ::isatty(STDERR_FILENO) != 0;
  const std::uint64_t t0 = now_ns();
  for (int rep = 0; rep < o.reps; ++rep) {
    pl.each([&](Cell& c) {
      if (progress) {
        std::fprintf(stderr, "\r[rep %d/%d] %-70s", rep + 1, o.reps, key(c).c_str());
        std::fflush(stderr);
      }
      RepResult r = c.run();
      for (int t = 0; r.status == kRepOk && disturbed(r) && t < o.retries &&
                      static_cast<double>(now_ns() - t0) / 1e9 < o.retry_budget_s;
           ++t) {
        ++c.retried;
        RepResult again = c.run();
        if (again.status != kRepOk) {
          r = again;  // a failure on a retry counts like any other
          break;
        }
        r = again;
      }
      if (r.status == kRepOk) {
        c.reps[static_cast<std::size_t>(rep)] = r;
      } else {
        if (r.status == kRepVerifyFailed) c.verify_failed = true;
        std::string e = "rep " + std::to_string(rep + 1) + ": " + r.error;
        c.errors.push_back(e);
        std::fprintf(stderr, "%sringwire_bench_mpmc: %s %s\n", progress ? "\n" : "", key(c).c_str(),
                     e.c_str());
      }
    });
  }
  const double secs = static_cast<double>(now_ns() - t0) / 1e9;
  if (progress) std::fprintf(stderr, "\r%-90s\r", "");

  classify(pl);
  auto rs = ratios(pl);
  json j = to_json(pl, o, rs, load0);
  j["wall_seconds"] = secs;
  if (!o.json_file.empty()) {
    std::ofstream f(o.json_file);
    f << j.dump(2) << "\n";
    if (!f) std::fprintf(stderr, "ringwire_bench_mpmc: cannot write %s\n", o.json_file.c_str());
  }
  if (o.json_out) {
    std::cout << j.dump(2) << "\n";
  } else {
    print_table(pl, o, rs, load0);
    std::printf("\nwall time %.1f s\n", secs);
  }
  bool any_verify = false, any_fail = false;
  pl.each([&](const Cell& c) {
    any_verify |= c.verify_failed;
    any_fail |= !c.errors.empty();
  });
  if (any_verify) return ringwire::core::kExitVerifyFailed;
  return any_fail ? 1 : 0;
}
