// One repetition of a multi-producer / multi-consumer throughput cell
// (ringwire_bench_mpmc): P producer and C consumer threads, pinned, on one
// fresh queue, every item verified afterwards.
//
// Items. Producer p pushes seq 0 .. n/P-1 as the word ((p + 1) << 56) | seq
// (never 0, never ~0). Each consumer appends every item it pops to its own
// pre-faulted buffer (one store; no shared counter per item). After all
// threads have stopped the buffers are checked:
//   * exactly once: every (producer, seq) was received once; none missing,
//     none twice, no word that is not an item (corrupt);
//   * per-producer order, for queues that promise FIFO: within one consumer's
//     buffer the items of one producer have increasing seq. (With several
//     consumers this is what per-producer FIFO means: each consumer sees a
//     subsequence of a producer's order.) For queues that promise no order
//     the inversions are counted and reported, not judged.
//
// Termination without a per-item shared counter: with one consumer it stops
// at n items; with several, each publishes its count to a shared word every
// 256 items and whenever a pop fails, and stops once the total reaches n. The
// consumer whose publication completes n stamps the end time. Time runs from
// the start signal ("go", given right after the floor probe) to that stamp.
//
// Pinning: producer i on CPU A if i is even, else B; consumer j on CPU B if j
// is even, else A (1P1C: P0@A C0@B; 2P1C: P0@A P1@B C0@B; 2P2C: P0@A P1@B
// C0@B C1@A). A thread that shares its CPU with another benchmark thread
// (oversubscription) calls sched_yield() after 64 consecutive failed tries, so
// the thread it waits for can run; a thread alone on its CPU only spins
// (pause), like the SPSC harness.
//
// Floor probe: P0 (CPU A) and C0 (CPU B) ping-pong the floor word just before
// "go" and again after every thread has finished, while the other threads
// sleep or have exited (workloads.hpp: probe_client / probe_echo).
//
// Isolation: every repetition runs in a forked child that reports one POD
// result over a pipe. The parent waits at most timeout + grace and SIGKILLs a
// child that has not answered, so a queue that spins forever inside its own
// code (atomic_queue's try_pop after its ticket CAS, for instance) costs one
// failed cell, never the run. Inside the child every loop is bounded by the
// item count and by the Watch deadline (common.hpp).
#pragma once

#include <poll.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "common.hpp"
#include "mpmc_adapters.hpp"
#include "ringwire/core/futex.hpp"
#include "workloads.hpp"

namespace rwbench::mpmc {

inline constexpr Item kSeqMask = (Item{1} << 56) - 1;
inline constexpr Item encode(int producer, std::uint64_t seq) noexcept {
  return (static_cast<Item>(producer + 1) << 56) | seq;
}

struct Topology {
  std::string name;  // "1P1C", ...
  int producers = 1, consumers = 1;
  std::vector<int> prod_cpu, cons_cpu;
  bool oversubscribed = false;  // more threads than the two CPUs
  std::string placement;        // "P0@0 C0@1", for the table
};

inline Topology make_topology(int producers, int consumers, int cpu_a, int cpu_b) {
  Topology t;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%dP%dC", producers, consumers);
  t.name = buf;
  t.producers = producers;
  t.consumers = consumers;
  for (int i = 0; i < producers; ++i) {
    t.prod_cpu.push_back(i % 2 == 0 ? cpu_a : cpu_b);
    std::snprintf(buf, sizeof buf, "%sP%d@%d", i ? " " : "", i, t.prod_cpu.back());
    t.placement.append(buf);
  }
  for (int j = 0; j < consumers; ++j) {
    t.cons_cpu.push_back(j % 2 == 0 ? cpu_b : cpu_a);
    std::snprintf(buf, sizeof buf, " C%d@%d", j, t.cons_cpu.back());
    t.placement.append(buf);
  }
  t.oversubscribed = producers + consumers > 2;
  return t;
}

// ---- result of one repetition (POD: it crosses a pipe) ---------------------------

enum RepStatus : int { kRepOk = 0, kRepRunError = 1, kRepVerifyFailed = 2 };

struct RepResult {
  int status = kRepRunError;
  double value = 0;  // items per second
  std::uint64_t elapsed_ns = 0;
  std::uint64_t items = 0;     // to push in all
  std::uint64_t pushed = 0;    // pushed in all (less than items only if a producer gave up)
  std::uint64_t received = 0;  // popped in all
  std::uint64_t missing = 0, duplicates = 0, corrupt = 0;
  std::uint64_t order_inversions = 0;  // per consumer and producer, seq not increasing
  std::uint64_t leftover = 0;          // failed run: items still in the queue afterwards
  std::uint64_t busy = 0;              // MPSC consumers: "busy" answers (half-done push)
  double probe_before_ns = 0, probe_after_ns = 0;
  double steal_ms = 0;
  // Per CPU (index 0 = CPU A, 1 = CPU B): CPU time of the benchmark threads
  // pinned there / the span from the first start to the last end, and their
  // voluntary (slept) / involuntary (preempted) context switches.
  double cpu_share[2] = {0, 0};
  std::uint64_t vol_switches[2] = {0, 0}, invol_switches[2] = {0, 0};
  char error[256] = {};
};
static_assert(std::is_trivially_copyable_v<RepResult>);

inline void set_error(RepResult& r, const std::string& e) {
  std::snprintf(r.error, sizeof r.error, "%s", e.c_str());
}

// ---- the run inside the child ------------------------------------------------------

struct alignas(128) Control {
  SyncBlock sync;  // abort flag, floor word, probe results
  alignas(128) std::atomic<std::uint32_t> ready{0};
  alignas(128) std::atomic<std::uint32_t> go{0};
  alignas(128) std::atomic<std::uint64_t> consumed{0};
  alignas(128) std::atomic<std::uint32_t> finished{0};
  std::atomic<std::uint32_t> producers_done{0};
  std::atomic<std::uint64_t> t_go{0}, t_end{0};
};

struct ThreadStats {
  int cpu_index = 0;  // 0: CPU A, 1: CPU B
  std::uint64_t start_ns = 0, end_ns = 0, cpu_ns = 0, vol = 0, invol = 0;
  std::uint64_t pushed = 0, got = 0, busy = 0;
  std::uint64_t stop_ns = 0;  // blocking queues: when this consumer met its sentinel
  bool overflow = false;
  std::string error;
};

inline void switches(std::uint64_t& vol, std::uint64_t& invol) {
  rusage ru{};
  if (::getrusage(RUSAGE_THREAD, &ru) == 0) {
    vol = static_cast<std::uint64_t>(ru.ru_nvcsw);
    invol = static_cast<std::uint64_t>(ru.ru_nivcsw);
  }
}

// Failed-try policy: pause; on a CPU shared with another benchmark thread
// also sched_yield() after kYieldAfter consecutive failures. true = give up.
class Spin {
 public:
  static constexpr std::uint32_t kYieldAfter = 64;
  Spin(Watch& w, bool shared) noexcept : w_(w), shared_(shared) {}
  bool fail() noexcept {
    if (w_.spin()) return true;
    if (shared_ && ++fails_ >= kYieldAfter) ::sched_yield();
    return false;
  }
  void ok() noexcept { fails_ = 0; }

 private:
  Watch& w_;
  bool shared_;
  std::uint32_t fails_ = 0;
};

// Waits (spinning, yielding) until `word` >= want; false on abort / deadline.
template <class W>
bool wait_at_least(const std::atomic<W>& word, W want, Watch& w) {
  while (word.load(std::memory_order_acquire) < want) {
    if (w.spin()) return false;
    ::sched_yield();
  }
  return true;
}

// Sleeps on `go` (futex, 10 ms slices) until it is set; false on abort / deadline.
inline bool sleep_until_go(Control& c, std::uint64_t deadline) {
  while (c.go.load(std::memory_order_acquire) == 0) {
    if (c.sync.abort.load(std::memory_order_relaxed) != 0 || now_ns() > deadline) return false;
    ringwire::core::futex_wait(&c.go, 0, 10'000'000);
  }
  return c.sync.abort.load(std::memory_order_relaxed) == 0;
}

inline void abort_all(Control& c) {
  c.sync.abort.store(1, std::memory_order_relaxed);
  c.go.store(1, std::memory_order_release);
  ringwire::core::futex_wake(&c.go, 64);
}

// Queues whose push / pop wait inside the call (atomic_queue's push / pop):
// pop never reports empty, so a consumer cannot poll for "all done". The last
// producer to finish pushes one sentinel per consumer (producer id P, past
// the real ones) after its items; each consumer stops at its first sentinel,
// so each gets exactly one. Such a rep is bounded in time only by the
// parent's kill (run_isolated), not by the Watch.
template <class A>
inline constexpr bool kBlockingQueue = requires {
  requires A::kBlocking;
};

template <class A>
std::unique_ptr<A> make_queue(int producers) {
  if constexpr (std::is_constructible_v<A, int>) {
    return std::make_unique<A>(producers);
  } else {
    return std::make_unique<A>();
  }
}

// Every slot touched once, single-threaded, before timing (like the SPSC
// harness): page faults and first-touch misses stay out of the run.
template <class A>
bool warm(A& a) {
  typename A::Producer p(a, 0);
  typename A::Consumer c(a, 0);
  Item v = 0;
  for (int round = 0; round < 2; ++round) {
    for (std::uint64_t i = 0; i < kCapacity / 2; ++i) {
      std::uint64_t tries = 0;
      while (!p.push(encode(0, i)))
        if (++tries > 1'000'000) return false;
    }
    for (std::uint64_t i = 0; i < kCapacity / 2; ++i) {
      std::uint64_t tries = 0;
      while (!c.pop(v))
        if (++tries > 1'000'000) return false;
    }
  }
  return true;
}

// Consumers publish their counts this often (and whenever a pop fails).
inline constexpr std::uint64_t kPublishEvery = 256;

template <class A>
RepResult run_rep(const Topology& t, std::uint64_t items, std::uint64_t timeout_ns, int cpu_a) {
  RepResult r;
  const int P = t.producers, C = t.consumers;
  if (C > 1 && !A::kMpmc) {
    set_error(r, "an MPSC queue cannot have several consumers");
    return r;
  }
  const std::uint64_t per = items / static_cast<std::uint64_t>(P);
  const std::uint64_t total = per * static_cast<std::uint64_t>(P);
  r.items = total;
  auto q = make_queue<A>(P);
  if (!warm(*q)) {
    set_error(r, "warm-up could not push / pop the queue's own capacity");
    return r;
  }
  // Each consumer may, in principle, receive every item: size its buffer so,
  // and fault it in now (value-initialised) rather than during the run.
  std::vector<std::vector<Item>> rec(static_cast<std::size_t>(C));
  for (auto& b : rec)
    b.assign(total, 0);
  auto ctl = std::make_unique<Control>();
  Control& c = *ctl;
  const std::uint32_t nthreads = static_cast<std::uint32_t>(P + C);
  std::vector<ThreadStats> st(nthreads);
  const std::uint64_t deadline = now_ns() + timeout_ns;
  auto cpu_count = [&](int cpu) {
    int n = 0;
    for (int x : t.prod_cpu)
      n += x == cpu;
    for (int x : t.cons_cpu)
      n += x == cpu;
    return n;
  };
  const int cpu_b_any = t.cons_cpu.front();
  const double steal0 = steal_ms(cpu_a) + steal_ms(cpu_b_any);

  auto begin = [&](ThreadStats& s) {
    switches(s.vol, s.invol);
    s.cpu_ns = thread_cpu_ns();
    s.start_ns = now_ns();
  };
  auto end = [&](ThreadStats& s) {
    s.end_ns = now_ns();
    s.cpu_ns = thread_cpu_ns() - s.cpu_ns;
    std::uint64_t v = 0, i = 0;
    switches(v, i);
    s.vol = v - s.vol;
    s.invol = i - s.invol;
  };

  auto producer = [&](int id) {
    ThreadStats& s = st[static_cast<std::size_t>(id)];
    const int cpu = t.prod_cpu[static_cast<std::size_t>(id)];
    s.cpu_index = cpu == cpu_a ? 0 : 1;
    Watch w(c.sync, deadline);
    std::optional<typename A::Producer> h;
    if (!pin_this_thread(cpu, &s.error)) {
      abort_all(c);
      return;
    }
    try {
      h.emplace(*q, id);
    } catch (const std::exception& e) {
      s.error = e.what();
      abort_all(c);
      return;
    }
    c.ready.fetch_add(1, std::memory_order_acq_rel);
    std::uint64_t fi = 0;
    if (id == 0) {
      if (!wait_at_least(c.ready, nthreads, w) ||
          !probe_client(c.sync.probe, fi, w, c.sync.probe_before_cns)) {
        s.error = "floor probe before the run timed out";
        abort_all(c);
        return;
      }
      c.t_go.store(now_ns(), std::memory_order_relaxed);
      c.go.store(1, std::memory_order_release);
      ringwire::core::futex_wake(&c.go, 64);
    } else if (!sleep_until_go(c, deadline)) {
      return;
    }
    begin(s);
    Spin spin(w, cpu_count(cpu) > 1);
    for (std::uint64_t seq = 0; seq < per; ++seq) {
      const Item v = encode(id, seq);
      while (!h->push(v)) {
        if (spin.fail()) {
          s.error = "producer " + std::to_string(id) + " timed out after " + std::to_string(seq) +
                    " of " + std::to_string(per) + " items (queue stayed full)";
          abort_all(c);
          end(s);
          s.pushed = seq;
          return;
        }
      }
      spin.ok();
    }
    end(s);
    s.pushed = per;
    if constexpr (kBlockingQueue<A>) {
      if (c.producers_done.fetch_add(1, std::memory_order_acq_rel) + 1 ==
          static_cast<std::uint32_t>(P)) {
        for (int j = 0; j < C; ++j)
          (void)h->push(encode(P, static_cast<std::uint64_t>(j)));
      }
    }
    c.finished.fetch_add(1, std::memory_order_acq_rel);
    if (id == 0) {
      if (!wait_at_least(c.finished, nthreads, w) ||
          !probe_client(c.sync.probe, fi, w, c.sync.probe_after_cns)) {
        // The run itself is complete; a missing after-probe only loses the
        // placement check of this rep.
        c.sync.probe_after_cns.store(0);
      }
    }
  };

  auto consumer = [&](int id) {
    ThreadStats& s = st[static_cast<std::size_t>(P + id)];
    const int cpu = t.cons_cpu[static_cast<std::size_t>(id)];
    s.cpu_index = cpu == cpu_a ? 0 : 1;
    Watch w(c.sync, deadline);
    std::optional<typename A::Consumer> h;
    if (!pin_this_thread(cpu, &s.error)) {
      abort_all(c);
      return;
    }
    try {
      h.emplace(*q, id);
    } catch (const std::exception& e) {
      s.error = e.what();
      abort_all(c);
      return;
    }
    c.ready.fetch_add(1, std::memory_order_acq_rel);
    std::uint64_t fi = 0;
    if (id == 0) {
      if (!wait_at_least(c.ready, nthreads, w) || !probe_echo(c.sync.probe, fi, w) ||
          !wait_at_least(c.go, 1u, w)) {
        abort_all(c);
        return;
      }
    } else if (!sleep_until_go(c, deadline)) {
      return;
    }
    if (c.sync.abort.load() != 0) return;
    begin(s);
    Spin spin(w, cpu_count(cpu) > 1);
    Item* out = rec[static_cast<std::size_t>(id)].data();
    const std::uint64_t cap = total;
    std::uint64_t got = 0, unpublished = 0;
    const bool single = C == 1;
    // true once the published total has reached n.
    auto publish = [&]() {
      const std::uint64_t before = c.consumed.fetch_add(unpublished, std::memory_order_acq_rel);
      const std::uint64_t after = before + unpublished;
      unpublished = 0;
      if (before < total && after >= total) c.t_end.store(now_ns(), std::memory_order_relaxed);
      return after >= total;
    };
    for (;;) {
      Item v = 0;
      if (h->pop(v)) {
        if constexpr (kBlockingQueue<A>) {
          if ((v >> 56) == static_cast<Item>(P + 1)) {  // sentinel: all items are out
            s.stop_ns = now_ns();
            break;
          }
        }
        if (got == cap) {  // more items than were pushed: duplicates
          s.overflow = true;
          break;
        }
        out[got++] = v;
        spin.ok();
        if (kBlockingQueue<A>) continue;  // stops on its sentinel only
        if (single) {
          if (got == total) {
            c.t_end.store(now_ns(), std::memory_order_relaxed);
            break;
          }
        } else if (++unpublished == kPublishEvery && publish()) {
          break;
        }
        continue;
      }
      if (!single) {
        if (unpublished != 0 && publish()) break;
        if (c.consumed.load(std::memory_order_acquire) >= total) break;
      }
      if (spin.fail()) {
        if (!single && unpublished != 0) publish();
        s.error = "consumer " + std::to_string(id) + " timed out with " + std::to_string(got) +
                  " items (" + std::to_string(c.consumed.load()) + " of " + std::to_string(total) +
                  " published by all consumers)";
        abort_all(c);
        break;
      }
    }
    end(s);
    s.got = got;
    if constexpr (requires { h->busy; }) s.busy = h->busy;
    c.finished.fetch_add(1, std::memory_order_acq_rel);
    if (id == 0 && s.error.empty()) {
      (void)(wait_at_least(c.finished, nthreads, w) && probe_echo(c.sync.probe, fi, w));
    }
  };

  {
    std::vector<std::thread> th;
    th.reserve(nthreads);
    for (int i = 0; i < P; ++i)
      th.emplace_back(producer, i);
    for (int j = 0; j < C; ++j)
      th.emplace_back(consumer, j);
    for (auto& x : th)
      x.join();
  }
  const double steal1 = steal_ms(cpu_a) + steal_ms(cpu_b_any);
  r.steal_ms = steal0 >= 0 && steal1 >= 0 ? steal1 - steal0 : 0;
  r.probe_before_ns = static_cast<double>(c.sync.probe_before_cns.load()) / 100.0;
  r.probe_after_ns = static_cast<double>(c.sync.probe_after_cns.load()) / 100.0;

  // Conditions per CPU.
  for (int k = 0; k < 2; ++k) {
    std::uint64_t lo = ~std::uint64_t{0}, hi = 0, cpu = 0;
    for (const auto& s : st) {
      if (s.cpu_index != k || s.start_ns == 0) continue;
      lo = std::min(lo, s.start_ns);
      hi = std::max(hi, s.end_ns);
      cpu += s.cpu_ns;
      r.vol_switches[k] += s.vol;
      r.invol_switches[k] += s.invol;
    }
    r.cpu_share[k] = hi > lo ? static_cast<double>(cpu) / static_cast<double>(hi - lo) : 0;
  }

  std::string err;
  bool overflow = false;
  for (const auto& s : st) {
    r.pushed += s.pushed;
    r.received += s.got;
    r.busy += s.busy;
    overflow |= s.overflow;
    if (err.empty() && !s.error.empty()) err = s.error;
  }
  if (err.empty() && c.sync.abort.load() != 0) err = "aborted";

  // ---- verification (outside the timed part) ----
  std::vector<std::vector<std::uint8_t>> seen(static_cast<std::size_t>(P),
                                              std::vector<std::uint8_t>(per, 0));
  for (int j = 0; j < C; ++j) {
    const auto& b = rec[static_cast<std::size_t>(j)];
    const std::uint64_t n = st[static_cast<std::size_t>(P + j)].got;
    std::vector<std::int64_t> last(static_cast<std::size_t>(P), -1);
    for (std::uint64_t k = 0; k < n; ++k) {
      const Item v = b[k];
      const std::uint64_t p1 = v >> 56, seq = v & kSeqMask;
      if (p1 == 0 || p1 > static_cast<std::uint64_t>(P) || seq >= per) {
        ++r.corrupt;
        continue;
      }
      auto& cnt = seen[p1 - 1][seq];
      if (cnt != 0) ++r.duplicates;
      if (cnt != 255) ++cnt;
      auto& l = last[p1 - 1];
      if (static_cast<std::int64_t>(seq) <= l) ++r.order_inversions;
      l = static_cast<std::int64_t>(seq);
    }
  }
  for (const auto& v : seen)
    for (std::uint8_t x : v)
      r.missing += x == 0;
  const bool lost_or_dup =
      r.duplicates != 0 || r.corrupt != 0 || overflow || (err.empty() && r.missing != 0);
  const bool reordered = A::kFifo && r.order_inversions != 0;

  if (!err.empty()) {
    // What the queue still holds explains a timeout: stuck items (Pawl) or
    // items nobody could see.
    r.leftover = q->drain();
    std::string e = err + "; pushed " + std::to_string(r.pushed) + " of " + std::to_string(total) +
                    ", received " + std::to_string(r.received) + ", " + std::to_string(r.leftover) +
                    " still in the queue afterwards";
    const bool lost = r.received + r.leftover < r.pushed;
    if (lost) e += " -> items LOST";
    if (lost_or_dup || reordered || lost) {
      r.status = kRepVerifyFailed;
      e = "verification failed: " + e;
    } else {
      r.status = kRepRunError;
    }
    set_error(r, e);
    return r;
  }
  if (lost_or_dup || reordered) {
    r.status = kRepVerifyFailed;
    set_error(r, "verification failed: " + std::to_string(r.missing) + " missing, " +
                     std::to_string(r.duplicates) + " duplicated, " + std::to_string(r.corrupt) +
                     " corrupt, " + std::to_string(r.order_inversions) +
                     " per-producer order inversions" + (overflow ? ", consumer overflow" : ""));
    return r;
  }
  std::uint64_t t1 = c.t_end.load();
  if constexpr (kBlockingQueue<A>) {
    for (const auto& s : st)
      t1 = std::max(t1, s.stop_ns);
  }
  const std::uint64_t t0 = c.t_go.load();
  if (t1 <= t0) {
    set_error(r, "clock did not advance");
    return r;
  }
  r.elapsed_ns = t1 - t0;
  r.value = static_cast<double>(total) * 1e9 / static_cast<double>(r.elapsed_ns);
  r.status = kRepOk;
  return r;
}

// ---- isolation: one forked child per repetition ----------------------------------

template <class F>
RepResult run_isolated(F&& f, double timeout_s, double grace_s = 30) {
  RepResult r;
  int fds[2];
  if (::pipe(fds) != 0) {
    set_error(r, std::string("pipe: ") + std::strerror(errno));
    return r;
  }
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    set_error(r, std::string("fork: ") + std::strerror(errno));
    ::close(fds[0]);
    ::close(fds[1]);
    return r;
  }
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(5);
    ::close(fds[0]);
    RepResult out;
    try {
      out = f();
    } catch (const std::exception& e) {
      out = RepResult{};
      set_error(out, std::string("exception: ") + e.what());
    }
    const char* p = reinterpret_cast<const char*>(&out);
    std::size_t left = sizeof out;
    while (left > 0) {
      const ssize_t k = ::write(fds[1], p, left);
      if (k < 0 && errno == EINTR) continue;
      if (k <= 0) ::_exit(6);
      p += k;
      left -= static_cast<std::size_t>(k);
    }
    ::_exit(0);
  }
  ::close(fds[1]);
  const std::uint64_t limit = now_ns() + static_cast<std::uint64_t>((timeout_s + grace_s) * 1e9);
  char* p = reinterpret_cast<char*>(&r);
  std::size_t got = 0;
  bool killed = false;
  while (got < sizeof r) {
    const std::uint64_t now = now_ns();
    if (now >= limit) {
      ::kill(pid, SIGKILL);
      killed = true;
      break;
    }
    pollfd pfd{fds[0], POLLIN, 0};
    const int ms = static_cast<int>(std::min<std::uint64_t>((limit - now) / 1'000'000 + 1, 1000));
    const int pr = ::poll(&pfd, 1, ms);
    if (pr < 0 && errno == EINTR) continue;
    if (pr <= 0) continue;
    const ssize_t k = ::read(fds[0], p + got, sizeof r - got);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) break;  // child gone
    got += static_cast<std::size_t>(k);
  }
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (got == sizeof r) return r;
  r = RepResult{};
  if (killed) {
    set_error(r, "no result within " + std::to_string(static_cast<int>(timeout_s + grace_s)) +
                     " s: child killed (a thread is stuck inside the queue)");
  } else if (WIFSIGNALED(status)) {
    set_error(r, "child died of signal " + std::to_string(WTERMSIG(status)));
  } else {
    set_error(r, "child exited with status " + std::to_string(status) + " without a result");
  }
  return r;
}

}  // namespace rwbench::mpmc
