// Runs the two sides of a measurement either as two pinned threads of this
// process or as this process plus a forked child that opens the segment by
// name. Both return "" on success or a one-line reason for failure.
#pragma once

#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <thread>

#include "common.hpp"
#include "ringwire/shm/shm_segment.hpp"

namespace rwbench {

struct RunConfig {
  int cpu_a = 0;  // producer / ping-pong client
  int cpu_b = 1;  // consumer / echo side
  std::uint64_t timeout_ns = 60'000'000'000ull;
};

// What the consumer / echo side left in the SyncBlock, copied out before the
// memory holding it (heap or segment) goes away.
struct SyncSnapshot {
  std::uint64_t t_start = 0;
  std::uint64_t t_end = 0;
  std::uint64_t received = 0;
  std::uint64_t errors = 0;
  double cpu_share = 0;         // min over both sides of thread CPU time / wall time
  double steal_ms = 0;          // hypervisor steal on both CPUs during the run (10 ms ticks)
  std::uint64_t preempted = 0;  // involuntary context switches, both sides
  double probe_before_ns = 0, probe_after_ns = 0;
};
inline SyncSnapshot snapshot(const SyncBlock& s) {
  SyncSnapshot r;
  r.t_start = s.t_start.load();
  r.t_end = s.t_end.load();
  r.received = s.received.load();
  r.errors = s.errors.load();
  r.preempted = s.a_preempt.load() + s.b_preempt.load();
  r.probe_before_ns = static_cast<double>(s.probe_before_cns.load()) / 100.0;
  r.probe_after_ns = static_cast<double>(s.probe_after_cns.load()) / 100.0;
  auto share = [](std::uint64_t cpu, std::uint64_t wall) {
    return wall == 0 ? 0.0 : static_cast<double>(cpu) / static_cast<double>(wall);
  };
  r.cpu_share = std::min(share(s.a_cpu_ns.load(), s.a_wall_ns.load()),
                         share(s.b_cpu_ns.load(), s.b_wall_ns.load()));
  return r;
}

// Runs f() and records this thread's CPU and wall time into the given words.
template <class F>
bool timed_side(std::atomic<std::uint64_t>& cpu, std::atomic<std::uint64_t>& wall,
                std::atomic<std::uint64_t>& preempt, F&& f) {
  const std::uint64_t p0 = thread_preemptions();
  const std::uint64_t c0 = thread_cpu_ns(), w0 = now_ns();
  const bool ok = f();
  wall.store(now_ns() - w0);
  cpu.store(thread_cpu_ns() - c0);
  preempt.store(thread_preemptions() - p0);
  return ok;
}

inline double steal_both(const RunConfig& cfg) {
  const double a = steal_ms(cfg.cpu_a), b = steal_ms(cfg.cpu_b);
  return a < 0 || b < 0 ? 0 : a + b;
}

// side_a runs on cpu_a, side_b on cpu_b; both get the shared SyncBlock and
// their own Watch. Signature: bool(SyncBlock&, Watch&).
template <class SideA, class SideB>
std::string run_threads(const RunConfig& cfg, SyncSnapshot& snap, SideA side_a, SideB side_b) {
  auto holder = std::make_unique<SyncBlock>();
  SyncBlock& sync = *holder;
  const std::uint64_t deadline = now_ns() + cfg.timeout_ns;
  std::string err_a, err_b;
  bool ok_a = false, ok_b = false;
  const double steal0 = steal_both(cfg);
  std::thread tb([&] {
    if (!pin_this_thread(cfg.cpu_b, &err_b)) {
      sync.abort.store(1);
      return;
    }
    Watch w(sync, deadline);
    ok_b =
        timed_side(sync.b_cpu_ns, sync.b_wall_ns, sync.b_preempt, [&] { return side_b(sync, w); });
    if (!ok_b && err_b.empty()) err_b = w.failed() ? "consumer side timed out" : "consumer failed";
  });
  std::thread ta([&] {
    if (!pin_this_thread(cfg.cpu_a, &err_a)) {
      sync.abort.store(1);
      return;
    }
    Watch w(sync, deadline);
    ok_a =
        timed_side(sync.a_cpu_ns, sync.a_wall_ns, sync.a_preempt, [&] { return side_a(sync, w); });
    if (!ok_a && err_a.empty()) err_a = w.failed() ? "producer side timed out" : "producer failed";
  });
  ta.join();
  tb.join();
  snap = snapshot(sync);
  snap.steal_ms = steal_both(cfg) - steal0;
  if (!err_a.empty()) return err_a;
  if (!err_b.empty()) return err_b;
  return (ok_a && ok_b) ? "" : "run failed";
}

// The segment name carries our pid and a counter: "bench.<pid>.<n>" ->
// /dev/shm/ringwire.bench.<pid>.<n>.
std::string next_segment_name();

inline std::uint64_t bench_layout_hash(std::uint64_t tag, std::size_t payload) {
  return ringwire::shm::layout_fingerprint(0x62656e6368ull /* "bench" */, tag, payload);
}

// Process run.
//   build(void* payload, size_t bytes) -> std::string   parent, before fork:
//       constructs the queues (create_in) after the SyncBlock at offset 0
//   side_a(SyncBlock&, Watch&) -> bool                    parent, on cpu_a
//   side_b(void* payload, size_t bytes, SyncBlock&, Watch&) -> bool
//       child, on cpu_b, with the payload of its *own* mapping, obtained by
//       ShmSegment::open(name) (it attaches to the queues there)
// The parent unlinks the name as soon as the child has opened it, so nothing
// is left in /dev/shm even if the run is killed afterwards.
template <class Build, class SideA, class SideB>
std::string run_forked(const RunConfig& cfg, SyncSnapshot& snap, std::uint64_t tag,
                       std::size_t payload_bytes, Build build, SideA side_a, SideB side_b) {
  using namespace ringwire::shm;
  SegmentSpec spec;
  spec.kind = SegmentKind::raw;
  spec.layout_hash = bench_layout_hash(tag, payload_bytes);
  spec.payload_size = payload_bytes;
  const std::string name = next_segment_name();
  auto seg = ShmSegment::create(name, spec);
  if (!seg) return "ShmSegment::create: " + seg.status().to_string();
  void* payload = seg->payload();
  std::memset(payload, 0, payload_bytes);  // fault the pages in before timing
  auto* sync = new (payload) SyncBlock();
  if (std::string e = build(payload, payload_bytes); !e.empty()) return e;
  seg->mark_ready();

  const std::uint64_t deadline = now_ns() + cfg.timeout_ns;
  const double steal0 = steal_both(cfg);
  const pid_t parent = ::getpid();
  const pid_t child = ::fork();
  if (child < 0) return std::string("fork: ") + std::strerror(errno);
  if (child == 0) {
    // Child: never returns, never runs destructors of the parent's objects,
    // and dies with the parent (an interrupted run leaves no spinning child).
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(5);
    std::string err;
    if (!pin_this_thread(cfg.cpu_b, &err)) {
      sync->child_failed.store(1);
      ::_exit(3);
    }
    auto mine = ShmSegment::open(name, spec);
    if (!mine) {
      sync->child_failed.store(1);
      ::_exit(4);
    }
    auto* s = static_cast<SyncBlock*>(mine->payload());
    s->attached.store(1, std::memory_order_release);
    Watch w(*s, deadline);
    const bool ok = timed_side(s->b_cpu_ns, s->b_wall_ns, s->b_preempt, [&] {
      return side_b(mine->payload(), mine->payload_size(), *s, w);
    });
    ::_exit(ok ? 0 : 1);
  }

  cpu_set_t saved;
  const bool have_saved = get_affinity(saved);
  std::string err;
  bool ok_a = false;
  if (pin_this_thread(cfg.cpu_a, &err)) {
    Watch w(*sync, deadline, child);
    while (sync->attached.load(std::memory_order_acquire) == 0 && sync->child_failed.load() == 0 &&
           !w.spin()) {
    }
    (void)seg->unlink();
    if (sync->attached.load() != 0) {
      ok_a = timed_side(sync->a_cpu_ns, sync->a_wall_ns, sync->a_preempt,
                        [&] { return side_a(*sync, w); });
      if (!ok_a) err = w.failed() ? "parent side timed out or child died" : "parent side failed";
    } else {
      err = "child could not pin itself or open the segment";
    }
  } else {
    sync->abort.store(1);
  }
  (void)seg->unlink();
  int status = 0;
  ::waitpid(child, &status, 0);
  if (have_saved) set_affinity(saved);
  snap = snapshot(*sync);
  snap.steal_ms = steal_both(cfg) - steal0;
  if (!err.empty()) return err;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return "child exited with status " + std::to_string(status);
  }
  return ok_a ? "" : "run failed";
}

}  // namespace rwbench
