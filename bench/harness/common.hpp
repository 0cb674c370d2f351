// Shared pieces of the cross-thread / cross-process benchmark harness:
// message types, clock, CPU pinning, the spin-wait watchdog and the small
// block of synchronisation words both sides of a run share.
#pragma once

#include <sched.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>

#include "ringwire/core/cpu.hpp"

namespace rwbench {

// Every queue in one run has the same number of slots. Peers whose capacity
// is a template argument (boost, atomic_queue) get it at compile time, which
// is their fastest configuration; SpscRing and MutexQueue take it at run time.
inline constexpr std::size_t kCapacity = 4096;

// ---- messages ----------------------------------------------------------------
// The consumer checks `seq` of every message against the count it expects.
// The 64-byte message also carries ~seq in its last word, so a torn or stale
// slot copy is caught too, and the producer writes all eight words.

struct Msg8 {
  std::uint64_t seq;
};
struct alignas(64) Msg64 {
  std::uint64_t seq;
  std::uint64_t body[6];
  std::uint64_t check;  // ~seq
};
static_assert(sizeof(Msg8) == 8 && sizeof(Msg64) == 64);
static_assert(std::is_trivially_copyable_v<Msg8> && std::is_trivially_copyable_v<Msg64>);

inline void make_msg(Msg8& m, std::uint64_t i) noexcept {
  m.seq = i;
}
inline void make_msg(Msg64& m, std::uint64_t i) noexcept {
  m.seq = i;
  for (std::uint64_t k = 0; k < 6; ++k)
    m.body[k] = i + k;
  m.check = ~i;
}
inline bool msg_ok(const Msg8& m, std::uint64_t i) noexcept {
  return m.seq == i;
}
inline bool msg_ok(const Msg64& m, std::uint64_t i) noexcept {
  return m.seq == i && m.check == ~i;
}

// ---- time --------------------------------------------------------------------
// CLOCK_MONOTONIC through the vDSO: system-wide, so a start stamp taken in
// one process and an end stamp taken in another are comparable.
inline std::uint64_t now_ns() noexcept {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ull +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

// CPU time consumed by the calling thread (a syscall: call it only at the edges).
inline std::uint64_t thread_cpu_ns() noexcept {
  timespec ts;
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ull +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

// Involuntary context switches of the calling thread so far.
std::uint64_t thread_preemptions() noexcept;

// Steal time the hypervisor reports for `cpu` (/proc/stat), in ms; -1 if unknown.
double steal_ms(int cpu);

// ---- pinning -----------------------------------------------------------------
bool pin_this_thread(int cpu, std::string* err);
bool get_affinity(cpu_set_t& set);
void set_affinity(const cpu_set_t& set);

// The floor word: one 64-bit atomic alone on its line (see workloads.hpp).
struct alignas(128) FloorWord {
  std::atomic<std::uint64_t> v{0};
};

// ---- shared synchronisation block ---------------------------------------------
// Lives on the heap for thread runs and inside the segment for process runs;
// only lock-free atomics, no pointers. On its own lines, away from any queue.
struct alignas(128) SyncBlock {
  std::atomic<std::uint32_t> consumer_ready{0};  // consumer / echo side is spinning
  std::atomic<std::uint32_t> attached{0};        // child process has opened the segment
  std::atomic<std::uint32_t> abort{0};           // a side gave up (timeout / peer death)
  std::atomic<std::uint32_t> child_failed{0};    // child could not open / attach
  std::atomic<std::uint64_t> t_start{0};         // producer: just before the first push
  std::atomic<std::uint64_t> t_end{0};           // consumer: after the last verified pop
  std::atomic<std::uint64_t> received{0};        // messages the consumer took
  std::atomic<std::uint64_t> errors{0};          // sequence mismatches seen by the consumer
  // Thread CPU time and wall time of each side over its whole run: a share
  // below 1 means something else ran on that CPU during the measurement.
  std::atomic<std::uint64_t> a_cpu_ns{0}, a_wall_ns{0}, b_cpu_ns{0}, b_wall_ns{0};
  // Involuntary context switches of each side: the scheduler preempted it.
  std::atomic<std::uint64_t> a_preempt{0}, b_preempt{0};
  // Throughput cells: the floor (ns per round trip x 100) probed on the same
  // two threads / processes just before and just after the timed transfer.
  std::atomic<std::uint64_t> probe_before_cns{0}, probe_after_cns{0};
  FloorWord probe;  // the word those probes ping-pong, on its own line
};

static_assert(std::atomic<std::uint64_t>::is_always_lock_free);

// ---- spin watchdog -----------------------------------------------------------
// Called on every failed try: costs one increment and one predictable branch.
// Every 2^16 failures it checks the abort flag, the deadline and (process runs)
// whether the child is still alive, so a lost message or a dead peer ends the
// cell with an error instead of hanging the run.
class Watch {
 public:
  Watch(SyncBlock& s, std::uint64_t deadline_ns, pid_t child = 0) noexcept
      : s_(&s), deadline_(deadline_ns), child_(child) {}

  // true: give up.
  bool spin() noexcept {
    ringwire::core::cpu_relax();
    if ((++n_ & 0xFFFF) != 0) return false;
    return slow_check();
  }
  bool failed() const noexcept { return failed_; }

 private:
  bool slow_check() noexcept;

  SyncBlock* s_;
  std::uint64_t deadline_;
  pid_t child_;
  std::uint32_t n_ = 0;
  bool failed_ = false;
};

}  // namespace rwbench
