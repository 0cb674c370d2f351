// MpmcRing<T>: a bounded FIFO multi-producer / multi-consumer ring after
// Dmitry Vyukov's design: every cell carries a sequence number that says
// whose turn it is.
//
// Invariants:
//  * `enqueue_pos` / `dequeue_pos` are 64-bit tickets that only grow; ticket
//    p uses cell p & mask.
//  * Cell c's `seq` is, for the lap that ticket p belongs to:
//      seq == p          the cell is free for the producer holding ticket p
//      seq == p + 1      it holds the item of ticket p, for that consumer
//      seq == p + cap    the consumer of ticket p is done; free for p + cap
//  * A producer claims ticket p with a CAS on enqueue_pos only after seeing
//    seq == p, so it never waits for a slow consumer of the previous lap
//    inside the critical part; it fails fast ("full") when seq < p.
//  * Capacity >= 2: with one cell, p + 1 would mean both "full for p" and
//    "free for p + 1".
//  * Order: tickets are handed out in one total order and each is consumed
//    once, so items from one producer come out in the order it pushed them
//    (FIFO per producer). Progress is not lock-free in the strict sense: a
//    producer preempted between its ticket CAS and its seq store makes the
//    consumer of that ticket report "empty" (try_pop returns false) even if
//    later tickets are already written, until it resumes. Across processes,
//    a producer killed in that window wedges that cell for good: use
//    MpscRing (mpsc_ring.hpp) where producers may die.
// No pointers inside: the ring can live in a shared-memory segment. The mask
// is kept in the handle; `seq` values read from shared memory only decide
// "try again" or "full/empty", never an address.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <type_traits>

#include "ringwire/core/cache_line.hpp"
#include "ringwire/core/status.hpp"
#include "ringwire/queue/ring_storage.hpp"

namespace ringwire::queue {

struct MpmcControl {
  alignas(core::kFalseSharingRange) std::atomic<std::uint64_t> enqueue_pos{0};
  alignas(core::kFalseSharingRange) std::atomic<std::uint64_t> dequeue_pos{0};
  alignas(core::kFalseSharingRange) std::uint64_t capacity = 0;
  std::uint64_t cell_size = 0;
};
static_assert(std::is_standard_layout_v<MpmcControl>);
static_assert(sizeof(MpmcControl) == 3 * core::kFalseSharingRange);

// Padded cells sit on their own cache line: neighbouring producers and
// consumers stop invalidating each other's cells, at the cost of memory (and
// of prefetching when items are small and traffic is one-directional). Both
// are measured in bench/.
template <class T, bool Padded>
struct MpmcCell;
template <class T>
struct alignas(core::kCacheLine) MpmcCell<T, true> {
  std::atomic<std::uint64_t> seq;
  T value;
};
template <class T>
struct MpmcCell<T, false> {
  std::atomic<std::uint64_t> seq;
  T value;
};

template <class T, bool Padded = true>
class MpmcRing {
  static_assert(std::is_trivially_copyable_v<T>, "cells are shared raw bytes");

 public:
  using value_type = T;
  using Cell = MpmcCell<T, Padded>;

  static constexpr std::size_t bytes_for(std::uint64_t capacity) noexcept {
    return ring_bytes<MpmcControl, Cell>(capacity);
  }

  explicit MpmcRing(std::uint64_t capacity) {
    if (auto st = check_mpmc_capacity(capacity); !st) throw std::invalid_argument(st.message());
    owned_ = OwnedBytes(bytes_for(capacity));
    init_at(owned_.get(), capacity);
  }

  static core::Result<MpmcRing> create_in(void* mem, std::size_t bytes, std::uint64_t capacity) {
    if (auto st = check_mpmc_capacity(capacity); !st) return st;
    if (bytes < bytes_for(capacity)) {
      return core::Result<MpmcRing>(core::Errc::geometry_mismatch, "region too small for ring");
    }
    MpmcRing r;
    r.init_at(mem, capacity);
    return r;
  }

  static core::Result<MpmcRing> attach(void* mem, std::size_t bytes) {
    if (bytes < sizeof(MpmcControl)) {
      return core::Result<MpmcRing>(core::Errc::geometry_mismatch, "region too small for a ring");
    }
    auto* c = static_cast<MpmcControl*>(mem);
    const std::uint64_t cap = c->capacity;
    if (!check_mpmc_capacity(cap) || c->cell_size != sizeof(Cell) || bytes_for(cap) > bytes) {
      return core::Result<MpmcRing>(core::Errc::geometry_mismatch,
                                    "MPMC ring header geometry does not match");
    }
    MpmcRing r;
    r.bind(mem, cap);
    return r;
  }

  MpmcRing(MpmcRing&&) noexcept = default;
  MpmcRing& operator=(MpmcRing&&) noexcept = default;

  std::uint64_t capacity() const noexcept { return mask_ + 1; }

  // Any thread. False when full.
  bool try_push(const T& item) noexcept {
    // relaxed: the ticket is only a hint until the CAS; the cell's seq
    // (acquire) is what tells us the cell is free.
    std::uint64_t pos = c_->enqueue_pos.load(std::memory_order_relaxed);
    for (;;) {
      Cell& cell = cells_[pos & mask_];
      // acquire: the consumer that freed this cell finished reading it.
      const std::uint64_t seq = cell.seq.load(std::memory_order_acquire);
      const auto diff = static_cast<std::int64_t>(seq - pos);
      if (diff == 0) {
        // relaxed CAS: the cell's seq store below publishes the data; the
        // ticket counter itself carries no data.
        if (c_->enqueue_pos.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
          cell.value = item;
          // release: the item is visible to the consumer that sees pos + 1.
          cell.seq.store(pos + 1, std::memory_order_release);
          return true;
        }
        // CAS failure reloaded pos; try the new ticket.
      } else if (diff < 0) {
        return false;  // the cell still holds last lap's item: full
      } else {
        pos = c_->enqueue_pos.load(std::memory_order_relaxed);  // another producer won
      }
    }
  }

  // Any thread. False when empty.
  bool try_pop(T& out) noexcept {
    std::uint64_t pos = c_->dequeue_pos.load(std::memory_order_relaxed);
    for (;;) {
      Cell& cell = cells_[pos & mask_];
      // acquire: pairs with the producer's release of pos + 1.
      const std::uint64_t seq = cell.seq.load(std::memory_order_acquire);
      const auto diff = static_cast<std::int64_t>(seq - (pos + 1));
      if (diff == 0) {
        if (c_->dequeue_pos.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
          out = cell.value;
          // release: our read of the value completes before the producer of
          // the next lap (pos + capacity) may overwrite it.
          cell.seq.store(pos + mask_ + 1, std::memory_order_release);
          return true;
        }
      } else if (diff < 0) {
        return false;  // not yet written: empty
      } else {
        pos = c_->dequeue_pos.load(std::memory_order_relaxed);
      }
    }
  }

  std::uint64_t size_approx() const noexcept {
    const std::uint64_t e = c_->enqueue_pos.load(std::memory_order_acquire);
    const std::uint64_t d = c_->dequeue_pos.load(std::memory_order_acquire);
    return e > d ? std::min(e - d, capacity()) : 0;
  }

 private:
  MpmcRing() = default;

  // Capacity 1 is refused: there "holds ticket p's item" (seq == p + 1) and
  // "free for ticket p + 1" (seq == (p + 1) + 0) are the same number, so a
  // second push would be accepted over the first item and its consumer would
  // then wait for a seq that never comes.
  static core::Status check_mpmc_capacity(std::uint64_t capacity) {
    if (capacity == 1) {
      return {core::Errc::invalid_argument,
              "MpmcRing needs a capacity of at least 2 (a power of two), got 1"};
    }
    return check_capacity(capacity);
  }

  void init_at(void* mem, std::uint64_t capacity) {
    auto* c = new (mem) MpmcControl();
    c->capacity = capacity;
    c->cell_size = sizeof(Cell);
    bind(mem, capacity);
    for (std::uint64_t i = 0; i < capacity; ++i) {
      new (&cells_[i].seq) std::atomic<std::uint64_t>(i);
      std::memset(static_cast<void*>(&cells_[i].value), 0, sizeof(T));
    }
  }
  void bind(void* mem, std::uint64_t capacity) noexcept {
    c_ = static_cast<MpmcControl*>(mem);
    cells_ =
        reinterpret_cast<Cell*>(static_cast<std::byte*>(mem) + slots_offset<MpmcControl, Cell>());
    mask_ = capacity - 1;
  }

  MpmcControl* c_ = nullptr;
  Cell* cells_ = nullptr;
  std::uint64_t mask_ = 0;
  OwnedBytes owned_;
};

}  // namespace ringwire::queue

namespace ringwire {
using queue::MpmcRing;
}
