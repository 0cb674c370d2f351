// One thin adapter per queue so the workloads are written once.
//
//   push(m) / pop(m)       one non-blocking attempt; false = full / empty
//   push_n / pop_n         only where the queue has a real bulk API
//                          (kBatch == true); the harness never emulates one
//
// Peers are compiled in only when their headers were found at configure time
// (RWBENCH_HAVE_* set by bench/CMakeLists.txt).
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>

#include "common.hpp"
#include "ringwire/queue/mutex_queue.hpp"
#include "ringwire/queue/spsc_ring.hpp"

#if RWBENCH_HAVE_BOOST
#include <boost/lockfree/spsc_queue.hpp>
#endif
#if RWBENCH_HAVE_RWQ
#include <readerwriterqueue/readerwriterqueue.h>
#endif
#if RWBENCH_HAVE_ATOMIC_QUEUE
#include <atomic_queue/atomic_queue.h>
#endif

namespace rwbench {

template <class M>
struct RingQ {
  static constexpr const char* kName = "SpscRing";
  static constexpr bool kBatch = true;
  RingQ() : q(kCapacity) {}
  explicit RingQ(ringwire::SpscRing<M>&& r) : q(std::move(r)) {}
  bool push(const M& m) noexcept { return q.try_push(m); }
  bool pop(M& m) noexcept { return q.try_pop(m); }
  std::size_t push_n(const M* p, std::size_t n) noexcept { return q.push_n(p, n); }
  std::size_t pop_n(M* p, std::size_t n) noexcept { return q.pop_n(p, n); }
  ringwire::SpscRing<M> q;
};

template <class M>
struct MutexQ {
  static constexpr const char* kName = "MutexQueue";
  static constexpr bool kBatch = true;
  MutexQ() : q(kCapacity) {}
  explicit MutexQ(ringwire::MutexQueue<M>&& r) : q(std::move(r)) {}
  bool push(const M& m) { return q.try_push(m); }
  bool pop(M& m) { return q.try_pop(m); }
  std::size_t push_n(const M* p, std::size_t n) { return q.push_n(p, n); }
  std::size_t pop_n(M* p, std::size_t n) { return q.pop_n(p, n); }
  ringwire::MutexQueue<M> q;
};

#if RWBENCH_HAVE_BOOST
// Compile-time capacity: boost's fastest spsc_queue configuration.
template <class M>
struct BoostQ {
  static constexpr const char* kName = "boost::lockfree::spsc_queue";
  static constexpr bool kBatch = true;
  bool push(const M& m) noexcept { return q.push(m); }
  bool pop(M& m) noexcept { return q.pop(m); }
  std::size_t push_n(const M* p, std::size_t n) noexcept { return q.push(p, n); }
  std::size_t pop_n(M* p, std::size_t n) noexcept { return q.pop(p, n); }
  boost::lockfree::spsc_queue<M, boost::lockfree::capacity<kCapacity>> q;
};
#endif

#if RWBENCH_HAVE_RWQ
// try_enqueue never allocates: the queue keeps the capacity it was built with.
template <class M>
struct RwqQ {
  static constexpr const char* kName = "moodycamel::ReaderWriterQueue";
  static constexpr bool kBatch = false;
  bool push(const M& m) noexcept { return q.try_enqueue(m); }
  bool pop(M& m) noexcept { return q.try_dequeue(m); }
  moodycamel::ReaderWriterQueue<M> q{kCapacity};
};
#endif

#if RWBENCH_HAVE_ATOMIC_QUEUE
// atomic_queue's SPSC mode (SPSC=true template flag). Its fastest queue for an
// 8-byte payload is AtomicQueue<uint64_t> (the element itself is the atomic,
// with a NIL value reserved; we use ~0, never a sequence number here); a
// 64-byte struct needs AtomicQueue2 (a state byte per element).
// MINIMIZE_CONTENTION (spread consecutive slots over different cache lines) is
// a template flag too; for one producer and one consumer leaving it off was
// faster on the machine in docs/benchmarks.md. -DRWBENCH_AQ_MINIMIZE_CONTENTION=1
// flips it.
#ifndef RWBENCH_AQ_MINIMIZE_CONTENTION
#define RWBENCH_AQ_MINIMIZE_CONTENTION 0
#endif
inline constexpr bool kAqMinimizeContention = RWBENCH_AQ_MINIMIZE_CONTENTION != 0;

template <class M>
struct AqStorage;
template <>
struct AqStorage<Msg8> {
  using type = atomic_queue::AtomicQueue<std::uint64_t, kCapacity, ~std::uint64_t{0},
                                         kAqMinimizeContention, true, false, true>;
  static std::uint64_t to(const Msg8& m) noexcept { return m.seq; }
  static void from(std::uint64_t v, Msg8& m) noexcept { m.seq = v; }
};
template <>
struct AqStorage<Msg64> {
  using type =
      atomic_queue::AtomicQueue2<Msg64, kCapacity, kAqMinimizeContention, true, false, true>;
  static const Msg64& to(const Msg64& m) noexcept { return m; }
  static void from(const Msg64& v, Msg64& m) noexcept { m = v; }
};

// try_push / try_pop: the same non-blocking contract as every other queue.
template <class M>
struct AqQ {
  static constexpr const char* kName = "atomic_queue";
  static constexpr bool kBatch = false;
  using S = AqStorage<M>;
  bool push(const M& m) noexcept { return q.try_push(S::to(m)); }
  bool pop(M& m) noexcept {
    typename std::remove_cvref_t<decltype(S::to(m))> v;
    if (!q.try_pop(v)) return false;
    S::from(v, m);
    return true;
  }
  typename S::type q;
};

// push / pop: atomic_queue's own spin-until-done calls, which skip the
// index check and wait on the slot itself. Reported as a separate row; the
// harness's retry loop never runs for it.
template <class M>
struct AqBlockingQ {
  static constexpr const char* kName = "atomic_queue (push/pop)";
  static constexpr bool kBatch = false;
  using S = AqStorage<M>;
  bool push(const M& m) noexcept {
    q.push(S::to(m));
    return true;
  }
  bool pop(M& m) noexcept {
    S::from(q.pop(), m);
    return true;
  }
  typename S::type q;
};
#endif

}  // namespace rwbench
