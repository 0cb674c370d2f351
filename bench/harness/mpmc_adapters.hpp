// Adapters for the multi-producer / multi-consumer benchmark
// (ringwire_bench_mpmc). One struct per queue, so the workload is written once:
//
//   struct X {
//     static constexpr const char* kName;  // display name
//     static constexpr bool kMpmc;         // false: one consumer only (MPSC)
//     static constexpr bool kFifo;         // promises per-producer FIFO order
//     static constexpr bool kPeer;         // a third-party queue
//     static constexpr const char* kOrder; // what the queue promises about order
//     X();                                 // builds the queue, kCapacity slots
//     struct Producer { Producer(X&, int id); bool push(std::uint64_t); };
//     struct Consumer { Consumer(X&, int id); bool pop(std::uint64_t&); };
//     std::uint64_t drain();               // after a failed run, single-threaded:
//   };                                     // items still inside (diagnostic)
//
// push / pop are one non-blocking attempt each (false = full / empty / busy);
// the harness owns the retry loop. A Producer / Consumer is built on the thread
// that uses it (moodycamel tokens, MpscRing owner registration), before the
// timed part. Consumers of the ringwire MPSC queues count `busy` answers (a
// push was half done) in `busy`.
//
// Items are 8-byte words that are never 0 and never ~0 (see mpmc_cells.hpp),
// so queues that reserve 0 (the Pawl ring, atomic_queue's NIL) take them as is.
//
// Peers are compiled in only when their headers were found at configure time
// (RWBENCH_MPMC_HAVE_* set by bench/CMakeLists.txt).
#pragma once

#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>

#include "common.hpp"
#include "ringwire/queue/mpmc_ring.hpp"
#include "ringwire/queue/mpmc_unordered_ring.hpp"
#include "ringwire/queue/mpsc_queue.hpp"
#include "ringwire/queue/mpsc_ring.hpp"
#include "ringwire/queue/mutex_queue.hpp"

#if RWBENCH_MPMC_HAVE_MOODYCAMEL
#include <concurrentqueue/concurrentqueue.h>
#endif
#if RWBENCH_MPMC_HAVE_BOOST
#include <boost/lockfree/queue.hpp>
#endif
#if RWBENCH_MPMC_HAVE_ATOMIC_QUEUE
#include <atomic_queue/atomic_queue.h>
#endif
#if RWBENCH_MPMC_HAVE_TBB
#include <tbb/concurrent_queue.h>
#endif

namespace rwbench::mpmc {

using Item = std::uint64_t;

// ---- ringwire ----------------------------------------------------------------------

// MpscQueue<T>: Vyukov's node queue with a fixed node pool; try_pop (the
// lock-free flavour) answers busy during a half-done push: a failed try here.
struct MpscQueueA {
  static constexpr const char* kName = "MpscQueue";
  static constexpr bool kMpmc = false, kFifo = true, kPeer = false;
  static constexpr const char* kOrder = "FIFO per producer (linked list, one consumer)";
  ringwire::MpscQueue<Item> q{static_cast<std::uint32_t>(kCapacity)};
  struct Producer {
    Producer(MpscQueueA& a, int) : q(a.q) {}
    bool push(Item v) noexcept { return q.try_push(v); }
    ringwire::MpscQueue<Item>& q;
  };
  struct Consumer {
    Consumer(MpscQueueA& a, int) : q(a.q) {}
    bool pop(Item& v) noexcept {
      const auto st = q.try_pop(v);
      if (st == ringwire::queue::PopStatus::ok) return true;
      busy += st == ringwire::queue::PopStatus::busy;
      return false;
    }
    ringwire::MpscQueue<Item>& q;
    std::uint64_t busy = 0;
  };
  std::uint64_t drain() {
    std::uint64_t n = 0, v = 0;
    for (std::uint64_t i = 0; i < 4 * kCapacity && q.pop_linearizable(v); ++i)
      ++n;
    return n;
  }
};

// MpscRing<T>: producers register an owner slot (identity: pid, tid) outside
// the timed part; the consumer's liveness callback is only asked about a
// stalled claim and says "alive" (these are threads of one process).
struct MpscRingA {
  static constexpr const char* kName = "MpscRing";
  static constexpr bool kMpmc = false, kFifo = true, kPeer = false;
  static constexpr const char* kOrder = "FIFO per producer (positions claimed in order)";
  ringwire::MpscRing<Item> q{kCapacity};
  struct Producer {
    Producer(MpscRingA& a, int) : q(a.q) {
      auto o = q.register_producer(static_cast<std::uint64_t>(::getpid()),
                                   static_cast<std::uint64_t>(::syscall(SYS_gettid)));
      if (!o) throw std::runtime_error("MpscRing: no free producer slot");
      owner = *o;
    }
    ~Producer() { q.unregister_producer(owner); }
    Producer(const Producer&) = delete;
    Producer& operator=(const Producer&) = delete;
    bool push(Item v) noexcept { return q.try_push(owner, v); }
    ringwire::MpscRing<Item>& q;
    std::uint32_t owner = 0;
  };
  struct Consumer {
    Consumer(MpscRingA& a, int) : q(a.q) {}
    bool pop(Item& v) noexcept {
      using S = ringwire::MpscRing<Item>::PopStatus;
      const S st = q.try_pop(v, [](std::uint64_t, std::uint64_t) { return true; });
      if (st == S::ok) return true;
      busy += st == S::busy;
      return false;
    }
    ringwire::MpscRing<Item>& q;
    std::uint64_t busy = 0;
  };
  std::uint64_t drain() {
    Consumer c(*this, 0);
    std::uint64_t n = 0, v = 0;
    for (std::uint64_t i = 0; i < 4 * kCapacity && c.pop(v); ++i)
      ++n;
    return n;
  }
};

template <bool Padded>
struct MpmcRingA {
  static constexpr const char* kName = Padded ? "MpmcRing<padded>" : "MpmcRing<unpadded>";
  static constexpr bool kMpmc = true, kFifo = true, kPeer = false;
  static constexpr const char* kOrder = "FIFO per producer (one ticket order)";
  ringwire::MpmcRing<Item, Padded> q{kCapacity};
  struct Producer {
    Producer(MpmcRingA& a, int) : q(a.q) {}
    bool push(Item v) noexcept { return q.try_push(v); }
    ringwire::MpmcRing<Item, Padded>& q;
  };
  struct Consumer {
    Consumer(MpmcRingA& a, int) : q(a.q) {}
    bool pop(Item& v) noexcept { return q.try_pop(v); }
    ringwire::MpmcRing<Item, Padded>& q;
  };
  std::uint64_t drain() {
    std::uint64_t n = 0, v = 0;
    for (std::uint64_t i = 0; i < 4 * kCapacity && q.try_pop(v); ++i)
      ++n;
    return n;
  }
};

// The Pawl ring: push() (up to kMaxPushTries weak pushes) per attempt; pop()
// looks at most kMaxPopTries + 1 slots. drain() is unsafe_scanning_pop over
// every slot, run after all threads have stopped: it counts stuck items.
struct PawlA {
  static constexpr const char* kName = "MpmcUnorderedRing (Pawl)";
  static constexpr bool kMpmc = true, kFifo = false, kPeer = false;
  static constexpr const char* kOrder = "no order promised";
  ringwire::MpmcUnorderedRing<Item> q{kCapacity};
  struct Producer {
    Producer(PawlA& a, int) : q(a.q) {}
    bool push(Item v) noexcept { return q.push(v); }
    ringwire::MpmcUnorderedRing<Item>& q;
  };
  struct Consumer {
    Consumer(PawlA& a, int) : q(a.q) {}
    bool pop(Item& v) noexcept {
      const std::optional<Item> o = q.pop();
      if (!o) return false;
      v = *o;
      return true;
    }
    ringwire::MpmcUnorderedRing<Item>& q;
  };
  std::uint64_t drain() {
    std::uint64_t cursor = 0, n = 0;
    while (q.unsafe_scanning_pop(&cursor))
      ++n;
    return n;
  }
};

// The baseline: every operation takes the (process-shared, robust) mutex.
struct MutexQueueA {
  static constexpr const char* kName = "MutexQueue";
  static constexpr bool kMpmc = true, kFifo = true, kPeer = false;
  static constexpr const char* kOrder = "FIFO (one lock)";
  ringwire::MutexQueue<Item> q{kCapacity};
  struct Producer {
    Producer(MutexQueueA& a, int) : q(a.q) {}
    bool push(Item v) { return q.try_push(v); }
    ringwire::MutexQueue<Item>& q;
  };
  struct Consumer {
    Consumer(MutexQueueA& a, int) : q(a.q) {}
    bool pop(Item& v) { return q.try_pop(v); }
    ringwire::MutexQueue<Item>& q;
  };
  std::uint64_t drain() {
    std::uint64_t n = 0, v = 0;
    for (std::uint64_t i = 0; i < 4 * kCapacity && q.try_pop(v); ++i)
      ++n;
    return n;
  }
};

// ---- peers -------------------------------------------------------------------------

#if RWBENCH_MPMC_HAVE_MOODYCAMEL
// moodycamel::ConcurrentQueue is unbounded by design; its only bounded mode is
// try_enqueue, which never allocates and fails when the blocks pre-allocated
// by the constructor are all in use. Two configurations:
//
//  * "tokens": one ProducerToken per producer thread, one ConsumerToken per
//    consumer (the README's fastest single-item usage), pool from
//    ConcurrentQueue(4096, producers, 0). Measured at 1P1C only: with two
//    producers the first one can take every block of the pool while the
//    consumer lags, and an explicit (token) producer keeps its blocks for
//    good, so the second producer's try_enqueue fails forever (seen: 0 of
//    250000 pushed in 60 s).
//  * "implicit": no ProducerToken (one implicit producer per thread, which
//    gives emptied blocks back to the shared pool), ConsumerToken per
//    consumer, pool from ConcurrentQueue(4096, 0, producers + 1) (+1: the
//    warm-up thread's producer): ~4096 items in all, shared; all
//    configurations.
//
// Order, from its README: "not linearizable ... they will still come out in
// the order they were put in by any individual producer", a producer being a
// token or an implicit per-thread producer. Here that is each producer thread
// in both configurations, so per-producer FIFO is promised and checked.
// Default traits except the implicit producers' initial block index: 32
// entries (1024 items) by default, and try_enqueue may not grow it, so an
// implicit producer could never hold more than ~1024 items; 128 entries lets
// it reach the ~4096 of the pool, like the explicit (token) producers.
struct MoodycamelTraits : moodycamel::ConcurrentQueueDefaultTraits {
  static const std::size_t IMPLICIT_INITIAL_INDEX_SIZE = 128;
};

template <bool Tokens>
struct MoodycamelA {
  static constexpr const char* kName = Tokens ? "moodycamel (tokens)" : "moodycamel (implicit)";
  static constexpr bool kMpmc = true, kFifo = true, kPeer = true;
  static constexpr int kMaxProducers = Tokens ? 1 : 64;
  static constexpr const char* kOrder =
      "FIFO per producer (token / thread) only; not linearizable, no order across producers";
  moodycamel::ConcurrentQueue<Item, MoodycamelTraits> q;
  explicit MoodycamelA(int producers)
      : q(kCapacity, Tokens ? static_cast<std::size_t>(producers) : 0,
          Tokens ? 0 : static_cast<std::size_t>(producers) + 1) {}
  struct Producer {
    Producer(MoodycamelA& a, int) : q(a.q) {
      if constexpr (Tokens) tok.emplace(a.q);
    }
    bool push(Item v) noexcept {
      if constexpr (Tokens) {
        return q.try_enqueue(*tok, v);
      } else {
        return q.try_enqueue(v);
      }
    }
    moodycamel::ConcurrentQueue<Item, MoodycamelTraits>& q;
    std::optional<moodycamel::ProducerToken> tok;  // "tokens" only: no explicit producer otherwise
  };
  struct Consumer {
    Consumer(MoodycamelA& a, int) : q(a.q), tok(a.q) {}
    bool pop(Item& v) noexcept { return q.try_dequeue(tok, v); }
    moodycamel::ConcurrentQueue<Item, MoodycamelTraits>& q;
    moodycamel::ConsumerToken tok;
  };
  std::uint64_t drain() {
    std::uint64_t n = 0, v = 0;
    for (std::uint64_t i = 0; i < 8 * kCapacity && q.try_dequeue(v); ++i)
      ++n;
    return n;
  }
};
#endif

#if RWBENCH_MPMC_HAVE_BOOST
// Compile-time capacity: boost's fastest queue configuration (array-based
// free list, tagged 16-bit indices, push never allocates). Michael & Scott
// queue: linearizable, hence FIFO per producer.
struct BoostQueueA {
  static constexpr const char* kName = "boost::lockfree::queue";
  static constexpr bool kMpmc = true, kFifo = true, kPeer = true;
  static constexpr const char* kOrder = "FIFO (Michael & Scott, linearizable)";
  boost::lockfree::queue<Item, boost::lockfree::capacity<kCapacity>> q;
  struct Producer {
    Producer(BoostQueueA& a, int) : q(a.q) {}
    bool push(Item v) noexcept { return q.push(v); }
    decltype(BoostQueueA::q)& q;
  };
  struct Consumer {
    Consumer(BoostQueueA& a, int) : q(a.q) {}
    bool pop(Item& v) noexcept { return q.pop(v); }
    decltype(BoostQueueA::q)& q;
  };
  std::uint64_t drain() {
    std::uint64_t n = 0, v = 0;
    for (std::uint64_t i = 0; i < 4 * kCapacity && q.pop(v); ++i)
      ++n;
    return n;
  }
};
#endif

#if RWBENCH_MPMC_HAVE_ATOMIC_QUEUE
// atomic_queue in its MPMC mode (SPSC=false), two rows like the SPSC harness:
// try_push / try_pop, and push / pop ("OptimistAtomicQueue" in its README,
// which calls it the faster one: no full / empty check, each side waits on
// its slot inside the call). For an 8-byte item its fastest queue is
// AtomicQueue<uint64_t> (the element is the atomic; NIL = 0, which
// our items never are), compile-time size, with the library defaults
// MINIMIZE_CONTENTION=true (consecutive slots on different cache lines),
// MAXIMIZE_THROUGHPUT=true, TOTAL_ORDER=false. -DRWBENCH_AQ_MPMC_MINIMIZE_CONTENTION=0
// flips the first; a separate check on the machine in docs/benchmarks.md
// found no difference beyond the noise, so the default stays.
// try_push / try_pop: after try_pop wins its ticket CAS it spins inside the
// library until the producer of that ticket has stored the element.
// Order: its README promises FIFO only in the TOTAL_ORDER mode of push / pop,
// "not the try_ versions"; with try_push a producer that won ticket t + size
// can fill the slot of ticket t while t's producer is stalled, so one
// producer's items can come out of order. Inversions are counted, not judged.
#ifndef RWBENCH_AQ_MPMC_MINIMIZE_CONTENTION
#define RWBENCH_AQ_MPMC_MINIMIZE_CONTENTION 1
#endif
template <bool Optimist>
struct AtomicQueueA {
  static constexpr const char* kName =
      Optimist ? "atomic_queue (push/pop)" : "atomic_queue (try_push/try_pop)";
  static constexpr bool kMpmc = true, kFifo = false, kPeer = true;
  // push / pop wait inside the call: the consumer stops on a sentinel item.
  static constexpr bool kBlocking = Optimist;
  static constexpr const char* kOrder =
      Optimist ? "FIFO promised only with TOTAL_ORDER=true (default false used)"
               : "none promised for try_push / try_pop";
  using Q = atomic_queue::AtomicQueue<Item, kCapacity, Item{0},
                                      RWBENCH_AQ_MPMC_MINIMIZE_CONTENTION != 0, true, false, false>;
  Q q;
  struct Producer {
    Producer(AtomicQueueA& a, int) : q(a.q) {}
    bool push(Item v) noexcept {
      if constexpr (Optimist) {
        q.push(v);
        return true;
      } else {
        return q.try_push(v);
      }
    }
    Q& q;
  };
  struct Consumer {
    Consumer(AtomicQueueA& a, int) : q(a.q) {}
    bool pop(Item& v) noexcept {
      if constexpr (Optimist) {
        v = q.pop();
        return true;
      } else {
        return q.try_pop(v);
      }
    }
    Q& q;
  };
  std::uint64_t drain() {
    std::uint64_t n = 0, v = 0;
    for (std::uint64_t i = 0; i < 4 * kCapacity && q.try_pop(v); ++i)
      ++n;
    return n;
  }
};
#endif

#if RWBENCH_MPMC_HAVE_TBB
// oneTBB's bounded queue, capacity set to 4096; try_push / try_pop never
// block (push / pop would sleep on its monitor). FIFO per producer as seen by
// any one consumer (tickets handed out in one order).
struct TbbQueueA {
  static constexpr const char* kName = "tbb::concurrent_bounded_queue";
  static constexpr bool kMpmc = true, kFifo = true, kPeer = true;
  static constexpr const char* kOrder = "FIFO per producer (tickets)";
  tbb::concurrent_bounded_queue<Item> q;
  TbbQueueA() { q.set_capacity(static_cast<std::ptrdiff_t>(kCapacity)); }
  struct Producer {
    Producer(TbbQueueA& a, int) : q(a.q) {}
    bool push(Item v) { return q.try_push(v); }
    tbb::concurrent_bounded_queue<Item>& q;
  };
  struct Consumer {
    Consumer(TbbQueueA& a, int) : q(a.q) {}
    bool pop(Item& v) { return q.try_pop(v); }
    tbb::concurrent_bounded_queue<Item>& q;
  };
  std::uint64_t drain() {
    std::uint64_t n = 0, v = 0;
    for (std::uint64_t i = 0; i < 4 * kCapacity && q.try_pop(v); ++i)
      ++n;
    return n;
  }
};
#endif

}  // namespace rwbench::mpmc
