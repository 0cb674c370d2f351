// MpmcUnorderedRing<T>: the "Pawl" multi-producer / multi-consumer ring. It
// gives up FIFO order to make every operation a handful of fetch_adds and one
// atomic exchange or CAS on a slot.
//
// Four 64-bit counters, each on its own cache-line pair:
//   write_pawl   admission for producers: items pushed or being pushed
//   write_front  slot tickets for producers (next slot to try)
//   read_pawl    admission for consumers: items popped or being popped
//   read_front   slot tickets for consumers (next slot to look at)
// The pawls decide *whether* to go on (is there room / is there an item?);
// the fronts decide *where*. A slot holds a 64-bit word, zero = empty.
//
// Safety rests on the slots alone: an item enters a slot only through a
// successful CAS(0 -> item) and leaves it only through exchange(slot, 0),
// which returns it to exactly one caller. Whatever the counters say, nothing
// is lost and nothing is delivered twice. (The seed's Python "clean room"
// version checks and sets the slot in two steps, so two producers can both
// see it empty and one item overwrites the other; here it is one CAS.)
//
// No FIFO: producers land in slots in ticket order, but consumers may pass a
// slot before its producer has written it.
//
// Sticking: consumer C takes ticket s and finds slot s still empty (producer
// P took ticket s but has not done its CAS yet); C moves on to s+1 ... and P
// then writes slot s *behind* read_front. That item stays put until
// read_front comes round again, one full lap (capacity slot visits) later. On
// a busy ring that happens soon; on an almost idle ring it may never happen:
// pop() keeps reporting empty while the item sits there. A CAS failing on a
// slot that still holds a stuck item makes that push fail (weak_push) or try
// another slot (stubborn_push). unsafe_scanning_pop() recovers stuck items.
#pragma once

#include <atomic>
#include <bit>
#include <cassert>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <type_traits>

#include "ringwire/core/cache_line.hpp"
#include "ringwire/core/cpu.hpp"
#include "ringwire/queue/ring_storage.hpp"

namespace ringwire::queue {

// T is a pointer or an integral type of at most 64 bits; the zero value
// (nullptr, 0) marks an empty slot and cannot be pushed.
template <class T>
class MpmcUnorderedRing {
  static_assert((std::is_pointer_v<T> || std::is_integral_v<T>)&&sizeof(T) <= 8,
                "slots hold one 64-bit word");

 public:
  static constexpr int kMaxPushTries = 4;
  static constexpr int kMaxPopTries = 4;

  explicit MpmcUnorderedRing(std::uint64_t capacity)
      : slots_(new std::atomic<std::uint64_t>[checked(capacity)]), mask_(capacity - 1) {
    for (std::uint64_t i = 0; i < capacity; ++i)
      slots_[i].store(0, std::memory_order_relaxed);
  }

  std::uint64_t capacity() const noexcept { return mask_ + 1; }

  // One attempt at one slot. False when the ring looks full or the chosen slot
  // still holds a stuck item. Any thread.
  bool weak_push(T item) noexcept {
    const std::uint64_t word = to_word(item);
    assert(word != 0 && "the zero value marks an empty slot");
    // acq_rel on the pawls: they are the admission handshake between
    // producers and consumers; the item itself travels through the slot.
    const std::uint64_t pawl = write_pawl_.fetch_add(1, std::memory_order_acq_rel);
    // Signed: consumers that skipped empty slots can push read_front ahead
    // of the items admitted so far; that means "room", not 2^64 items.
    const auto used = static_cast<std::int64_t>(pawl - read_front_.load(std::memory_order_acquire));
    if (used >= static_cast<std::int64_t>(capacity())) {
      write_pawl_.fetch_sub(1, std::memory_order_acq_rel);
      return false;
    }
    const std::uint64_t ticket = write_front_.fetch_add(1, std::memory_order_relaxed);
    std::uint64_t expected = 0;
    // release: whatever `item` points to is visible to the consumer whose
    // exchange (acquire) takes it.
    if (slots_[ticket & mask_].compare_exchange_strong(expected, word, std::memory_order_release,
                                                       std::memory_order_relaxed)) {
      return true;
    }
    write_pawl_.fetch_sub(1, std::memory_order_acq_rel);
    return false;
  }

  // Up to kMaxPushTries weak pushes.
  bool push(T item) noexcept {
    for (int i = 0; i < kMaxPushTries; ++i) {
      if (weak_push(item)) return true;
    }
    return false;
  }

  // Retries with backoff until the item is in. Spins forever on a ring that
  // stays full: only for callers that know consumers are running.
  void stubborn_push(T item) noexcept {
    for (core::Backoff backoff(1024); !weak_push(item); backoff.pause()) {
    }
  }

  // Bounded: at most kMaxPopTries + 1 slots are looked at. Empty means "no
  // item found", which may include items stuck behind read_front. Any thread.
  std::optional<T> pop() noexcept {
    ConsumerScope scope(*this);
    const std::uint64_t pawl = read_pawl_.fetch_add(1, std::memory_order_acq_rel);
    if (pawl >= write_pawl_.load(std::memory_order_acquire)) {
      read_pawl_.fetch_sub(1, std::memory_order_acq_rel);
      return std::nullopt;  // every admitted item already has a consumer
    }
    for (int i = 0; i <= kMaxPopTries; ++i) {
      const std::uint64_t ticket = read_front_.fetch_add(1, std::memory_order_relaxed);
      // acquire: pairs with the producer's release CAS.
      const std::uint64_t word = slots_[ticket & mask_].exchange(0, std::memory_order_acquire);
      if (word != 0) return from_word(word);
    }
    read_pawl_.fetch_sub(1, std::memory_order_acq_rel);
    return std::nullopt;
  }

  // Scans every slot from `*cursor` (start at 0) and returns the first item
  // found, advancing the cursor; nullopt once the cursor reaches capacity.
  // The call that finds the lap finished (returns nullopt at capacity) also
  // brings read_front up to write_front, so a ring drained by a scan takes
  // `capacity` items again.
  //
  // Precondition: no other consumer runs (no pop(), no other scan) while it
  // is called; producers may. Debug builds assert it. Why: the scan takes
  // items without a consumer admission ticket, then books one per item, so
  // read_pawl stays equal to the items popped. A concurrent pop() could be
  // admitted for an item the scan is taking and back out, which is harmless,
  // but the caller's reason to scan ("the consumers are idle, so whatever is
  // left is stuck") no longer holds and the recovery would race them for no
  // gain. Typical use: a consumer that got empty from pop() while it knows
  // items are outstanding, or a shutdown drain.
  std::optional<T> unsafe_scanning_pop(std::uint64_t* cursor) noexcept {
#ifndef NDEBUG
    const int active = consumers_.fetch_add(kScanner, std::memory_order_acq_rel);
    assert(active == 0 && "unsafe_scanning_pop needs exclusive consumer access");
#endif
    std::optional<T> out;
    while (*cursor < capacity()) {
      const std::uint64_t word = slots_[(*cursor)++].exchange(0, std::memory_order_acquire);
      if (word != 0) {
        read_pawl_.fetch_add(1, std::memory_order_acq_rel);
        out = from_word(word);
        break;
      }
    }
    // A completed lap has visited every slot, so every ticket handed to a
    // producer so far is behind us: move read_front up to write_front.
    // Without this, push admission (write_pawl - read_front) would go on
    // counting the scanned items as present and a ring drained by a scan
    // would refuse every push. Only forward, by CAS, in case the caller
    // broke the precondition. An item a producer writes later under an
    // older ticket sticks, as documented above, and the next scan takes it.
    if (*cursor == capacity() && !out) {
      std::uint64_t front = read_front_.load(std::memory_order_relaxed);
      const std::uint64_t target = write_front_.load(std::memory_order_acquire);
      while (static_cast<std::int64_t>(target - front) > 0 &&
             !read_front_.compare_exchange_weak(front, target, std::memory_order_acq_rel)) {
      }
    }
#ifndef NDEBUG
    consumers_.fetch_sub(kScanner, std::memory_order_acq_rel);
#endif
    return out;
  }

  // Items admitted and not yet popped (approximate while others run).
  std::uint64_t size_approx() const noexcept {
    const std::uint64_t w = write_pawl_.load(std::memory_order_acquire);
    const std::uint64_t r = read_pawl_.load(std::memory_order_acquire);
    return w > r ? w - r : 0;
  }

 private:
  static std::uint64_t to_word(T v) noexcept {
    if constexpr (std::is_pointer_v<T>) {
      return reinterpret_cast<std::uint64_t>(v);
    } else {
      return static_cast<std::uint64_t>(v);
    }
  }
  static T from_word(std::uint64_t w) noexcept {
    if constexpr (std::is_pointer_v<T>) {
      return reinterpret_cast<T>(w);
    } else {
      return static_cast<T>(w);
    }
  }

  static std::uint64_t checked(std::uint64_t capacity) {
    if (auto st = check_capacity(capacity); !st) throw std::invalid_argument(st.message());
    return capacity;
  }

  // Debug-only bookkeeping for the scanning precondition.
  static constexpr int kScanner = 1 << 20;
  struct ConsumerScope {
#ifndef NDEBUG
    explicit ConsumerScope(MpmcUnorderedRing& r) : ring(r) {
      const int prior = ring.consumers_.fetch_add(1, std::memory_order_acq_rel);
      assert(prior < kScanner && "pop() while unsafe_scanning_pop runs");
    }
    ~ConsumerScope() {
      ring.consumers_.fetch_sub(1, std::memory_order_acq_rel);
    }
    MpmcUnorderedRing& ring;
#else
    explicit ConsumerScope(MpmcUnorderedRing&) {}
#endif
  };

  alignas(core::kFalseSharingRange) std::atomic<std::uint64_t> write_pawl_{0};
  alignas(core::kFalseSharingRange) std::atomic<std::uint64_t> write_front_{0};
  alignas(core::kFalseSharingRange) std::atomic<std::uint64_t> read_pawl_{0};
  alignas(core::kFalseSharingRange) std::atomic<std::uint64_t> read_front_{0};
  alignas(core::kFalseSharingRange) std::unique_ptr<std::atomic<std::uint64_t>[]> slots_;
  std::uint64_t mask_;
#ifndef NDEBUG
  std::atomic<int> consumers_{0};
#endif
};

}  // namespace ringwire::queue

namespace ringwire {
using queue::MpmcUnorderedRing;
}
