// One cell of an ipc_bench run (a transport, a workload, a message size, one
// repetition), the block of shared memory both worker processes see, and the
// results the workers leave in it.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "harness/common.hpp"

namespace ipcb {

enum class Workload { latency, throughput };

struct CellSpec {
  Workload workload = Workload::latency;
  std::size_t size = 64;          // message bytes
  std::uint64_t count = 0;        // round trips (latency) or messages (throughput)
  std::uint32_t block = 1000;     // latency: round trips per block; floor and
                                  // transport blocks alternate
  std::uint32_t warmup = 1000;    // latency: untimed round trips of each kind
  std::uint32_t tput_batch = 32;  // throughput: publish / release every N (ringwire)
  std::uint64_t channel_capacity = std::uint64_t{1} << 20;
  int cpu_a = 0, cpu_b = 1;       // A: client / producer, B: echo / consumer
  std::uint64_t deadline_ns = 0;  // CLOCK_MONOTONIC; every wait ends here
  std::string tag;                // unique per cell: "<pid>.<n>", for object names
  int rep = 0;
  std::uint64_t corrupt_every = 0;  // self-test: A sends a wrong seq every N messages
};

// One-way latency summary (RTT / 2) of one batch of samples, in ns.
struct LatencySummary {
  double p50 = 0, p99 = 0, p999 = 0, max = 0, mean = 0;
  std::uint64_t samples = 0;
};

// Error text a side leaves for the parent.
struct ErrText {
  char text[240] = {};
  void set(const std::string& s) noexcept {
    if (text[0] != 0) return;  // keep the first
    std::strncpy(text, s.c_str(), sizeof text - 1);
  }
  std::string str() const { return std::string(text, ::strnlen(text, sizeof text)); }
};

// MAP_SHARED | MAP_ANONYMOUS, created by the parent before it forks the two
// workers: nothing in /dev/shm. Plain (non-atomic) result fields are written by
// a worker before it exits and read by the parent after waitpid().
struct alignas(128) SharedBlock {
  rwbench::FloorWord floor;  // the floor ping-pong word, alone on its line
  alignas(128) std::atomic<std::uint32_t> a_ready{0}, b_ready{0};
  std::atomic<std::uint32_t> abort{0};    // a side gave up
  std::atomic<std::uint32_t> created{0};  // A built a named object B must open
  alignas(128) std::atomic<std::uint64_t> t_start{0}, t_end{0};
  std::uint64_t received = 0;                      // messages / round trips B handled
  std::uint64_t mismatches_b = 0;                  // seen by B (consumer / echo)
  std::uint64_t mismatches_a = 0;                  // seen by A (client, on the echoed replies)
  LatencySummary lat, floor_lat;                   // A: latency cells
  double probe_before_ns = 0, probe_after_ns = 0;  // A: throughput cells (floor RTT)
  std::uint64_t a_preempt = 0, b_preempt = 0;      // involuntary context switches
  double a_cpu_share = 0, b_cpu_share = 0;         // CPU time / wall time of each side
  std::uint32_t a_done = 0, b_done = 0;            // side finished its workload
  ErrText a_err, b_err;
  char note[240] = {};  // transport remark (e.g. queue depth chosen), from A
};

// What the parent keeps of a SharedBlock after the workers are gone.
struct Results {
  std::uint64_t t_start = 0, t_end = 0;
  std::uint64_t received = 0, mismatches_b = 0, mismatches_a = 0;
  LatencySummary lat, floor_lat;
  double probe_before_ns = 0, probe_after_ns = 0;
  std::uint64_t a_preempt = 0, b_preempt = 0;
  double a_cpu_share = 0, b_cpu_share = 0;
  std::uint32_t a_done = 0, b_done = 0;
  ErrText a_err, b_err;
  std::string note;
};
inline Results results_of(const SharedBlock& s) {
  Results r;
  r.t_start = s.t_start.load();
  r.t_end = s.t_end.load();
  r.received = s.received;
  r.mismatches_b = s.mismatches_b;
  r.mismatches_a = s.mismatches_a;
  r.lat = s.lat;
  r.floor_lat = s.floor_lat;
  r.probe_before_ns = s.probe_before_ns;
  r.probe_after_ns = s.probe_after_ns;
  r.a_preempt = s.a_preempt;
  r.b_preempt = s.b_preempt;
  r.a_cpu_share = s.a_cpu_share;
  r.b_cpu_share = s.b_cpu_share;
  r.a_done = s.a_done;
  r.b_done = s.b_done;
  r.a_err = s.a_err;
  r.b_err = s.b_err;
  r.note = std::string(s.note, ::strnlen(s.note, sizeof s.note));
  return r;
}

// Spin-wait helper for the workers: a pause per try, and every 1024 tries a
// look at the clock and the abort flag. True: give up.
class Spin {
 public:
  Spin(SharedBlock& s, std::uint64_t deadline) noexcept : s_(&s), deadline_(deadline) {}
  bool spin() noexcept {
    ringwire::core::cpu_relax();
    if ((++n_ & 1023) != 0) return false;
    if (s_->abort.load(std::memory_order_relaxed) != 0 || rwbench::now_ns() >= deadline_) {
      s_->abort.store(1, std::memory_order_relaxed);
      return true;
    }
    return false;
  }
  std::uint64_t deadline() const noexcept { return deadline_; }

 private:
  SharedBlock* s_;
  std::uint64_t deadline_;
  std::uint32_t n_ = 0;
};

}  // namespace ipcb
