#include "linearizability.hpp"

#include <pthread.h>

#include <algorithm>
#include <functional>
#include <limits>
#include <map>
#include <unordered_set>
#include <utility>

namespace ringwire::tools::kv_faults {

const char* verdict_name(Verdict v) noexcept {
  switch (v) {
    case Verdict::linearizable:
      return "linearizable";
    case Verdict::not_linearizable:
      return "not_linearizable";
    case Verdict::unknown:
      return "unknown";
  }
  return "?";
}

namespace {

constexpr std::int64_t kInf = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t kAbsent = 0;  // interned value of "key does not exist"
constexpr std::int64_t kAny = -1;    // register value not yet known (window checks)

// One op of one key as the search sees it: values interned to integers.
struct RegOp {
  OpKind kind = OpKind::read;
  bool cas_succeeded = false;  // cas: linearizing it means the compare held (or it is optional)
  bool optional = false;       // unknown outcome: may be left out of the linearization
  std::int64_t invoke = 0;
  std::int64_t end = kInf;
  std::int64_t arg = 0;      // write / cas: the new value
  std::int64_t expect = 0;   // cas: the compared value
  std::int64_t observe = 0;  // read, failed cas: the value seen
  std::size_t source = 0;    // index into the input history
};

// The register's transition for `op` from `state`, or false when the op's result is impossible.
bool step(const RegOp& op, std::int64_t state, std::int64_t* next) {
  switch (op.kind) {
    case OpKind::read:
      if (state != kAny && state != op.observe) return false;
      *next = op.observe;
      return true;
    case OpKind::write:
      *next = op.arg;
      return true;
    case OpKind::cas:
      if (op.cas_succeeded || op.optional) {
        if (state != kAny && state != op.expect) return false;
        *next = op.arg;
        return true;
      }
      // A compare that failed saw `observe`, which differs from the expected value.
      if (op.observe == op.expect) return false;
      if (state != kAny && state != op.observe) return false;
      *next = op.observe;
      return true;
  }
  return false;
}

struct KeyHash {
  std::size_t operator()(const std::vector<std::uint64_t>& v) const noexcept {
    std::uint64_t h = 14695981039346656037ull;
    for (std::uint64_t w : v) {
      h ^= w + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
      h *= 1099511628211ull;
    }
    return static_cast<std::size_t>(h);
  }
};

// Wing & Gong / Lowe depth-first search with memoization of (linearized set, value).
//
// The linearized set is stored compactly: every required op before position p_ (in invoke
// order) is linearized, and a required op after p_ can only have been linearized if it was
// invoked before the op at p_ returned, so only those few bits (bounded by the concurrency)
// go into the memo key, plus one bit per optional (unknown-outcome) op.
class Search {
 public:
  Search(std::vector<RegOp> ops, std::int64_t initial, std::uint64_t max_steps)
      : ops_(std::move(ops)), initial_(initial), max_steps_(max_steps), done_(ops_.size(), 0) {
    std::stable_sort(ops_.begin(), ops_.end(),
                     [](const RegOp& a, const RegOp& b) { return a.invoke < b.invoke; });
    for (std::size_t i = 0; i < ops_.size(); ++i)
      (ops_[i].optional ? opt_ : req_).push_back(i);
  }

  Verdict run() {
    if (dfs(initial_)) return Verdict::linearizable;
    return exhausted_ ? Verdict::unknown : Verdict::not_linearizable;
  }

  const std::vector<RegOp>& ops() const { return ops_; }
  // The first required op left unlinearized at the deepest point any branch reached.
  std::size_t stuck() const { return deepest_p_ < req_.size() ? req_[deepest_p_] : 0; }
  std::uint64_t steps() const { return steps_; }
  std::uint64_t memo_entries() const { return memo_.size(); }

 private:
  std::vector<std::uint64_t> memo_key(std::int64_t state) const {
    std::vector<std::uint64_t> k;
    k.push_back(p_);
    k.push_back(static_cast<std::uint64_t>(state));
    const std::int64_t horizon = ops_[req_[p_]].end;
    std::uint64_t word = 0;
    int nbits = 0;
    for (std::size_t j = p_ + 1; j < req_.size() && ops_[req_[j]].invoke <= horizon; ++j) {
      if (done_[req_[j]]) word |= std::uint64_t{1} << nbits;
      if (++nbits == 64) {
        k.push_back(word);
        word = 0;
        nbits = 0;
      }
    }
    if (nbits > 0) k.push_back(word);
    k.push_back(~std::uint64_t{0});  // separates the two bit sets
    word = 0;
    nbits = 0;
    for (std::size_t idx : opt_) {
      if (done_[idx]) word |= std::uint64_t{1} << nbits;
      if (++nbits == 64) {
        k.push_back(word);
        word = 0;
        nbits = 0;
      }
    }
    if (nbits > 0) k.push_back(word);
    return k;
  }

  bool dfs(std::int64_t state) {
    if (p_ == req_.size()) return true;  // every op with a known outcome is placed
    if (++steps_ > max_steps_) {
      exhausted_ = true;
      return false;
    }
    if (!memo_.insert(memo_key(state)).second) return false;
    deepest_p_ = std::max(deepest_p_, p_);

    // An op may go next only if no unlinearized op returned before it was invoked.
    std::int64_t min_end = kInf;
    for (std::size_t j = p_; j < req_.size(); ++j) {
      const RegOp& o = ops_[req_[j]];
      if (o.invoke > min_end) break;  // sorted by invoke: later ops end later still
      if (!done_[req_[j]]) min_end = std::min(min_end, o.end);
    }
    for (std::size_t j = p_; j < req_.size(); ++j) {
      const std::size_t idx = req_[j];
      if (ops_[idx].invoke > min_end) break;
      if (done_[idx]) continue;
      std::int64_t next = 0;
      if (!step(ops_[idx], state, &next)) continue;
      const std::size_t saved_p = p_;
      done_[idx] = 1;
      while (p_ < req_.size() && done_[req_[p_]])
        ++p_;
      if (dfs(next)) return true;
      done_[idx] = 0;
      p_ = saved_p;
      if (exhausted_) return false;
    }
    for (std::size_t idx : opt_) {
      if (ops_[idx].invoke > min_end) break;
      if (done_[idx]) continue;
      std::int64_t next = 0;
      if (!step(ops_[idx], state, &next)) continue;
      done_[idx] = 1;
      if (dfs(next)) return true;
      done_[idx] = 0;
      if (exhausted_) return false;
    }
    return false;
  }

  std::vector<RegOp> ops_;
  std::int64_t initial_;
  std::uint64_t max_steps_;
  std::vector<char> done_;
  std::vector<std::size_t> req_;  // required ops, invoke order
  std::vector<std::size_t> opt_;  // optional ops, invoke order
  std::size_t p_ = 0;             // first unlinearized required op (position in req_)
  std::size_t deepest_p_ = 0;
  std::uint64_t steps_ = 0;
  bool exhausted_ = false;
  std::unordered_set<std::vector<std::uint64_t>, KeyHash> memo_;
};

// Turns one key's ops into RegOps: drops what cannot matter, and pins unknown ops when values
// are unique (see the comments below). Fills the counters of `r`.
std::vector<RegOp> prepare(const History& h, const std::vector<std::size_t>& idx, KeyReport* r) {
  std::map<std::string, std::int64_t> intern;
  auto id_of = [&](const std::optional<std::string>& v) -> std::int64_t {
    if (!v) return kAbsent;
    auto [it, inserted] = intern.emplace(*v, static_cast<std::int64_t>(intern.size()) + 1);
    return it->second;
  };

  std::vector<RegOp> ops;
  bool unique = true;
  std::map<std::int64_t, int> writers;  // value -> ops that may write it
  for (std::size_t i : idx) {
    const Op& op = h[i];
    if (op.outcome == Outcome::fail) continue;  // did not happen
    // A read without an answer has no effect and tells nothing.
    if (op.kind == OpKind::read && op.outcome == Outcome::unknown) continue;
    RegOp o;
    o.kind = op.kind;
    o.source = i;
    o.invoke = op.invoke_ns;
    o.optional = op.outcome == Outcome::unknown;
    o.end = o.optional ? kInf : std::max(op.complete_ns, op.invoke_ns);
    switch (op.kind) {
      case OpKind::read:
        o.observe = id_of(op.value);
        break;
      case OpKind::write:
        o.arg = id_of(op.value);
        break;
      case OpKind::cas:
        o.arg = id_of(op.value);
        o.expect = id_of(op.expected);
        o.cas_succeeded = !o.optional && op.cas_succeeded;
        if (!o.optional && !op.cas_succeeded) o.observe = id_of(op.observed);
        break;
    }
    const bool may_write =
        op.kind == OpKind::write || (op.kind == OpKind::cas && (o.optional || o.cas_succeeded));
    if (may_write && (o.arg == kAbsent || ++writers[o.arg] > 1)) unique = false;
    ops.push_back(o);
  }

  if (unique) {
    // With unique values, an unknown write whose value nobody observed can be left out (leaving
    // it out is always allowed, and no result depends on it), and one whose value was observed
    // certainly happened, before the first op that saw it returned: it becomes a required op
    // ending there. So no op stays pending forever and the search stays narrow.
    // Pinning an unknown CAS makes its compare an observation of the value it expected, which
    // may pin another unknown op: repeat until nothing changes.
    for (bool changed = true; changed;) {
      changed = false;
      std::map<std::int64_t, std::int64_t> first_seen;  // value -> earliest end of an observer
      for (const RegOp& o : ops) {
        if (o.optional) continue;
        std::int64_t seen = -1;
        if (o.kind == OpKind::read) seen = o.observe;
        if (o.kind == OpKind::cas) seen = o.cas_succeeded ? o.expect : o.observe;
        if (seen > kAbsent) {
          auto [it, inserted] = first_seen.emplace(seen, o.end);
          if (!inserted) it->second = std::min(it->second, o.end);
        }
      }
      for (RegOp& o : ops) {
        if (!o.optional) continue;
        auto it = first_seen.find(o.arg);
        if (it == first_seen.end()) continue;
        o.optional = false;
        o.end = it->second;
        if (o.kind == OpKind::cas) o.cas_succeeded = true;
        ++r->unknown_kept;
        changed = true;
      }
    }
    std::vector<RegOp> kept;
    for (const RegOp& o : ops) {
      if (!o.optional) kept.push_back(o);
    }
    ops = std::move(kept);
  } else {
    for (const RegOp& o : ops)
      r->unknown_kept += o.optional ? 1 : 0;
  }
  r->checked_ops = ops.size();
  return ops;
}

Verdict run_search(std::vector<RegOp> ops, std::int64_t initial, std::uint64_t max_steps) {
  Search s(std::move(ops), initial, max_steps);
  return s.run();
}

// The smallest run of ops (invoke order) ending with the last op invoked before `stuck`
// returned that is not linearizable from any initial value; falls back to the whole prefix
// from the initial (absent) value.
void find_window(const std::vector<RegOp>& sorted, std::size_t stuck, KeyReport* r) {
  std::size_t b = stuck;
  while (b + 1 < sorted.size() && sorted[b + 1].invoke <= sorted[stuck].end)
    ++b;
  const std::uint64_t budget = 2'000'000;
  auto window_fails = [&](std::size_t a, std::int64_t initial) {
    std::vector<RegOp> w(sorted.begin() + static_cast<std::ptrdiff_t>(a),
                         sorted.begin() + static_cast<std::ptrdiff_t>(b) + 1);
    return run_search(std::move(w), initial, budget) == Verdict::not_linearizable;
  };
  // Grow the window backwards from the stuck op (doubling), then narrow it (bisection).
  std::size_t lo = 0, hi = 0;  // window [stuck - len, b]; lo passes, hi fails
  bool found = false;
  for (std::size_t len = 0;; len = len == 0 ? 1 : len * 2) {
    const std::size_t l = std::min(len, stuck);
    if (window_fails(stuck - l, kAny)) {
      hi = l;
      found = true;
      break;
    }
    lo = l;
    if (l == stuck) break;
  }
  std::size_t a = 0;
  if (found) {
    while (hi > lo + 1) {
      const std::size_t mid = lo + (hi - lo) / 2;
      if (window_fails(stuck - mid, kAny)) {
        hi = mid;
      } else {
        lo = mid;
      }
    }
    if (hi == 0 || !window_fails(stuck - lo, kAny)) {
      a = stuck - hi;
    } else {
      a = stuck - lo;
    }
    r->window_from_any_value = true;
  } else if (window_fails(0, kAbsent)) {
    a = 0;
  } else {
    a = 0;
    b = sorted.size() - 1;
  }
  for (std::size_t i = a; i <= b && i < sorted.size(); ++i)
    r->window.push_back(sorted[i].source);
}

}  // namespace

namespace {

// The search recurses once per linearized op, and a key of a long soak has tens of thousands:
// run it on a thread with a 1 GiB stack (reserved address space, touched only as used).
void run_with_big_stack(const std::function<void()>& fn) {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, std::size_t{1} << 30);
  pthread_t t;
  auto trampoline = [](void* p) -> void* {
    (*static_cast<const std::function<void()>*>(p))();
    return nullptr;
  };
  if (pthread_create(&t, &attr, trampoline, const_cast<std::function<void()>*>(&fn)) == 0) {
    pthread_join(t, nullptr);
  } else {
    fn();  // no thread: the caller's stack must do
  }
  pthread_attr_destroy(&attr);
}

}  // namespace

CheckReport check_history(const History& h, const CheckOptions& o) {
  CheckReport report;
  run_with_big_stack([&] { report = check_history_here(h, o); });
  return report;
}

CheckReport check_history_here(const History& h, const CheckOptions& o) {
  std::map<std::string, std::vector<std::size_t>> by_key;
  for (std::size_t i = 0; i < h.size(); ++i)
    by_key[h[i].key].push_back(i);

  CheckReport report;
  for (const auto& [key, idx] : by_key) {
    KeyReport r;
    r.key = key;
    r.ops = idx.size();
    std::vector<RegOp> ops = prepare(h, idx, &r);
    Search s(std::move(ops), kAbsent, o.max_steps_per_key);
    r.verdict = s.run();
    r.steps = s.steps();
    r.memo_entries = s.memo_entries();
    if (r.verdict == Verdict::not_linearizable) {
      r.stuck_op = s.ops()[s.stuck()].source;
      if (o.find_window) find_window(s.ops(), s.stuck(), &r);
      report.verdict = Verdict::not_linearizable;
    } else if (r.verdict == Verdict::unknown && report.verdict == Verdict::linearizable) {
      report.verdict = Verdict::unknown;
    }
    report.keys.push_back(std::move(r));
  }
  return report;
}

}  // namespace ringwire::tools::kv_faults
