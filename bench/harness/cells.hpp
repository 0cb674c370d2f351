// One function per kind of measurement ("cell"): build fresh queues, run the
// two sides (threads or processes), check what the consumer reported, and
// turn it into a Sample. Every function returns "" or why the run does not
// count; a run counts only if every message arrived and verified.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "adapters.hpp"
#include "runners.hpp"
#include "workloads.hpp"

namespace rwbench {

struct Sample {
  double value = 0;      // throughput: messages/s; round trip: median ns of the batch samples
  double p99 = 0;        // round trip only: 99th percentile of the batch samples
  double floor_ns = 0;   // round trip only: median of the floor batches run in the same cell
  double x_floor = 0;    // round trip only: median over k of queue batch k / floor batch k
  double cpu_share = 0;  // min over both sides of thread CPU time / wall time
  double steal_ms = 0;   // hypervisor steal time on the two CPUs during the run
  std::uint64_t preempted = 0;  // involuntary context switches of either side
  double probe_before_ns = 0;   // throughput only: floor probed just before the run
  double probe_after_ns = 0;    // ... and just after it
};

inline void copy_conditions(const SyncSnapshot& s, Sample& out) {
  out.cpu_share = s.cpu_share;
  out.steal_ms = s.steal_ms;
  out.preempted = s.preempted;
  out.probe_before_ns = s.probe_before_ns;
  out.probe_after_ns = s.probe_after_ns;
}

struct CellParams {
  RunConfig run;
  std::uint64_t messages = 0;  // throughput cells
  std::size_t batch = 0;       // 0: single-item push/pop; else push_n/pop_n of up to `batch`
  PingPongPlan plan;           // round-trip cells
};

// Each side of a fresh queue touches every slot once, single-threaded,
// before the timed run: page faults and first-touch misses stay out of it.
template <class Q, class M>
void warm(Q& q) {
  M m{};
  for (int round = 0; round < 2; ++round) {
    for (std::size_t i = 0; i < kCapacity / 2; ++i) {
      make_msg(m, i);
      while (!q.push(m)) {
      }
    }
    for (std::size_t i = 0; i < kCapacity / 2; ++i)
      while (!q.pop(m)) {
      }
  }
}

inline std::string finish_throughput(const std::string& err, const SyncSnapshot& s, std::uint64_t n,
                                     Sample& out) {
  if (s.errors != 0) {
    return "verification failed: " + std::to_string(s.errors) + " of " + std::to_string(n) +
           " messages out of sequence or corrupt";
  }
  if (s.received > 0 && s.received < n) {
    return "verification failed: consumer received " + std::to_string(s.received) + " of " +
           std::to_string(n) + " messages" + (err.empty() ? "" : " (" + err + ")");
  }
  if (!err.empty()) return err;
  if (s.received != n) {
    return "consumer received " + std::to_string(s.received) + " of " + std::to_string(n);
  }
  if (s.t_end <= s.t_start) return "clock did not advance";
  out.value = static_cast<double>(n) * 1e9 / static_cast<double>(s.t_end - s.t_start);
  copy_conditions(s, out);
  return "";
}

inline double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  // nearest rank
  std::size_t k = static_cast<std::size_t>(p / 100.0 * static_cast<double>(v.size()) + 0.999999);
  if (k == 0) k = 1;
  if (k > v.size()) k = v.size();
  return v[k - 1];
}

inline double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

inline std::string finish_round_trip(const std::string& err, const SyncSnapshot& s,
                                     const PingPongPlan& plan, const std::vector<double>& q,
                                     const std::vector<double>& f, Sample& out) {
  if (s.errors != 0) {
    return "verification failed: " + std::to_string(s.errors) + " round trips out of sequence";
  }
  if (!err.empty()) return err;
  if (s.received != plan.total()) {
    return "echo side handled " + std::to_string(s.received) + " of " +
           std::to_string(plan.total()) + " round trips";
  }
  out.floor_ns = median(f);
  if (q.empty()) {  // floor-only cell
    out.value = out.floor_ns;
    out.p99 = percentile(f, 99);
    out.x_floor = 1;
  } else {
    out.value = median(q);
    out.p99 = percentile(q, 99);
    std::vector<double> r(q.size());
    for (std::size_t k = 0; k < q.size(); ++k)
      r[k] = f[k] > 0 ? q[k] / f[k] : 0;
    out.x_floor = median(r);
  }
  copy_conditions(s, out);
  return "";
}

// ---- in-process (two pinned threads) -----------------------------------------

template <class M, template <class> class A>
std::string thread_throughput(const CellParams& p, Sample& out) {
  auto q = std::make_unique<A<M>>();
  warm<A<M>, M>(*q);
  SyncSnapshot snap;
  const std::uint64_t n = p.messages;
  const std::size_t b = p.batch;
  std::string err = run_threads(
      p.run, snap,
      [&](SyncBlock& s, Watch& w) {
        if constexpr (A<M>::kBatch) {
          if (b != 0) return produce_batch<M>(*q, n, b, s, w);
        }
        return produce<M>(*q, n, s, w);
      },
      [&](SyncBlock& s, Watch& w) {
        if constexpr (A<M>::kBatch) {
          if (b != 0) return consume_batch<M>(*q, n, b, s, w);
        }
        return consume<M>(*q, n, s, w);
      });
  return finish_throughput(err, snap, n, out);
}

// A round-trip cell; req == resp == nullptr (Q = NoQueue) runs the floor alone.
template <class Q>
std::string thread_round_trip_impl(const CellParams& p, Q* req, Q* resp, Sample& out) {
  auto f = std::make_unique<FloorWord>();
  SyncSnapshot snap;
  std::vector<double> qs, fs;
  std::string err = run_threads(
      p.run, snap,
      [&](SyncBlock& s, Watch& w) { return pp_client(req, resp, *f, p.plan, qs, fs, s, w); },
      [&](SyncBlock& s, Watch& w) { return pp_echo(req, resp, *f, p.plan, s, w); });
  return finish_round_trip(err, snap, p.plan, qs, fs, out);
}

template <template <class> class A>
std::string thread_round_trip(const CellParams& p, Sample& out) {
  auto req = std::make_unique<A<Msg8>>();
  auto resp = std::make_unique<A<Msg8>>();
  warm<A<Msg8>, Msg8>(*req);
  warm<A<Msg8>, Msg8>(*resp);
  return thread_round_trip_impl(p, req.get(), resp.get(), out);
}

inline std::string thread_floor(const CellParams& p, Sample& out) {
  return thread_round_trip_impl<NoQueue>(p, nullptr, nullptr, out);
}

// ---- cross-process (fork, shared segment opened by name) -----------------------
// Payload layout: SyncBlock at 0, then each queue (or the floor word) on its
// own page. `Raw` is ringwire::SpscRing or ringwire::MutexQueue: the parent
// builds with create_in, the child attaches to its own mapping.

inline constexpr std::size_t kPage = 4096;
inline constexpr std::size_t page_align(std::size_t v) {
  return (v + kPage - 1) / kPage * kPage;
}
inline std::byte* at(void* p, std::size_t off) {
  return static_cast<std::byte*>(p) + off;
}

template <class M, template <class> class Raw, template <class> class A>
std::string process_throughput(const CellParams& p, std::uint64_t tag, Sample& out) {
  const std::size_t qbytes = Raw<M>::bytes_for(kCapacity);
  const std::size_t total = kPage + qbytes;
  std::optional<A<M>> pq;
  SyncSnapshot snap;
  const std::uint64_t n = p.messages;
  const std::size_t b = p.batch;
  std::string err = run_forked(
      p.run, snap, tag * 16 + sizeof(M), total,
      [&](void* mem, std::size_t) -> std::string {
        auto r = Raw<M>::create_in(at(mem, kPage), qbytes, kCapacity);
        if (!r) return "create_in: " + r.status().to_string();
        pq.emplace(std::move(*r));
        warm<A<M>, M>(*pq);
        return "";
      },
      [&](SyncBlock& s, Watch& w) {
        if (b != 0) return produce_batch<M>(*pq, n, b, s, w);
        return produce<M>(*pq, n, s, w);
      },
      [&](void* mem, std::size_t bytes, SyncBlock& s, Watch& w) {
        if (bytes < total) return false;
        auto r = Raw<M>::attach(at(mem, kPage), bytes - kPage);
        if (!r) return false;
        A<M> cq(std::move(*r));
        if (b != 0) return consume_batch<M>(cq, n, b, s, w);
        return consume<M>(cq, n, s, w);
      });
  return finish_throughput(err, snap, n, out);
}

// Round trip across processes: the floor word sits on its own page next to
// the two rings, so the paired floor batches cross the same two processes.
template <template <class> class Raw, template <class> class A>
std::string process_round_trip(const CellParams& p, std::uint64_t tag, Sample& out) {
  const std::size_t qbytes = Raw<Msg8>::bytes_for(kCapacity);
  const std::size_t off_floor = kPage;
  const std::size_t off_req = 2 * kPage;
  const std::size_t off_resp = off_req + page_align(qbytes);
  const std::size_t total = off_resp + qbytes;
  std::optional<A<Msg8>> req, resp;
  FloorWord* floor = nullptr;
  SyncSnapshot snap;
  std::vector<double> qs, fs;
  std::string err = run_forked(
      p.run, snap, tag * 16 + 1, total,
      [&](void* mem, std::size_t) -> std::string {
        floor = new (at(mem, off_floor)) FloorWord();
        auto r1 = Raw<Msg8>::create_in(at(mem, off_req), qbytes, kCapacity);
        auto r2 = Raw<Msg8>::create_in(at(mem, off_resp), qbytes, kCapacity);
        if (!r1 || !r2) return "create_in failed";
        req.emplace(std::move(*r1));
        resp.emplace(std::move(*r2));
        warm<A<Msg8>, Msg8>(*req);
        warm<A<Msg8>, Msg8>(*resp);
        return "";
      },
      [&](SyncBlock& s, Watch& w) {
        return pp_client(&*req, &*resp, *floor, p.plan, qs, fs, s, w);
      },
      [&](void* mem, std::size_t bytes, SyncBlock& s, Watch& w) {
        if (bytes < total) return false;
        auto r1 = Raw<Msg8>::attach(at(mem, off_req), qbytes);
        auto r2 = Raw<Msg8>::attach(at(mem, off_resp), qbytes);
        if (!r1 || !r2) return false;
        A<Msg8> creq(std::move(*r1));
        A<Msg8> cresp(std::move(*r2));
        auto* fw = reinterpret_cast<FloorWord*>(at(mem, off_floor));
        return pp_echo(&creq, &cresp, *fw, p.plan, s, w);
      });
  return finish_round_trip(err, snap, p.plan, qs, fs, out);
}

inline std::string process_floor(const CellParams& p, Sample& out) {
  FloorWord* parent_word = nullptr;
  SyncSnapshot snap;
  std::vector<double> qs, fs;
  std::string err = run_forked(
      p.run, snap, 0xf1, kPage + sizeof(FloorWord),
      [&](void* mem, std::size_t) -> std::string {
        parent_word = new (at(mem, kPage)) FloorWord();
        return "";
      },
      [&](SyncBlock& s, Watch& w) {
        return pp_client<NoQueue>(nullptr, nullptr, *parent_word, p.plan, qs, fs, s, w);
      },
      [&](void* mem, std::size_t bytes, SyncBlock& s, Watch& w) {
        if (bytes < kPage + sizeof(FloorWord)) return false;
        auto* fw = reinterpret_cast<FloorWord*>(at(mem, kPage));
        return pp_echo<NoQueue>(nullptr, nullptr, *fw, p.plan, s, w);
      });
  return finish_round_trip(err, snap, p.plan, qs, fs, out);
}

}  // namespace rwbench
