// MutexQueue<T>: the honest baseline. The same slot layout as SpscRing, but
// every operation takes a process-shared pthread mutex, and blocking uses two
// process-shared condition variables. It may live in a shared-memory segment.
//
// The mutex is robust: if a process dies holding it, the next locker gets
// EOWNERDEAD, marks it consistent and carries on (the indices are only ever
// stored after the slot copy, so a dead holder leaves them valid). glibc's
// process-shared condition variables have no such recovery: a process killed
// while *waiting* can leave a waiter count behind, which costs spurious
// wake-ups, not correctness, because every wait re-checks its condition and is
// bounded by a timeout.
#pragma once

#include <pthread.h>
#include <time.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <type_traits>

#include "ringwire/core/clock.hpp"
#include "ringwire/core/status.hpp"
#include "ringwire/queue/ring_storage.hpp"

namespace ringwire::queue {

struct MutexQueueControl {
  pthread_mutex_t mutex;
  pthread_cond_t not_empty;
  pthread_cond_t not_full;
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
    if (owned_.get() != nullptr) {
      pthread_cond_destroy(&c_->not_full);
      pthread_cond_destroy(&c_->not_empty);
      pthread_mutex_destroy(&c_->mutex);
    }
  }

  std::uint64_t capacity() const noexcept { return mask_ + 1; }
  MutexQueueControl& control() noexcept { return *c_; }

  bool try_push(const T& item) { return push_n(&item, 1) == 1; }
  bool try_pop(T& out) { return pop_n(&out, 1) == 1; }

  std::size_t push_n(const T* items, std::size_t n) {
    Lock lock(c_);
    return push_locked(items, n);
  }
  std::size_t pop_n(T* out, std::size_t n) {
    Lock lock(c_);
    return pop_locked(out, n);
  }

  // Blocks on the condition variable until there is room or the deadline passes.
  bool push_wait(const T& item, core::Deadline deadline) {
    Lock lock(c_);
    while (used() >= capacity()) {
      if (!lock.wait(&c_->not_full, deadline)) return false;
    }
    push_locked(&item, 1);
    return true;
  }
  bool pop_wait(T& out, core::Deadline deadline) {
    Lock lock(c_);
    while (used() == 0) {
      if (!lock.wait(&c_->not_empty, deadline)) return false;
    }
    pop_locked(&out, 1);
    return true;
  }

  // Drop-and-count policy for the full side.
  bool push_or_drop(const T& item) {
    Lock lock(c_);
    if (push_locked(&item, 1) == 1) return true;
    ++c_->drops;
    return false;
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
    ~Lock() { pthread_mutex_unlock(&c_->mutex); }
    Lock(const Lock&) = delete;
    Lock& operator=(const Lock&) = delete;
    // false on timeout.
    bool wait(pthread_cond_t* cv, core::Deadline deadline) {
      if (deadline.expired()) return false;
      timespec ts;
      ts.tv_sec = static_cast<time_t>(deadline.ns() / 1'000'000'000ull);
      ts.tv_nsec = static_cast<long>(deadline.ns() % 1'000'000'000ull);
      const int rc = pthread_cond_timedwait(cv, &c_->mutex, &ts);
      relock(rc);
      return rc != ETIMEDOUT || !deadline.expired();
    }

   private:
    void relock(int rc) {
      // A holder died: its critical section either finished (indices stored)
      // or had not yet stored them, so the state is valid either way.
      if (rc == EOWNERDEAD) pthread_mutex_consistent(&c_->mutex);
    }
    MutexQueueControl* c_;
  };

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
    if (k > 0) pthread_cond_signal(&c_->not_empty);
    return k;
  }
  std::size_t pop_locked(T* out, std::size_t n) {
    const std::size_t k = static_cast<std::size_t>(std::min<std::uint64_t>(used(), n));
    for (std::size_t i = 0; i < k; ++i)
      out[i] = slots_[(c_->head + i) & mask_];
    c_->head += k;
    if (k > 0) pthread_cond_signal(&c_->not_full);
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
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setpshared(&ca, PTHREAD_PROCESS_SHARED);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);  // deadlines are core::now_ns()
    pthread_cond_init(&c->not_empty, &ca);
    pthread_cond_init(&c->not_full, &ca);
    pthread_condattr_destroy(&ca);
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
