// ringwire_bench: cross-thread and cross-process SPSC queue benchmark.
//
// One run measures, for SpscRing, MutexQueue and every peer queue whose
// header was found at configure time:
//   * throughput, 8- and 64-byte messages, single-item push/pop (and
//     push_n/pop_n where the queue has a bulk API), every message verified;
//   * ping-pong round trip (two queues, one message in flight);
//   * the physical floor: one atomic on one cache line, ping-ponged;
// first between two pinned threads, then between this process and a forked
// child that opens the shared-memory segment by name (SpscRing, MutexQueue
// and the floor only: the peers are in-process data structures).
// Repetitions are interleaved (rep 1 of every cell, then rep 2, ...), so slow
// drift of a shared machine hits every cell alike; each cell reports the
// median over repetitions with min and max.
#include <sys/utsname.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "harness/cells.hpp"
#include "ringwire/core/status.hpp"
#include "ringwire/shm/shm_segment.hpp"

namespace {

using namespace rwbench;
using nlohmann::json;

// ---- options -------------------------------------------------------------------

struct Options {
  int cpu_a = 0, cpu_b = 1;
  int reps = 5;
  bool quick = false;
  bool json_out = false;
  std::string json_file;             // also write the JSON object here
  std::uint64_t msgs = 10'000'000;   // 8-byte throughput; 64-byte uses msgs / 2
  std::uint64_t mutex_divisor = 10;  // MutexQueue runs msgs / mutex_divisor
  std::size_t batch = 64;
  std::uint32_t rtt_warmup = 20'000;
  std::uint32_t rtt_samples = 1'000;
  std::uint32_t rtt_batch = 100;
  std::string filter;
  double timeout_s = 60;
  int retries = 2;             // extra attempts for a disturbed rep
  double retry_budget_s = 90;  // no retries once the run has taken this long
  std::string argv_line;
};

void usage(std::FILE* f) {
  std::fprintf(
      f,
      "usage: ringwire_bench [options]\n"
      "  --cpus A,B        pin producer/client to CPU A, consumer/echo to CPU B "
      "(default 0,1)\n"
      "  --reps N          repetitions per cell, interleaved (default 5)\n"
      "  --quick           short run: 1M messages, 3 reps, 200 round-trip samples\n"
      "  --msgs N          8-byte throughput messages (default 10000000; 64-byte: N/2,\n"
      "                    MutexQueue: a tenth of those)\n"
      "  --batch N         batch size of the push_n/pop_n rows (default 64)\n"
      "  --rtt-samples N   timed round-trip batches per rep (default 1000)\n"
      "  --rtt-batch N     round trips per timed batch (default 100)\n"
      "  --filter S        only cells whose 'mode/test/queue' contains S\n"
      "  --timeout SEC     give up on a cell after SEC seconds (default 60)\n"
      "  --retries N       re-run a rep up to N times while it is disturbed (either\n"
      "                    side preempted for > 3%% of the run, or steal time); default 2,\n"
      "                    none after 90 s of run time (15 s with --quick)\n"
      "  --json            print one JSON object instead of the table\n"
      "  --json-file PATH  print the table and also write the JSON object to PATH\n"
      "  --help            this text\n"
      "Exit status: 0 all cells verified, 3 a consumer saw a lost, duplicated or\n"
      "corrupt message, 2 bad arguments, 1 a cell could not run.\n");
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
  bool msgs_set = false, samples_set = false;
  for (int i = 0; i < argc; ++i) {
    if (i) o.argv_line.push_back(' ');
    o.argv_line.append(argv[i]);
  }
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&](std::uint64_t& v) -> bool {
      if (i + 1 >= argc || !parse_u64(argv[i + 1], v)) {
        std::fprintf(stderr, "ringwire_bench: %s needs a non-negative integer\n", a.c_str());
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
        std::fprintf(stderr, "ringwire_bench: --cpus needs two different CPU numbers: A,B\n");
        return std::nullopt;
      }
      o.cpu_a = x;
      o.cpu_b = y;
      ++i;
    } else if (a == "--reps") {
      if (!value(v) || v == 0 || v > 1000) return std::nullopt;
      o.reps = static_cast<int>(v);
    } else if (a == "--msgs") {
      if (!value(v) || v < 1000) return std::nullopt;
      o.msgs = v;
      msgs_set = true;
    } else if (a == "--batch") {
      if (!value(v) || v == 0 || v > kCapacity) return std::nullopt;
      o.batch = v;
    } else if (a == "--rtt-samples") {
      if (!value(v) || v == 0 || v > 1'000'000) return std::nullopt;
      o.rtt_samples = static_cast<std::uint32_t>(v);
      samples_set = true;
    } else if (a == "--rtt-batch") {
      if (!value(v) || v == 0 || v > 1'000'000) return std::nullopt;
      o.rtt_batch = static_cast<std::uint32_t>(v);
    } else if (a == "--timeout") {
      if (!value(v) || v == 0) return std::nullopt;
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
      std::fprintf(stderr, "ringwire_bench: unknown option '%s' (see --help)\n", a.c_str());
      return std::nullopt;
    }
  }
  if (o.quick) {
    if (!msgs_set) o.msgs = 1'000'000;
    if (!samples_set) o.rtt_samples = 200;
    o.rtt_warmup = 2'000;
    bool reps_set = false;
    for (int i = 1; i < argc; ++i)
      reps_set |= std::string(argv[i]) == "--reps";
    if (!reps_set) o.reps = 3;
    o.retry_budget_s = 15;
  }
  return o;
}

// ---- cells ---------------------------------------------------------------------

struct Cell {
  std::string mode;   // "thread" | "process"
  std::string test;   // "round trip", "throughput 8B", ...
  std::string queue;  // display name
  std::string unit;   // "msg/s" | "ns"
  bool is_peer = false;
  std::uint64_t messages = 0;
  std::function<std::string(Sample&)> run;
  std::vector<std::optional<Sample>> reps;  // by repetition index
  std::vector<std::string> errors;
  bool verify_failed = false;
  int retried = 0;  // extra attempts spent on disturbed reps
};

std::string key(const Cell& c) {
  return c.mode + "/" + c.test + "/" + c.queue;
}

const char* kFloor = "floor: atomic ping-pong";
const char* kRing = "SpscRing";
const char* kMutex = "MutexQueue";

// Cells are grouped by (mode, test) and run in that order within a rep, so
// the queues compared in one table section are measured back to back.
struct Plan {
  std::vector<std::string> groups;              // "mode/test" in run order
  std::map<std::string, std::vector<Cell>> by;  // group -> cells
  std::vector<std::string> skipped;
  void add(Cell c) {
    const std::string g = c.mode + "/" + c.test;
    if (!by.count(g)) groups.push_back(g);
    by[g].push_back(std::move(c));
  }
  template <class F>
  void each(F f) {
    for (const auto& g : groups)
      for (auto& c : by[g])
        f(c);
  }
  template <class F>
  void each(F f) const {
    for (const auto& g : groups)
      for (const auto& c : by.at(g))
        f(c);
  }
};

std::string batch_suffix(const Options& o) {
  return " batch" + std::to_string(o.batch);
}

Cell make_cell(const std::string& mode, const std::string& test, const std::string& queue,
               bool peer, std::uint64_t n, std::function<std::string(Sample&)> run) {
  Cell c;
  c.mode = mode;
  c.test = test;
  c.queue = queue;
  c.unit = test == "round trip" ? "ns" : "msg/s";
  c.is_peer = peer;
  c.messages = n;
  c.run = std::move(run);
  return c;
}

template <template <class> class A>
void add_thread_queue(Plan& pl, const Options& o, const CellParams& base, bool peer, bool slow) {
  const std::string name = A<Msg8>::kName;
  const std::uint64_t div = slow ? o.mutex_divisor : 1;
  const std::uint64_t n8 = std::max<std::uint64_t>(o.msgs / div, 1000);
  const std::uint64_t n64 = std::max<std::uint64_t>(o.msgs / 2 / div, 1000);
  auto tp = [&](const std::string& test, std::uint64_t n, std::size_t batch, auto fn) {
    CellParams p = base;
    p.messages = n;
    p.batch = batch;
    pl.add(make_cell("thread", test, name, peer, n, [p, fn](Sample& s) { return fn(p, s); }));
  };
  pl.add(make_cell("thread", "round trip", name, peer, base.plan.total(),
                   [base](Sample& s) { return thread_round_trip<A>(base, s); }));
  tp("throughput 8B", n8, 0, thread_throughput<Msg8, A>);
  tp("throughput 64B", n64, 0, thread_throughput<Msg64, A>);
  if constexpr (A<Msg8>::kBatch) {
    tp("throughput 8B" + batch_suffix(o), n8, o.batch, thread_throughput<Msg8, A>);
    tp("throughput 64B" + batch_suffix(o), n64, o.batch, thread_throughput<Msg64, A>);
  }
}

template <template <class> class Raw, template <class> class A>
void add_process_queue(Plan& pl, const Options& o, const CellParams& base, bool slow,
                       std::uint64_t tag) {
  const std::string name = A<Msg8>::kName;
  const std::uint64_t div = slow ? o.mutex_divisor : 1;
  const std::uint64_t n8 = std::max<std::uint64_t>(o.msgs / div, 1000);
  const std::uint64_t n64 = std::max<std::uint64_t>(o.msgs / 2 / div, 1000);
  auto tp = [&](const std::string& test, std::uint64_t n, std::size_t batch, auto fn) {
    CellParams p = base;
    p.messages = n;
    p.batch = batch;
    pl.add(make_cell("process", test, name, false, n,
                     [p, fn, tag](Sample& s) { return fn(p, tag, s); }));
  };
  pl.add(make_cell("process", "round trip", name, false, base.plan.total(),
                   [base, tag](Sample& s) { return process_round_trip<Raw, A>(base, tag, s); }));
  tp("throughput 8B", n8, 0, process_throughput<Msg8, Raw, A>);
  tp("throughput 64B", n64, 0, process_throughput<Msg64, Raw, A>);
  tp("throughput 8B" + batch_suffix(o), n8, o.batch, process_throughput<Msg8, Raw, A>);
  tp("throughput 64B" + batch_suffix(o), n64, o.batch, process_throughput<Msg64, Raw, A>);
}

Plan make_plan(const Options& o) {
  Plan pl;
  CellParams base;
  base.run.cpu_a = o.cpu_a;
  base.run.cpu_b = o.cpu_b;
  base.run.timeout_ns = static_cast<std::uint64_t>(o.timeout_s * 1e9);
  base.plan.warmup = o.rtt_warmup;
  base.plan.samples = o.rtt_samples;
  base.plan.batch = o.rtt_batch;

  // Thread mode.
  pl.add(make_cell("thread", "round trip", kFloor, false, base.plan.total(),
                   [base](Sample& s) { return thread_floor(base, s); }));
  add_thread_queue<RingQ>(pl, o, base, false, false);
  add_thread_queue<MutexQ>(pl, o, base, false, true);
#if RWBENCH_HAVE_BOOST
  add_thread_queue<BoostQ>(pl, o, base, true, false);
#else
  pl.skipped.push_back(
      "boost::lockfree::spsc_queue: boost/lockfree/spsc_queue.hpp not found at configure time");
#endif
#if RWBENCH_HAVE_RWQ
  add_thread_queue<RwqQ>(pl, o, base, true, false);
#else
  pl.skipped.push_back(
      "moodycamel::ReaderWriterQueue: readerwriterqueue/readerwriterqueue.h not found at "
      "configure time");
#endif
#if RWBENCH_HAVE_ATOMIC_QUEUE
  add_thread_queue<AqQ>(pl, o, base, true, false);
  add_thread_queue<AqBlockingQ>(pl, o, base, true, false);
#else
  pl.skipped.push_back("atomic_queue: atomic_queue/atomic_queue.h not found at configure time");
#endif

  // Process mode.
  pl.add(make_cell("process", "round trip", kFloor, false, base.plan.total(),
                   [base](Sample& s) { return process_floor(base, s); }));
  add_process_queue<ringwire::SpscRing, RingQ>(pl, o, base, false, 1);
  add_process_queue<ringwire::MutexQueue, MutexQ>(pl, o, base, true, 2);

  if (!o.filter.empty()) {
    for (auto& [g, cells] : pl.by) {
      std::vector<Cell> kept;
      for (auto& c : cells)
        if (key(c).find(o.filter) != std::string::npos) kept.push_back(std::move(c));
      cells = std::move(kept);
    }
    std::vector<std::string> groups;
    for (const auto& g : pl.groups)
      if (!pl.by[g].empty()) groups.push_back(g);
    pl.groups = groups;
  }
  return pl;
}

// ---- aggregation -----------------------------------------------------------------

// Median over repetitions, with min and max; the extras are medians over
// repetitions too. A rep is "disturbed" when the scheduler preempted either
// side and it lost more than 3% of its wall time (another task ran on its
// CPU), or the hypervisor reported steal time on one of the two CPUs.
struct Agg {
  int ok = 0;
  int disturbed = 0;
  int moved = 0;  // throughput reps whose floor probe changed > 1.5x across the run
  double med = 0, min = 0, max = 0;
  double p99_med = 0, p99_max = 0, x_floor = 0, floor_ns = 0, cpu_share = 0;
  std::map<int, std::vector<double>> by_place;    // values per placement class (-1: unknown)
  std::map<int, std::vector<double>> x_by_place;  // round trip: x floor per placement class
};

// Kernel threads (e.g. kdamond) preempt a spinning thread now and then for a
// few microseconds; that alone does not make a rep disturbed, losing more
// than 3% of the wall time to preemption does.
bool disturbed(const Sample& s) {
  return (s.preempted > 0 && s.cpu_share < 0.97) || s.steal_ms > 0;
}
bool moved(const Sample& s) {
  const double a = s.probe_before_ns, b = s.probe_after_ns;
  return a > 0 && b > 0 && (a > 1.5 * b || b > 1.5 * a);
}
// ---- placement classes ---------------------------------------------------------
// The hypervisor decides where the two vCPUs run: the floor round trip takes
// a few discrete values (~30, ~70 and ~400 ns on the machine in
// docs/benchmarks.md) and can change between cells, even during one. Every
// rep carries the floor measured on the same two CPUs in the same cell (the
// in-cell floor of a round-trip cell, the probe before a throughput run).
// After the run all those floors are clustered (sorted, split where two
// neighbours differ by more than 1.4x) and comparisons between two cells use
// reps of the same cluster ("placement") only.
struct Placements {
  std::vector<double> lo, hi, label;
  int of(double v) const {
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
};
Placements g_place;

double rep_floor(const Sample& s) {
  if (s.floor_ns > 0) return s.floor_ns;
  return moved(s) ? 0 : s.probe_before_ns;  // a throughput run that saw two placements has none
}
int place_of(const Sample& s) {
  const double f = rep_floor(s);
  return f > 0 ? g_place.of(f) : -1;
}

Agg aggregate(const Cell& c) {
  Agg a;
  std::vector<double> v, p, x, f, cs;
  for (const auto& r : c.reps)
    if (r) {
      v.push_back(r->value);
      p.push_back(r->p99);
      x.push_back(r->x_floor);
      // Round trip: the in-cell floor; throughput: the probe before the run.
      f.push_back(r->floor_ns > 0 ? r->floor_ns : r->probe_before_ns);
      cs.push_back(r->cpu_share);
      a.disturbed += disturbed(*r);
      a.moved += moved(*r);
      a.by_place[place_of(*r)].push_back(r->value);
      a.x_by_place[place_of(*r)].push_back(r->x_floor);
    }
  a.ok = static_cast<int>(v.size());
  if (v.empty()) return a;
  a.med = median(v);
  a.min = *std::min_element(v.begin(), v.end());
  a.max = *std::max_element(v.begin(), v.end());
  a.p99_med = median(p);
  a.p99_max = *std::max_element(p.begin(), p.end());
  a.x_floor = median(x);
  a.floor_ns = median(f);
  a.cpu_share = median(cs);
  return a;
}

const Cell* find(const Plan& pl, const std::string& mode, const std::string& test,
                 const std::string& queue) {
  auto it = pl.by.find(mode + "/" + test);
  if (it == pl.by.end()) return nullptr;
  for (const auto& c : it->second)
    if (c.queue == queue) return &c;
  return nullptr;
}

void classify(const Plan& pl) {
  std::vector<double> v;
  pl.each([&](const Cell& c) {
    for (const auto& r : c.reps)
      if (r && rep_floor(*r) > 0) v.push_back(rep_floor(*r));
  });
  std::sort(v.begin(), v.end());
  Placements p;
  std::vector<double> cur;
  auto close = [&] {
    if (cur.empty()) return;
    p.lo.push_back(cur.front());
    p.hi.push_back(cur.back());
    p.label.push_back(median(cur));
    cur.clear();
  };
  for (double x : v) {
    if (!cur.empty() && x > 1.4 * cur.back()) close();
    cur.push_back(x);
  }
  close();
  g_place = p;
}

// "~70ns x3 ~400ns x2": how many reps of a cell ran at each placement.
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
  int place = -1;
  int na = 0, nb = 0;
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
  std::string target;  // human-readable
  std::optional<bool> met;
  std::string basis;  // which reps the value compares
};

// value = a / b (or b / a with invert) of two cells at a common placement.
Ratio matched_ratio(const std::string& name, const Cell* a, const Cell* b, bool invert,
                    const std::string& target) {
  Matched m = matched(a, b);
  Ratio r{name, std::nullopt, target, std::nullopt, m.basis()};
  if (m.a && m.b && *m.a > 0 && *m.b > 0) r.value = invert ? *m.b / *m.a : *m.a / *m.b;
  return r;
}

std::vector<Ratio> ratios(const Plan& pl, const Options& o) {
  std::vector<Ratio> out;
  const std::string ring = kRing, mutex = kMutex;
  const std::string b = batch_suffix(o);
  const std::vector<std::string> tests = {"throughput 8B", "throughput 64B", "throughput 8B" + b,
                                          "throughput 64B" + b};
  auto check = [](Ratio r, bool at_least, double bound) {
    if (r.value) r.met = at_least ? *r.value >= bound : *r.value <= bound;
    return r;
  };
  // Throughput: SpscRing vs the fastest peer (thread mode; peers are in-process only).
  // "Fastest" = the peer against which SpscRing's ratio is lowest.
  for (const std::string& t : tests) {
    const Cell* rc = find(pl, "thread", t, ring);
    if (!rc) continue;
    const bool batch = t.find("batch") != std::string::npos;
    std::optional<Ratio> worst;
    for (const auto& c : pl.by.at("thread/" + t)) {
      if (!c.is_peer) continue;
      Ratio r = matched_ratio("", rc, &c, false, "");
      r.name = "thread " + t + ": SpscRing / fastest peer (" + c.queue + ")";
      if (r.value && (!worst || !worst->value || *r.value < *worst->value)) worst = r;
    }
    if (!worst) worst = Ratio{"thread " + t + ": SpscRing / fastest peer (none)", {}, "", {}, ""};
    worst->target = batch ? "none (batch row)" : ">= 1.2";
    out.push_back(batch ? *worst : check(*worst, true, 1.2));
  }
  // Round trip vs the floor batches interleaved in the same cell (paired per sample).
  for (const std::string mode : {"thread", "process"}) {
    for (const std::string& q : {ring, mutex}) {
      const Cell* c = find(pl, mode, "round trip", q);
      if (!c) continue;
      Agg a = aggregate(*c);
      Ratio x{mode + " round trip: " + q + " / floor", std::nullopt,
              q == ring ? "<= 1.2" : "none (baseline)", std::nullopt,
              "in-cell floor pairs, all reps"};
      if (a.ok) x.value = a.x_floor;
      out.push_back(q == ring ? check(x, false, 1.2) : x);
    }
  }
  // SpscRing vs MutexQueue.
  for (const std::string mode : {"thread", "process"}) {
    for (const std::string& t : tests) {
      if (!find(pl, mode, t, ring) || !find(pl, mode, t, mutex)) continue;
      out.push_back(
          check(matched_ratio(mode + " " + t + ": SpscRing / MutexQueue", find(pl, mode, t, ring),
                              find(pl, mode, t, mutex), false, ">= 10"),
                true, 10));
    }
    if (find(pl, mode, "round trip", ring) && find(pl, mode, "round trip", mutex)) {
      out.push_back(check(matched_ratio(mode + " round trip: MutexQueue ns / SpscRing ns",
                                        find(pl, mode, "round trip", ring),
                                        find(pl, mode, "round trip", mutex), true, ">= 10"),
                          true, 10));
    }
  }
  // Cross-process vs cross-thread, SpscRing (and the floor, for context).
  for (const std::string& t : tests) {
    if (!find(pl, "process", t, ring) || !find(pl, "thread", t, ring)) continue;
    out.push_back(
        check(matched_ratio("SpscRing " + t + ": process / thread", find(pl, "process", t, ring),
                            find(pl, "thread", t, ring), false, ">= 0.90"),
              true, 0.9));
  }
  for (const std::string& q : {ring, std::string(kFloor)}) {
    if (!find(pl, "process", "round trip", q) || !find(pl, "thread", "round trip", q)) continue;
    Ratio r = matched_ratio(
        q + " round trip ns: process / thread", find(pl, "process", "round trip", q),
        find(pl, "thread", "round trip", q), false, q == ring ? "<= 1.10" : "none (context)");
    out.push_back(q == ring ? check(r, false, 1.1) : r);
  }
  return out;
}

// ---- machine ---------------------------------------------------------------------

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

// ---- output ----------------------------------------------------------------------

std::string fmt(double v, const std::string& unit) {
  char buf[64];
  if (unit == "msg/s")
    std::snprintf(buf, sizeof buf, "%.2f M/s", v / 1e6);
  else
    std::snprintf(buf, sizeof buf, "%.1f ns", v);
  return buf;
}

void print_table(const Plan& pl, const Options& o, const std::vector<Ratio>& rs) {
  std::printf("ringwire_bench  %s\n", o.argv_line.c_str());
  std::printf(
      "machine: %s, %ld online CPUs, %s; producer/client on CPU %d, consumer/echo on "
      "CPU %d\n",
      cpu_model().c_str(), ::sysconf(_SC_NPROCESSORS_ONLN), kernel().c_str(), o.cpu_a, o.cpu_b);
  std::printf(
      "%d reps, interleaved; every queue has %zu slots. Throughput: %llu x 8B and %llu x "
      "64B messages (MutexQueue 1/%llu of that),\nevery message verified. Round trip: "
      "%u samples x %u round trips per rep, one clock read per sample; each queue batch\n"
      "is paired with a floor batch in the same cell (x floor = median of the pairwise "
      "ratios).\n",
      o.reps, kCapacity, static_cast<unsigned long long>(o.msgs),
      static_cast<unsigned long long>(o.msgs / 2), static_cast<unsigned long long>(o.mutex_divisor),
      o.rtt_samples, o.rtt_batch);
  for (const auto& s : pl.skipped)
    std::printf("skipped: %s\n", s.c_str());
  std::printf(
      "Peers (boost, moodycamel, atomic_queue) are in-process only; the process rows "
      "cover SpscRing, MutexQueue and the floor.\n");

  for (const auto& g : pl.groups) {
    const auto& cells = pl.by.at(g);
    if (cells.empty()) continue;
    const bool rtt = cells.front().unit == "ns";
    std::printf("\n== %s: %s, median of reps [min .. max] ==\n", g.c_str(),
                rtt ? "ns per round trip" : "messages per second");
    if (!rtt) std::printf("   (floor: not applicable to throughput)\n");
    if (rtt)
      std::printf("  %-30s %10s  %-22s %10s %8s %10s %5s  %s\n", "queue", "median", "[min .. max]",
                  "p99", "x floor", "floor", "cpu", "placement x reps");
    else
      std::printf("  %-30s %12s  %-26s %-10s %11s %5s  %s\n", "queue", "median", "[min .. max]",
                  "ring/this", "floor probe", "cpu", "placement x reps");
    for (const auto& c : cells) {
      Agg a = aggregate(c);
      if (a.ok == 0) {
        std::printf("  %-30s %10s  (%s)\n", c.queue.c_str(), "FAILED",
                    c.errors.empty() ? "no run" : c.errors.front().c_str());
        continue;
      }
      char range[80];
      std::snprintf(range, sizeof range, "[%s .. %s]", fmt(a.min, c.unit).c_str(),
                    fmt(a.max, c.unit).c_str());
      std::string note;
      if (a.ok < o.reps) note += "  " + std::to_string(o.reps - a.ok) + " reps failed";
      if (a.disturbed) note += "  " + std::to_string(a.disturbed) + " reps disturbed";
      if (c.retried) note += "  " + std::to_string(c.retried) + " retries";
      if (a.moved) note += "  " + std::to_string(a.moved) + " reps: placement changed";
      if (rtt) {
        std::printf("  %-30s %10s  %-22s %10s %7.2fx %10s %5.2f  %s%s\n", c.queue.c_str(),
                    fmt(a.med, c.unit).c_str(), range, fmt(a.p99_med, "ns").c_str(), a.x_floor,
                    fmt(a.floor_ns, "ns").c_str(), a.cpu_share, placement_summary(a).c_str(),
                    note.c_str());
      } else {
        // SpscRing / this queue, at their common placement ('*': none in common).
        std::string rel;
        if (const Cell* rc = find(pl, c.mode, c.test, kRing); rc && rc != &c) {
          Matched m = matched(rc, &c);
          if (m.a && m.b && *m.b > 0) {
            char buf[32];
            std::snprintf(buf, sizeof buf, "%.2fx%s", *m.a / *m.b, m.same_placement ? "" : "*");
            rel = buf;
          }
        }
        std::printf("  %-30s %12s  %-26s %-10s %11s %5.2f  %s%s\n", c.queue.c_str(),
                    fmt(a.med, c.unit).c_str(), range, rel.c_str(), fmt(a.floor_ns, "ns").c_str(),
                    a.cpu_share, placement_summary(a).c_str(), note.c_str());
      }
    }
  }
  std::printf("\n== ratios and targets ==\n");
  std::printf("  %-72s %9s  %-16s %-7s %s\n", "ratio", "value", "target", "", "compared reps");
  for (const auto& r : rs) {
    char v[32] = "n/a";
    if (r.value) std::snprintf(v, sizeof v, "%.3fx", *r.value);
    std::printf("  %-72s %9s  %-16s %-7s %s\n", r.name.c_str(), v, r.target.c_str(),
                !r.met ? "" : (*r.met ? "MET" : "MISSED"), r.basis.c_str());
  }
  std::printf(
      "\nfloor / floor probe: atomic ping-pong round trip on the same two CPUs in the same cell "
      "(median over reps).\n"
      "cpu: median over reps of min(thread CPU time / wall time) of the two sides (a blocked "
      "MutexQueue thread\nalso lowers it). A rep is 'disturbed' if a side was preempted and "
      "got < 97%% of its wall time as CPU,\nor the hypervisor reported steal time; it is re-run "
      "(up to --retries times, retries counted) and kept,\nand counted, if it stays disturbed. "
      "'placement changed': the floor probes before and after a\nthroughput run differ by more "
      "than 1.5x.\n");
}

json to_json(const Plan& pl, const Options& o, const std::vector<Ratio>& rs) {
  json j;
  j["tool"] = "ringwire_bench";
  j["command"] = o.argv_line;
  j["machine"] = {{"cpu_model", cpu_model()},
                  {"online_cpus", ::sysconf(_SC_NPROCESSORS_ONLN)},
                  {"kernel", kernel()},
                  {"cpus", {o.cpu_a, o.cpu_b}}};
  j["config"] = {
      {"reps", o.reps},
      {"capacity", kCapacity},
      {"messages_8B", o.msgs},
      {"messages_64B", o.msgs / 2},
      {"mutex_queue_message_divisor", o.mutex_divisor},
      {"batch", o.batch},
      {"round_trip",
       {{"warmup", o.rtt_warmup},
        {"samples", o.rtt_samples},
        {"round_trips_per_sample", o.rtt_batch},
        {"timing",
         "CLOCK_MONOTONIC read once per sample of round_trips_per_sample round trips; value = ns "
         "per round trip; each queue sample is preceded by a floor sample in the same cell"}}},
      {"throughput_floor", "not applicable"},
      {"retries", o.retries},
      {"retry_budget_s", o.retry_budget_s},
      {"peers_in_process_only", true}};
  j["skipped"] = pl.skipped;
  json res = json::array();
  pl.each([&](const Cell& c) {
    json r;
    r["mode"] = c.mode;
    r["test"] = c.test;
    r["queue"] = c.queue;
    r["unit"] = c.unit == "ns" ? "ns_per_round_trip" : "messages_per_second";
    r["messages_or_round_trips"] = c.messages;
    json reps = json::array();
    for (const auto& s : c.reps) {
      if (!s) {
        reps.push_back(nullptr);
        continue;
      }
      json x = {{"value", s->value},
                {"cpu_share", s->cpu_share},
                {"steal_ms", s->steal_ms},
                {"preempted", s->preempted},
                {"placement", g_place.name(place_of(*s))}};
      if (c.unit == "ns") {
        x["p99"] = s->p99;
        x["floor_ns"] = s->floor_ns;
        x["x_floor"] = s->x_floor;
      } else {
        x["floor_probe_before_ns"] = s->probe_before_ns;
        x["floor_probe_after_ns"] = s->probe_after_ns;
      }
      reps.push_back(x);
    }
    r["reps"] = reps;
    Agg a = aggregate(c);
    r["ok_reps"] = a.ok;
    r["disturbed_reps"] = a.disturbed;
    r["retries"] = c.retried;
    if (c.unit != "ns") r["placement_changed_reps"] = a.moved;
    r["verified"] = a.ok > 0 && !c.verify_failed;
    if (a.ok) {
      r["median"] = a.med;
      r["min"] = a.min;
      r["max"] = a.max;
      r["cpu_share_median"] = a.cpu_share;
      if (c.unit == "ns") {
        r["p99_median"] = a.p99_med;
        r["p99_max"] = a.p99_max;
        r["x_floor_median"] = a.x_floor;
        r["floor_ns_median"] = a.floor_ns;
      } else {
        r["floor_probe_ns_median"] = a.floor_ns;
      }
    }
    if (a.ok) {
      json bp = json::object();
      for (const auto& [k, v] : a.by_place) {
        json e = {{"reps", v.size()}, {"median", median(v)}};
        if (c.unit == "ns") e["x_floor_median"] = median(a.x_by_place.at(k));
        bp[g_place.name(k)] = e;
      }
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
  for (const auto& r : rs) {
    json x;
    x["name"] = r.name;
    x["value"] = r.value ? json(*r.value) : json(nullptr);
    x["target"] = r.target;
    x["met"] = r.met ? json(*r.met) : json(nullptr);
    x["basis"] = r.basis;
    jr.push_back(x);
  }
  j["ratios"] = jr;
  return j;
}

}  // namespace

int main(int argc, char** argv) {
  auto opt = parse(argc, argv);
  if (!opt) {
    usage(stderr);
    return 2;
  }
  const Options& o = *opt;
  cpu_set_t allowed;
  if (!get_affinity(allowed) || !CPU_ISSET(o.cpu_a, &allowed) || !CPU_ISSET(o.cpu_b, &allowed)) {
    std::fprintf(stderr,
                 "ringwire_bench: CPUs %d and %d must both be in this process's "
                 "affinity mask\n",
                 o.cpu_a, o.cpu_b);
    return 2;
  }
  ringwire::shm::install_cleanup_handlers();

  Plan pl = make_plan(o);
  if (pl.groups.empty()) {
    std::fprintf(stderr, "ringwire_bench: no cell matches --filter '%s'\n", o.filter.c_str());
    return 2;
  }
  pl.each([&](Cell& c) { c.reps.resize(o.reps); });
  const bool progress = ::isatty(STDERR_FILENO) != 0;
  const std::uint64_t t0 = now_ns();
  for (int rep = 0; rep < o.reps; ++rep) {
    pl.each([&](Cell& c) {
      if (progress) {
        std::fprintf(stderr, "\r[rep %d/%d] %-70s", rep + 1, o.reps, key(c).c_str());
        std::fflush(stderr);
      }
      Sample s;
      std::string err = c.run(s);
      // A disturbed rep (preempted, or steal time) measured the neighbours,
      // not the queue: run it again, a bounded number of times. The retry
      // count is reported; if every attempt is disturbed the last one counts.
      for (int t = 0; err.empty() && disturbed(s) && t < o.retries &&
                      static_cast<double>(now_ns() - t0) / 1e9 < o.retry_budget_s;
           ++t) {
        ++c.retried;
        Sample again;
        err = c.run(again);
        if (err.empty()) s = again;
      }
      if (err.empty()) {
        c.reps[rep] = s;
      } else {
        if (err.find("verification failed") != std::string::npos) c.verify_failed = true;
        c.errors.push_back("rep " + std::to_string(rep + 1) + ": " + err);
        std::fprintf(stderr, "%sringwire_bench: %s rep %d: %s\n", progress ? "\n" : "",
                     key(c).c_str(), rep + 1, err.c_str());
      }
    });
  }
  const double secs = static_cast<double>(now_ns() - t0) / 1e9;
  if (progress) std::fprintf(stderr, "\r%-90s\r", "");

  classify(pl);
  auto rs = ratios(pl, o);
  json j = to_json(pl, o, rs);
  j["wall_seconds"] = secs;
  if (!o.json_file.empty()) {
    std::ofstream f(o.json_file);
    f << j.dump(2) << "\n";
    if (!f) std::fprintf(stderr, "ringwire_bench: cannot write %s\n", o.json_file.c_str());
  }
  if (o.json_out) {
    std::cout << j.dump(2) << "\n";
  } else {
    print_table(pl, o, rs);
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
