// The two sides of each measurement, written once over two small endpoint
// types per transport:
//
//   Tx: bool send(std::uint64_t seq)   one message of spec.size bytes
//       bool flush()                   make everything sent visible
//   Rx: bool recv(std::uint64_t& seq, bool& intact)
//                                      the next message, checked (message.hpp)
//   both: const std::string& error()   why the last call failed
//
// Latency (A = client, B = echo): round trips of one 64-byte message; A sends
// seq i and waits for seq i back; B checks the request and answers with a new
// message carrying the seq it received. Blocks of `block` transport round
// trips alternate with blocks of `block` floor round trips (one atomic in the
// shared block, ping-ponged), so every cell carries the floor measured on the
// same two processes in the same seconds. Every round trip is timed on its
// own (one timestamp per round trip, chained: see ticks()); A keeps the
// samples and leaves RTT/2 percentiles in the shared block.
//
// Throughput (A = producer, B = consumer): A sends seq 0..n-1, B receives n
// and checks every one; a mismatch is counted and the expectation
// resynchronised (one fault counts once). Time runs from A's stamp before
// its first send to B's stamp after its last check (CLOCK_MONOTONIC is
// system-wide). A floor probe before and after labels the vCPU placement.
#pragma once

#include <algorithm>
#include <cstdint>
#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#endif
#include <string>
#include <vector>

#include "cell.hpp"

namespace ipcb {

// ---- the floor -------------------------------------------------------------------
// A stores 2i+1 and waits for 2i+2, B waits for 2i+1 and stores 2i+2: two
// cache-line hand-overs per round trip and nothing else.
inline bool floor_a(SharedBlock& s, std::uint64_t& i, Spin& sp) noexcept {
  s.floor.v.store(2 * i + 1, std::memory_order_release);
  while (s.floor.v.load(std::memory_order_acquire) != 2 * i + 2)
    if (sp.spin()) return false;
  ++i;
  return true;
}
inline bool floor_b(SharedBlock& s, std::uint64_t& i, Spin& sp) noexcept {
  while (s.floor.v.load(std::memory_order_acquire) != 2 * i + 1)
    if (sp.spin()) return false;
  s.floor.v.store(2 * i + 2, std::memory_order_release);
  ++i;
  return true;
}

// Placement probe: 10 timed batches of 100 floor round trips; A keeps the
// median batch (ns per round trip).
inline constexpr int kProbeBatches = 10, kProbeRoundTrips = 100;
inline bool probe_a(SharedBlock& s, std::uint64_t& fi, Spin& sp, double& out) {
  double v[kProbeBatches];
  for (double& x : v) {
    const std::uint64_t t0 = rwbench::now_ns();
    for (int k = 0; k < kProbeRoundTrips; ++k)
      if (!floor_a(s, fi, sp)) return false;
    x = static_cast<double>(rwbench::now_ns() - t0) / kProbeRoundTrips;
  }
  std::sort(std::begin(v), std::end(v));
  out = (v[kProbeBatches / 2 - 1] + v[kProbeBatches / 2]) / 2;
  return true;
}
inline bool probe_b(SharedBlock& s, std::uint64_t& fi, Spin& sp) {
  for (int k = 0; k < kProbeBatches * kProbeRoundTrips; ++k)
    if (!floor_b(s, fi, sp)) return false;
  return true;
}

// Both workers have built their endpoints: each sets its flag and waits for
// the other's (bounded by the cell deadline).
inline bool meet(SharedBlock& s, bool is_a, std::uint64_t deadline) {
  (is_a ? s.a_ready : s.b_ready).store(1, std::memory_order_release);
  auto& other = is_a ? s.b_ready : s.a_ready;
  Spin sp(s, deadline);
  while (other.load(std::memory_order_acquire) == 0)
    if (sp.spin()) return false;
  return true;
}

// Per-round-trip timestamps: the TSC where there is one (rdtsc, ~13 ns in a
// KVM guest, against ~30 ns for clock_gettime through the vDSO), converted to
// ns with the CLOCK_MONOTONIC time of the same stretch. Only the client
// reads it, so TSC offsets between CPUs do not matter. One read per sample:
// its cost is part of every sample, of the floor's as much as the
// transport's.
inline std::uint64_t ticks() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  return __rdtsc();
#else
  return rwbench::now_ns();
#endif
}
struct TickClock {
  std::uint64_t ns0 = rwbench::now_ns(), t0 = ticks();
  double ns_per_tick() const noexcept {
    const std::uint64_t ns1 = rwbench::now_ns(), t1 = ticks();
    return t1 > t0 ? static_cast<double>(ns1 - ns0) / static_cast<double>(t1 - t0) : 1.0;
  }
};

// Receiver bookkeeping: the next message should carry `expect`. A fault
// counts once: a gap (lost messages) resynchronises to the seq received, a
// duplicate (seq behind) keeps the expectation, a corrupt or implausible
// message is taken as the expected one gone bad.
inline void account(std::uint64_t got, bool intact, std::uint64_t& expect, std::uint64_t& bad,
                    std::uint64_t count) noexcept {
  if (intact && got == expect) [[likely]] {
    ++expect;
    return;
  }
  ++bad;
  if (intact && got > expect && got - expect <= count) {
    expect = got + 1;
  } else if (!(intact && got < expect)) {
    ++expect;
  }
}

// RTT/2 percentiles (nearest rank) of round-trip samples in ticks.
LatencySummary summarize_rtt(std::vector<std::uint32_t>& rtt, double ns_per_tick);

inline std::uint32_t clamp32(std::uint64_t d) noexcept {
  return d > UINT32_MAX ? UINT32_MAX : static_cast<std::uint32_t>(d);
}

// ---- latency -----------------------------------------------------------------------

template <class Tx, class Rx>
bool latency_a(const CellSpec& c, SharedBlock& s, Tx& tx, Rx& rx) {
  std::vector<std::uint32_t> q, f;
  q.reserve(c.count);
  f.reserve(c.count);
  Spin sp(s, c.deadline_ns);
  std::uint64_t seq = 0, fi = 0, bad = 0;
  auto rt = [&]() -> bool {
    if (!tx.send(seq) || !tx.flush()) {
      s.a_err.set("send: " + tx.error());
      return false;
    }
    std::uint64_t got = 0;
    bool intact = false;
    if (!rx.recv(got, intact)) {
      s.a_err.set("receive: " + rx.error());
      return false;
    }
    if (!intact || got != seq) [[unlikely]]
      ++bad;
    ++seq;
    return true;
  };
  if (!meet(s, true, c.deadline_ns)) {
    s.a_err.set("the echo side never got ready");
    return false;
  }
  bool ok = true;
  for (std::uint32_t i = 0; ok && i < c.warmup; ++i) {
    ok = floor_a(s, fi, sp);
    if (ok) ok = rt();
  }
  const TickClock clock;
  for (std::uint64_t done = 0; ok && done < c.count;) {
    const std::uint64_t n = std::min<std::uint64_t>(c.block, c.count - done);
    std::uint64_t t = ticks();
    for (std::uint64_t i = 0; ok && i < n; ++i) {
      ok = floor_a(s, fi, sp);
      const std::uint64_t t2 = ticks();
      f.push_back(clamp32(t2 - t));
      t = t2;
    }
    t = ticks();
    for (std::uint64_t i = 0; ok && i < n; ++i) {
      ok = rt();
      const std::uint64_t t2 = ticks();
      q.push_back(clamp32(t2 - t));
      t = t2;
    }
    done += n;
  }
  const double scale = clock.ns_per_tick();
  if (!ok && s.a_err.text[0] == 0) s.a_err.set("floor ping-pong timed out (peer gone?)");
  s.mismatches_a = bad;
  if (!ok) return false;
  s.lat = summarize_rtt(q, scale);
  s.floor_lat = summarize_rtt(f, scale);
  return true;
}

template <class Tx, class Rx>
bool latency_b(const CellSpec& c, SharedBlock& s, Tx& tx, Rx& rx) {
  Spin sp(s, c.deadline_ns);
  std::uint64_t expect = 0, fi = 0, bad = 0, handled = 0;
  auto echo = [&]() -> bool {
    std::uint64_t got = 0;
    bool intact = false;
    if (!rx.recv(got, intact)) {
      s.b_err.set("receive: " + rx.error());
      return false;
    }
    account(got, intact, expect, bad, c.warmup + c.count);
    if (!tx.send(got) || !tx.flush()) {
      s.b_err.set("send: " + tx.error());
      return false;
    }
    ++handled;
    return true;
  };
  if (!meet(s, false, c.deadline_ns)) {
    s.b_err.set("the client never got ready");
    return false;
  }
  bool ok = true;
  for (std::uint32_t i = 0; ok && i < c.warmup; ++i) {
    ok = floor_b(s, fi, sp);
    if (ok) ok = echo();
  }
  for (std::uint64_t done = 0; ok && done < c.count;) {
    const std::uint64_t n = std::min<std::uint64_t>(c.block, c.count - done);
    for (std::uint64_t i = 0; ok && i < n; ++i)
      ok = floor_b(s, fi, sp);
    for (std::uint64_t i = 0; ok && i < n; ++i)
      ok = echo();
    done += n;
  }
  if (!ok && s.b_err.text[0] == 0) s.b_err.set("floor ping-pong timed out (peer gone?)");
  s.received = handled;
  s.mismatches_b = bad;
  return ok;
}

// ---- throughput --------------------------------------------------------------------

template <class Tx>
bool throughput_a(const CellSpec& c, SharedBlock& s, Tx& tx) {
  Spin sp(s, c.deadline_ns);
  std::uint64_t fi = 0;
  if (!meet(s, true, c.deadline_ns)) {
    s.a_err.set("the consumer never got ready");
    return false;
  }
  if (!probe_a(s, fi, sp, s.probe_before_ns)) {
    s.a_err.set("floor probe timed out");
    return false;
  }
  s.t_start.store(rwbench::now_ns(), std::memory_order_relaxed);
  for (std::uint64_t i = 0; i < c.count; ++i) {
    const bool corrupt = c.corrupt_every != 0 && i % c.corrupt_every == c.corrupt_every - 1;
    if (!tx.send(corrupt ? i + (std::uint64_t{1} << 40) : i)) [[unlikely]] {
      s.a_err.set("send #" + std::to_string(i) + ": " + tx.error());
      return false;
    }
  }
  if (!tx.flush()) {
    s.a_err.set("flush: " + tx.error());
    return false;
  }
  if (!probe_a(s, fi, sp, s.probe_after_ns)) {
    s.a_err.set("floor probe after the stream timed out (consumer stuck?)");
    return false;
  }
  return true;
}

template <class Rx>
bool throughput_b(const CellSpec& c, SharedBlock& s, Rx& rx) {
  Spin sp(s, c.deadline_ns);
  std::uint64_t fi = 0, expect = 0, bad = 0, i = 0;
  bool ok = meet(s, false, c.deadline_ns) && probe_b(s, fi, sp);
  if (!ok) s.b_err.set("producer never started");
  for (; ok && i < c.count; ++i) {
    std::uint64_t got = 0;
    bool intact = false;
    if (!rx.recv(got, intact)) [[unlikely]] {
      s.b_err.set("receive #" + std::to_string(i) + ": " + rx.error());
      ok = false;
      break;
    }
    account(got, intact, expect, bad, c.count);
  }
  if (ok) s.t_end.store(rwbench::now_ns(), std::memory_order_relaxed);
  s.received = i;
  s.mismatches_b = bad;
  if (ok && !probe_b(s, fi, sp)) {
    s.b_err.set("floor probe after the stream timed out");
    ok = false;
  }
  return ok;
}

}  // namespace ipcb
