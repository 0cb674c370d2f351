// The two sides of each measurement, written once for every queue adapter
// and used unchanged by thread runs and process runs.
//
// Throughput: the producer pushes n messages with seq 0..n-1; the consumer
// pops n and checks every one (msg_ok) against the next expected seq; a
// mismatch is counted and the expectation resynchronised, so one lost,
// duplicated or corrupt message counts once. A lost message leaves the
// consumer short and ends the cell at the timeout. Time runs from the producer's stamp
// just before its first push to the consumer's stamp after its last check.
// Untimed floor probes before and after record the vCPU placement the run saw.
//
// Round trip: the client pushes seq i into `req` and spins until it pops seq i
// from `resp`; the echo side pops from `req` and pushes the same message into
// `resp`. One message in flight. The client times batches of `batch` round
// trips with one clock read per batch and records ns per round trip.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <vector>

#include "common.hpp"

namespace rwbench {

// The physical floor: one 64-bit atomic alone on its line (FloorWord). The
// client stores 2i+1 and waits for 2i+2, the echo side waits for 2i+1 and
// stores 2i+2: two cache-line hand-overs per round trip and nothing else.
// Same spin (pause) and the same batch timing as the queues.

// One round trip of each kind, client side. `i` / `seq` count round trips.
inline bool floor_rt_client(FloorWord& f, std::uint64_t& i, Watch& w) {
  f.v.store(2 * i + 1, std::memory_order_release);
  while (f.v.load(std::memory_order_acquire) != 2 * i + 2)
    if (w.spin()) return false;
  ++i;
  return true;
}
inline bool floor_rt_echo(FloorWord& f, std::uint64_t& i, Watch& w) {
  while (f.v.load(std::memory_order_acquire) != 2 * i + 1)
    if (w.spin()) return false;
  f.v.store(2 * i + 2, std::memory_order_release);
  ++i;
  return true;
}
// Placement probe for throughput cells: 10 timed batches of 100 floor round
// trips on the same two threads / processes; the client stores the median.
inline constexpr std::uint32_t kProbeBatches = 10, kProbeRoundTrips = 100;

inline bool probe_client(FloorWord& f, std::uint64_t& fi, Watch& w,
                         std::atomic<std::uint64_t>& out_cns) {
  double v[kProbeBatches];
  for (auto& x : v) {
    const std::uint64_t t0 = now_ns();
    for (std::uint32_t i = 0; i < kProbeRoundTrips; ++i)
      if (!floor_rt_client(f, fi, w)) return false;
    x = static_cast<double>(now_ns() - t0) / kProbeRoundTrips;
  }
  std::sort(std::begin(v), std::end(v));
  out_cns.store(static_cast<std::uint64_t>((v[kProbeBatches / 2 - 1] + v[kProbeBatches / 2]) * 50));
  return true;
}
inline bool probe_echo(FloorWord& f, std::uint64_t& fi, Watch& w) {
  for (std::uint32_t i = 0; i < kProbeBatches * kProbeRoundTrips; ++i)
    if (!floor_rt_echo(f, fi, w)) return false;
  return true;
}

// ---- throughput -----------------------------------------------------------------

template <class M, class Q>
bool produce(Q& q, std::uint64_t n, SyncBlock& s, Watch& w) {
  std::uint64_t fi = 0;
  while (s.consumer_ready.load(std::memory_order_acquire) == 0)
    if (w.spin()) return false;
  if (!probe_client(s.probe, fi, w, s.probe_before_cns)) return false;
  s.t_start.store(now_ns(), std::memory_order_relaxed);
  M m{};
  for (std::uint64_t i = 0; i < n; ++i) {
    make_msg(m, i);
    while (!q.push(m))
      if (w.spin()) return false;
  }
  return probe_client(s.probe, fi, w, s.probe_after_cns);
}

template <class M, class Q>
bool consume(Q& q, std::uint64_t n, SyncBlock& s, Watch& w) {
  std::uint64_t errors = 0;
  std::uint64_t i = 0, fi = 0, expect = 0;
  M m{};
  s.consumer_ready.store(1, std::memory_order_release);
  if (!probe_echo(s.probe, fi, w)) goto out;
  for (; i < n; ++i) {
    while (!q.pop(m))
      if (w.spin()) goto out;
    if (!msg_ok(m, expect)) [[unlikely]] {
      ++errors;
      expect = m.seq;  // resynchronise: one fault counts once
    }
    ++expect;
  }
  s.t_end.store(now_ns(), std::memory_order_relaxed);
  s.received.store(i, std::memory_order_relaxed);
  s.errors.store(errors, std::memory_order_relaxed);
  return probe_echo(s.probe, fi, w);
out:
  s.received.store(i, std::memory_order_relaxed);
  s.errors.store(errors, std::memory_order_relaxed);
  return false;
}

// Batch variants: only for queues with a real bulk API (push_n / pop_n).
template <class M, class Q>
bool produce_batch(Q& q, std::uint64_t n, std::size_t batch, SyncBlock& s, Watch& w) {
  std::vector<M> buf(batch);
  std::uint64_t fi = 0;
  while (s.consumer_ready.load(std::memory_order_acquire) == 0)
    if (w.spin()) return false;
  if (!probe_client(s.probe, fi, w, s.probe_before_cns)) return false;
  s.t_start.store(now_ns(), std::memory_order_relaxed);
  for (std::uint64_t i = 0; i < n;) {
    const std::size_t k = static_cast<std::size_t>(std::min<std::uint64_t>(batch, n - i));
    for (std::size_t j = 0; j < k; ++j)
      make_msg(buf[j], i + j);
    for (std::size_t off = 0; off < k;) {
      const std::size_t d = q.push_n(buf.data() + off, k - off);
      if (d == 0 && w.spin()) return false;
      off += d;
    }
    i += k;
  }
  return probe_client(s.probe, fi, w, s.probe_after_cns);
}

template <class M, class Q>
bool consume_batch(Q& q, std::uint64_t n, std::size_t batch, SyncBlock& s, Watch& w) {
  std::vector<M> buf(batch);
  std::uint64_t errors = 0;
  std::uint64_t i = 0, fi = 0, expect = 0;
  s.consumer_ready.store(1, std::memory_order_release);
  if (!probe_echo(s.probe, fi, w)) goto out;
  while (i < n) {
    const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(batch, n - i));
    const std::size_t k = q.pop_n(buf.data(), want);
    if (k == 0) {
      if (w.spin()) goto out;
      continue;
    }
    for (std::size_t j = 0; j < k; ++j) {
      if (!msg_ok(buf[j], expect)) [[unlikely]] {
        ++errors;
        expect = buf[j].seq;
      }
      ++expect;
    }
    i += k;
  }
  s.t_end.store(now_ns(), std::memory_order_relaxed);
  s.received.store(i, std::memory_order_relaxed);
  s.errors.store(errors, std::memory_order_relaxed);
  return probe_echo(s.probe, fi, w);
out:
  s.received.store(i, std::memory_order_relaxed);
  s.errors.store(errors, std::memory_order_relaxed);
  return false;
}

// ---- round trip -----------------------------------------------------------------

struct PingPongPlan {
  std::uint32_t warmup = 0;   // round trips of each kind before the first timed batch
  std::uint32_t samples = 0;  // timed batches of each kind
  std::uint32_t batch = 0;    // round trips per timed batch
  // Echo-side work: warm-up and samples, for the queue and for the floor.
  std::uint64_t total() const { return warmup + std::uint64_t{samples} * batch; }
};

template <class Q>
bool queue_rt_client(Q& req, Q& resp, std::uint64_t& seq, std::uint64_t& errors, Watch& w) {
  const Msg8 m{seq};
  while (!req.push(m))
    if (w.spin()) return false;
  Msg8 r{};
  while (!resp.pop(r))
    if (w.spin()) return false;
  if (r.seq != seq) [[unlikely]]
    ++errors;
  ++seq;
  return true;
}
template <class Q>
bool queue_rt_echo(Q& req, Q& resp, std::uint64_t& seq, std::uint64_t& errors, Watch& w) {
  Msg8 m{};
  while (!req.pop(m))
    if (w.spin()) return false;
  if (m.seq != seq) [[unlikely]]
    ++errors;
  while (!resp.push(m))
    if (w.spin()) return false;
  ++seq;
  return true;
}

// Client of a round-trip cell. With `req` == nullptr only the floor runs.
// Otherwise every timed queue batch is preceded by a timed floor batch on the
// same two threads / processes, so the ratio queue / floor is taken under the
// same vCPU placement even when the hypervisor moves a vCPU mid-run.
// `q_out` / `f_out` receive ns per round trip, one value per batch.
template <class Q>
bool pp_client(Q* req, Q* resp, FloorWord& f, const PingPongPlan& p, std::vector<double>& q_out,
               std::vector<double>& f_out, SyncBlock& s, Watch& w) {
  q_out.assign(req ? p.samples : 0, 0.0);
  f_out.assign(p.samples, 0.0);
  std::uint64_t seq = 0, fi = 0, errors = 0;
  bool ok = true;
  while (s.consumer_ready.load(std::memory_order_acquire) == 0)
    if (w.spin()) return false;
  for (std::uint32_t i = 0; ok && i < p.warmup; ++i) {
    ok = floor_rt_client(f, fi, w);
    if (ok && req) ok = queue_rt_client(*req, *resp, seq, errors, w);
  }
  for (std::uint32_t k = 0; ok && k < p.samples; ++k) {
    std::uint64_t t0 = now_ns();
    for (std::uint32_t i = 0; ok && i < p.batch; ++i)
      ok = floor_rt_client(f, fi, w);
    f_out[k] = static_cast<double>(now_ns() - t0) / p.batch;
    if (!req) continue;
    t0 = now_ns();
    for (std::uint32_t i = 0; ok && i < p.batch; ++i)
      ok = queue_rt_client(*req, *resp, seq, errors, w);
    q_out[k] = static_cast<double>(now_ns() - t0) / p.batch;
  }
  s.errors.fetch_add(errors, std::memory_order_relaxed);
  return ok;
}

template <class Q>
bool pp_echo(Q* req, Q* resp, FloorWord& f, const PingPongPlan& p, SyncBlock& s, Watch& w) {
  std::uint64_t seq = 0, fi = 0, errors = 0;
  bool ok = true;
  s.consumer_ready.store(1, std::memory_order_release);
  for (std::uint32_t i = 0; ok && i < p.warmup; ++i) {
    ok = floor_rt_echo(f, fi, w);
    if (ok && req) ok = queue_rt_echo(*req, *resp, seq, errors, w);
  }
  for (std::uint32_t k = 0; ok && k < p.samples; ++k) {
    for (std::uint32_t i = 0; ok && i < p.batch; ++i)
      ok = floor_rt_echo(f, fi, w);
    for (std::uint32_t i = 0; ok && req && i < p.batch; ++i)
      ok = queue_rt_echo(*req, *resp, seq, errors, w);
  }
  // What the echo side handled: queue round trips, or floor ones for a floor cell.
  s.received.store(req ? seq : fi, std::memory_order_relaxed);
  s.errors.fetch_add(errors, std::memory_order_relaxed);
  return ok;
}

// A floor-only cell has no queue type; this stands in for Q.
struct NoQueue {
  bool push(const Msg8&) { return false; }
  bool pop(Msg8&) { return false; }
};

}  // namespace rwbench
