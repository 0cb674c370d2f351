// MutexQueue<T>: the honest baseline. The same slot layout as SpscRing, but
// every operation takes a process-shared pthread mutex. It may live in a
// shared-memory segment.
//
// The mutex is robust: if a process dies holding it, the next locker gets
// EOWNERDEAD, marks it consistent and carries on (the indices are only ever
// stored after the slot copy, so a dead holder leaves them valid).
//
// Blocking does not use pthread condition variables: glibc's process-shared
// condvars keep waiter state that a process killed inside
// pthread_cond_timedwait never gives back, after which pthread_cond_signal
// blocks forever (tests/crash/mutex_queue_peer_death_test shows it). Instead a
// waiter reads a futex sequence word under the mutex, registers itself in a
// waiter count, unlocks and sleeps on the word; the other side bumps the word
// and wakes after its own critical section whenever the count is non-zero.
// The kernel keeps no state for a dead waiter; the worst a killed waiter
// leaves behind is a count that stays non-zero, which costs a wake-up
// syscall per operation, never a hang.
#pragma once

#include <pthread.h>
#include <time.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <type_traits>

#include "ringwire/core/clock.hpp"
#include "ringwire/core/futex.hpp"
#include "ringwire/core/status.hpp"
#include "ringwire/queue/ring_storage.hpp"

namespace ringwire::queue {

struct MutexQueueControl {
  pthread_mutex_t mutex;
  std::atomic<std::uint32_t> not_empty_seq;  // futex word: bumped after a push
  std::atomic<std::uint32_t> empty_waiters;  // consumers registered to sleep on it
  std::atomic<std::uint32_t> not_full_seq;   // futex word: bumped after a pop
  std::atomic<std::uint32_t> full_waiters;
  std::uint64_t head;
  std::uint64_t tail;
  std::uint64_t capacity;
  std::uint64_t element_size;
  std::uint64_t drops;
};
static_assert(std::is_standard_layout_v<MutexQueueControl>);

template <class T>
class MutexQueue {
  static_assert(std::is_trivially_copyable_v<T>, "slots are copied as raw bytes");

 public:
  using value_type = T;

  static constexpr std::size_t bytes_for(std::uint64_t capacity) noexcept {
    return ring_bytes<MutexQueueControl, T>(capacity);
  }

  explicit MutexQueue(std::uint64_t capacity) {
    if (auto st = check_capacity(capacity); !st) throw std::invalid_argument(st.message());
    owned_ = OwnedBytes(bytes_for(capacity));
    if (auto st = init_at(owned_.get(), capacity); !st) throw std::runtime_error(st.to_string());
  }

  static core::Result<MutexQueue> create_in(void* mem, std::size_t bytes, std::uint64_t capacity) {
    if (auto st = check_capacity(capacity); !st) return st;
    if (bytes < bytes_for(capacity)) {
      return core::Result<MutexQueue>(core::Errc::geometry_mismatch,
                                      "region too small for a mutex queue of this capacity");
    }
    MutexQueue q;
    if (auto st = q.init_at(mem, capacity); !st) return st;
    return q;
  }

  static core::Result<MutexQueue> attach(void* mem, std::size_t bytes) {
    if (bytes < sizeof(MutexQueueControl)) {
      return core::Result<MutexQueue>(core::Errc::geometry_mismatch,
                                      "region too small for a queue");
    }
    auto* c = static_cast<MutexQueueControl*>(mem);
    const std::uint64_t cap = c->capacity;
    if (!check_capacity(cap) || c->element_size != sizeof(T) || bytes_for(cap) > bytes) {
      return core::Result<MutexQueue>(core::Errc::geometry_mismatch,
                                      "mutex queue header geometry does not match");
    }
    MutexQueue q;
    q.bind(mem, cap);
    return q;
  }

  MutexQueue(MutexQueue&&) noexcept = default;
  MutexQueue& operator=(MutexQueue&&) noexcept = default;
  ~MutexQueue() {
    // Only the in-process owner tears the primitives down; a segment's owner
    // simply unmaps (other processes may still hold them).
    if (owned_.get() != nullptr) pthread_mutex_destroy(&c_->mutex);
  }

  std::uint64_t capacity() const noexcept { return mask_ + 1; }
  MutexQueueControl& control() noexcept { return *c_; }

  bool try_push(const T& item) { return push_n(&item, 1) == 1; }
  bool try_pop(T& out) { return pop_n(&out, 1) == 1; }

  std::size_t push_n(const T* items, std::size_t n) {
    std::size_t k;
    {
      Lock lock(c_);
      k = push_locked(items, n);
    }
    if (k > 0) wake(c_->not_empty_seq, c_->empty_waiters);
    return k;
  }
  std::size_t pop_n(T* out, std::size_t n) {
    std::size_t k;
    {
      Lock lock(c_);
      k = pop_locked(out, n);
    }
    if (k > 0) wake(c_->not_full_seq, c_->full_waiters);
    return k;
  }

  // Sleeps until there is room or the deadline passes; false on timeout.
  bool push_wait(const T& item, core::Deadline deadline) {
    return wait_until(
        deadline, c_->not_full_seq, c_->full_waiters, [&] { return push_locked(&item, 1) == 1; },
        [&] { wake(c_->not_empty_seq, c_->empty_waiters); });
  }
  bool pop_wait(T& out, core::Deadline deadline) {
    return wait_until(
        deadline, c_->not_empty_seq, c_->empty_waiters, [&] { return pop_locked(&out, 1) == 1; },
        [&] { wake(c_->not_full_seq, c_->full_waiters); });
  }

  // Drop-and-count policy for the full side.
  bool push_or_drop(const T& item) {
    {
      Lock lock(c_);
      if (push_locked(&item, 1) != 1) {
        ++c_->drops;
        return false;
      }
    }
    wake(c_->not_empty_seq, c_->empty_waiters);
    return true;
  }
  std::uint64_t drops() {
    Lock lock(c_);
    return c_->drops;
  }

  std::uint64_t size() {
    Lock lock(c_);
    return used();
  }

 private:
  MutexQueue() = default;

  class Lock {
   public:
    explicit Lock(MutexQueueControl* c) : c_(c) { relock(pthread_mutex_lock(&c_->mutex)); }
    ~Lock() { unlock(); }
    Lock(const Lock&) = delete;
    Lock& operator=(const Lock&) = delete;
    void unlock() {
      if (held_) pthread_mutex_unlock(&c_->mutex);
      held_ = false;
    }

   private:
    void relock(int rc) {
      // A holder died: its critical section either finished (indices stored)
      // or had not yet stored them, so the state is valid either way.
      if (rc == EOWNERDEAD) pthread_mutex_consistent(&c_->mutex);
    }
    MutexQueueControl* c_;
    bool held_ = true;
  };

  // `attempt` runs under the mutex. Between attempts we sleep on `seq`, which
  // was read under the same mutex: a change made after our attempt bumps it,
  // so futex_wait returns at once instead of missing that change.
  template <class Attempt, class After>
  bool wait_until(core::Deadline deadline, std::atomic<std::uint32_t>& seq,
                  std::atomic<std::uint32_t>& waiters, Attempt attempt, After after) {
    for (;;) {
      std::uint32_t observed;
      {
        Lock lock(c_);
        if (attempt()) {
          lock.unlock();
          after();
          return true;
        }
        observed = seq.load(std::memory_order_relaxed);
        if (deadline.expired()) return false;  // checked after a last attempt
        waiters.fetch_add(1, std::memory_order_relaxed);
      }
      core::futex_wait(&seq, observed, deadline.remaining_ns(core::now_ns()));
      waiters.fetch_sub(1, std::memory_order_relaxed);
    }
  }

  // Called after our critical section. The waiter's registration happened
  // under the mutex before our lock, so a waiter we must wake is visible here.
  static void wake(std::atomic<std::uint32_t>& seq, std::atomic<std::uint32_t>& waiters) {
    if (waiters.load(std::memory_order_relaxed) == 0) return;
    seq.fetch_add(1, std::memory_order_release);
    core::futex_wake(&seq, INT32_MAX);
  }

  // Untrusted indices: a tail behind head counts as empty, and never more
  // than one ring's worth of items is counted.
  std::uint64_t used() const noexcept {
    return c_->tail >= c_->head ? std::min(c_->tail - c_->head, capacity()) : 0;
  }

  std::size_t push_locked(const T* items, std::size_t n) {
    const std::uint64_t free = capacity() - used();
    const std::size_t k = static_cast<std::size_t>(std::min<std::uint64_t>(free, n));
    for (std::size_t i = 0; i < k; ++i)
      slots_[(c_->tail + i) & mask_] = items[i];
    c_->tail += k;
    return k;
  }
  std::size_t pop_locked(T* out, std::size_t n) {
    const std::size_t k = static_cast<std::size_t>(std::min<std::uint64_t>(used(), n));
    for (std::size_t i = 0; i < k; ++i)
      out[i] = slots_[(c_->head + i) & mask_];
    c_->head += k;
    return k;
  }

  core::Status init_at(void* mem, std::uint64_t capacity) {
    auto* c = static_cast<MutexQueueControl*>(mem);
    std::memset(static_cast<void*>(c), 0, sizeof(*c));
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
    int rc = pthread_mutex_init(&c->mutex, &ma);
    pthread_mutexattr_destroy(&ma);
    if (rc != 0)
      return {core::Errc::system_error, std::string("pthread_mutex_init: ") + strerror(rc)};
    c->capacity = capacity;
    c->element_size = sizeof(T);
    bind(mem, capacity);
    return {};
  }
  void bind(void* mem, std::uint64_t capacity) noexcept {
    c_ = static_cast<MutexQueueControl*>(mem);
    slots_ =
        reinterpret_cast<T*>(static_cast<std::byte*>(mem) + slots_offset<MutexQueueControl, T>());
    mask_ = capacity - 1;
  }

  MutexQueueControl* c_ = nullptr;
  T* slots_ = nullptr;
  std::uint64_t mask_ = 0;
  OwnedBytes owned_;
};

}  // namespace ringwire::queue

namespace ringwire {
using queue::MutexQueue;
}
