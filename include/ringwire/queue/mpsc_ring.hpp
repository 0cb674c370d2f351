// MpscRing<T>: a bounded multi-producer / single-consumer ring meant for
// shared memory between processes, that survives a producer being killed at
// any instruction.
//
// Why not MpmcRing with one consumer: there a producer takes its ticket with
// one CAS and marks the cell written with a later store. Killed in between,
// it leaves a cell that will never be written, and the consumer, which must
// take cells in order, waits on it forever.
//
// Here the claim *is* the cell: each cell holds one 64-bit word
//   [ position : 56 | state : 2 | owner : 6 ]
// and a producer claims position p by CAS(cell: {p, free} -> {p, claimed, me}).
// The cell now says who holds it, atomically with the claim, so the consumer
// can tell "a live producer is writing" from "its writer died": it asks the
// caller's liveness check about the owner's registration and, if dead,
// abandons the cell (counted) and moves on. A producer cannot be half-way
// between claiming and being identified.
//
// States per position p (cell p & mask):
//   {p, free}        ready for the producer that gets ticket p
//   {p, claimed, o}  producer o is writing the value
//   {p, ready, o}    value written, consumer may take it
//   -> the consumer releases it as {p + capacity, free}
// `enqueue_pos` is only a hint of the next free position: the producer that
// claims p, or any producer that finds p claimed, moves it from p to p + 1
// with a CAS (helping), so a producer dying right after its claim cannot
// stall the others either.
//
// Owners are registered in `producers[]` (up to 64) with an opaque 64-bit
// identity the caller chooses (the shm layer stores PID and start time). A
// dead owner's slot is only freed for reuse once the consumer has passed
// every position that owner could have claimed, so a claim is never
// attributed to the wrong process.
//
// Positions are compared modulo 2^56 (a lap detector, not an address); the
// mask lives in the handle. Nothing read from the shared words is used as an
// index without masking.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <type_traits>

#include "ringwire/core/cache_line.hpp"
#include "ringwire/core/status.hpp"
#include "ringwire/queue/ring_storage.hpp"

namespace ringwire::queue {

inline constexpr std::uint32_t kMpscMaxProducers = 64;

struct MpscProducerSlot {
  // 0 = free, 3 = registering, 1 = in use, 2 = dead (waiting for the
  // consumer to pass the positions it may have claimed)
  std::atomic<std::uint32_t> state{0};
  std::uint32_t reserved = 0;
  std::atomic<std::uint64_t> identity_a{0};  // caller-defined, e.g. PID
  std::atomic<std::uint64_t> identity_b{0};  // caller-defined, e.g. start time
  std::atomic<std::uint64_t> reap_after{0};  // dead: free once consumed past this position
};

struct MpscRingControl {
  alignas(core::kFalseSharingRange) std::atomic<std::uint64_t> enqueue_pos{0};
  alignas(core::kFalseSharingRange) std::atomic<std::uint64_t> dequeue_pos{0};
  std::atomic<std::uint64_t> abandoned{0};  // cells skipped because their writer died
  alignas(core::kFalseSharingRange) std::uint64_t capacity = 0;
  std::uint64_t cell_size = 0;
  MpscProducerSlot producers[kMpscMaxProducers];
};
static_assert(std::is_standard_layout_v<MpscRingControl>);

template <class T>
class MpscRing {
  static_assert(std::is_trivially_copyable_v<T>, "cells are shared raw bytes");

 public:
  struct Cell {
    std::atomic<std::uint64_t> word;
    T value;
  };
  enum class PopStatus { ok, empty, busy };

  static constexpr std::size_t bytes_for(std::uint64_t capacity) noexcept {
    return ring_bytes<MpscRingControl, Cell>(capacity);
  }

  explicit MpscRing(std::uint64_t capacity) {
    if (auto st = check_capacity(capacity); !st) throw std::invalid_argument(st.message());
    owned_ = OwnedBytes(bytes_for(capacity));
    init_at(owned_.get(), capacity);
  }
  static core::Result<MpscRing> create_in(void* mem, std::size_t bytes, std::uint64_t capacity) {
    if (auto st = check_capacity(capacity); !st) return st;
    if (bytes < bytes_for(capacity)) {
      return core::Result<MpscRing>(core::Errc::geometry_mismatch, "region too small for ring");
    }
    MpscRing r;
    r.init_at(mem, capacity);
    return r;
  }
  static core::Result<MpscRing> attach(void* mem, std::size_t bytes) {
    if (bytes < sizeof(MpscRingControl)) {
      return core::Result<MpscRing>(core::Errc::geometry_mismatch, "region too small for a ring");
    }
    auto* c = static_cast<MpscRingControl*>(mem);
    const std::uint64_t cap = c->capacity;
    if (!check_capacity(cap) || cap >= (kPosMask >> 1) || c->cell_size != sizeof(Cell) ||
        bytes_for(cap) > bytes) {
      return core::Result<MpscRing>(core::Errc::geometry_mismatch,
                                    "MPSC ring header geometry does not match");
    }
    MpscRing r;
    r.bind(mem, cap);
    return r;
  }
  MpscRing(MpscRing&&) noexcept = default;
  MpscRing& operator=(MpscRing&&) noexcept = default;

  std::uint64_t capacity() const noexcept { return mask_ + 1; }
  MpscRingControl& control() noexcept { return *c_; }

  // ---- producers ----------------------------------------------------------------

  // Takes a free owner slot for a new producer; nullopt when all 64 are used.
  std::optional<std::uint32_t> register_producer(std::uint64_t id_a, std::uint64_t id_b) noexcept {
    for (std::uint32_t i = 0; i < kMpscMaxProducers; ++i) {
      auto& s = c_->producers[i];
      std::uint32_t expected = 0;
      // 3 = registering: nobody judges the slot's liveness until the identity
      // is in place, so a half-registered producer is never declared dead.
      if (s.state.compare_exchange_strong(expected, 3, std::memory_order_acq_rel)) {
        s.identity_a.store(id_a, std::memory_order_relaxed);
        s.identity_b.store(id_b, std::memory_order_relaxed);
        s.state.store(1, std::memory_order_release);
        return i;
      }
    }
    return std::nullopt;
  }
  // A producer leaving cleanly gives its slot back (all its claims are ready).
  void unregister_producer(std::uint32_t owner) noexcept {
    if (owner < kMpscMaxProducers) c_->producers[owner].state.store(0, std::memory_order_release);
  }

  // Any registered producer. False when full.
  bool try_push(std::uint32_t owner, const T& item) noexcept {
    for (;;) {
      const std::uint64_t pos = c_->enqueue_pos.load(std::memory_order_acquire);
      Cell& cell = cells_[pos & mask_];
      std::uint64_t w = cell.word.load(std::memory_order_acquire);
      if (w == make(pos, kFree, 0)) {
        // acquire on success: the consumer's read of the previous lap's value
        // (released with the free word) is complete before we overwrite it.
        if (cell.word.compare_exchange_strong(w, make(pos, kClaimed, owner),
                                              std::memory_order_acquire,
                                              std::memory_order_relaxed)) {
          advance(pos);
          cell.value = item;
          // release: the value is visible to the consumer that sees "ready".
          cell.word.store(make(pos, kReady, owner), std::memory_order_release);
          return true;
        }
        continue;  // another producer claimed p first
      }
      const std::uint64_t at = pos_of(w);
      if (at == (pos & kPosMask) && state_of(w) != kFree) {
        advance(pos);  // p is taken: help move the hint on, then retry
      } else if (((pos - capacity()) & kPosMask) == at && state_of(w) != kFree) {
        return false;  // the cell still holds the previous lap's item: full
      }
      // Otherwise our view of enqueue_pos was stale; reload.
    }
  }

  // ---- the consumer --------------------------------------------------------------

  // `alive(identity_a, identity_b)` is asked only when the next cell has been
  // claimed and is not yet ready: it must say whether the process registered
  // under that identity still exists. A dead owner's cell is abandoned
  // (counted in control().abandoned) and the next one is tried. A claim whose
  // owner slot is not registered (only a corrupt peer can make one) counts as
  // dead too.
  template <class IdentityAlive>
  PopStatus try_pop(T& out, IdentityAlive&& alive) noexcept {
    for (;;) {
      const std::uint64_t pos = c_->dequeue_pos.load(std::memory_order_relaxed);
      Cell& cell = cells_[pos & mask_];
      const std::uint64_t w = cell.word.load(std::memory_order_acquire);
      if (pos_of(w) != (pos & kPosMask)) return PopStatus::empty;  // not this lap yet / corrupt
      const std::uint32_t st = state_of(w);
      if (st == kFree) return PopStatus::empty;
      if (st == kReady) {
        out = cell.value;
        release_cell(cell, pos);
        return PopStatus::ok;
      }
      // Claimed: being written, or its writer died.
      const std::uint32_t owner = owner_of(w);
      if (slot_alive(owner, alive)) return PopStatus::busy;
      mark_dead(owner);
      // The CAS makes sure we only skip the claim we looked at.
      std::uint64_t expected = w;
      if (cell.word.compare_exchange_strong(expected, make(pos + capacity(), kFree, 0),
                                            std::memory_order_acq_rel)) {
        c_->dequeue_pos.store(pos + 1, std::memory_order_release);
        c_->abandoned.fetch_add(1, std::memory_order_relaxed);
        reap(pos + 1);
      }
    }
  }

  // Checks registered producers with `alive(a, b)` (identity values) and
  // marks the dead ones; call it now and then (e.g. with heartbeats) so the
  // slots of producers that died while not writing are recycled.
  template <class IdentityAlive>
  void check_producers(IdentityAlive&& alive) noexcept {
    for (std::uint32_t i = 0; i < kMpscMaxProducers; ++i) {
      auto& s = c_->producers[i];
      if (s.state.load(std::memory_order_acquire) == 1 && !slot_alive(i, alive)) mark_dead(i);
    }
    reap(c_->dequeue_pos.load(std::memory_order_relaxed));
  }

  std::uint64_t size_approx() const noexcept {
    const std::uint64_t e = c_->enqueue_pos.load(std::memory_order_acquire);
    const std::uint64_t d = c_->dequeue_pos.load(std::memory_order_acquire);
    return e > d ? std::min(e - d, capacity()) : 0;
  }

 private:
  static constexpr std::uint64_t kPosMask = (std::uint64_t{1} << 56) - 1;
  static constexpr std::uint32_t kFree = 0, kClaimed = 1, kReady = 2;

  static constexpr std::uint64_t make(std::uint64_t pos, std::uint32_t state,
                                      std::uint32_t owner) noexcept {
    return ((pos & kPosMask) << 8) | (std::uint64_t{state} << 6) | (owner & 63u);
  }
  static constexpr std::uint64_t pos_of(std::uint64_t w) noexcept { return w >> 8; }
  static constexpr std::uint32_t state_of(std::uint64_t w) noexcept { return (w >> 6) & 3u; }
  static constexpr std::uint32_t owner_of(std::uint64_t w) noexcept { return w & 63u; }

  MpscRing() = default;

  void advance(std::uint64_t pos) noexcept {
    std::uint64_t expected = pos;
    c_->enqueue_pos.compare_exchange_strong(expected, pos + 1, std::memory_order_acq_rel,
                                            std::memory_order_relaxed);
  }

  void release_cell(Cell& cell, std::uint64_t pos) noexcept {
    // release: our read of the value completes before a producer of the next
    // lap (which acquires this word in its CAS) overwrites it.
    cell.word.store(make(pos + capacity(), kFree, 0), std::memory_order_release);
    c_->dequeue_pos.store(pos + 1, std::memory_order_release);
  }

  template <class IdentityAlive>
  bool slot_alive(std::uint32_t owner, IdentityAlive& alive) noexcept {
    auto& s = c_->producers[owner & 63u];
    if (s.state.load(std::memory_order_acquire) != 1) return false;
    return alive(s.identity_a.load(std::memory_order_relaxed),
                 s.identity_b.load(std::memory_order_acquire));
  }

  // A dead owner may still have claims between dequeue_pos and enqueue_pos;
  // its slot is recycled only after the consumer has passed them all.
  void mark_dead(std::uint32_t owner) noexcept {
    auto& s = c_->producers[owner & 63u];
    std::uint32_t expected = 1;
    if (s.state.compare_exchange_strong(expected, 2, std::memory_order_acq_rel)) {
      s.reap_after.store(c_->enqueue_pos.load(std::memory_order_acquire) + 1,
                         std::memory_order_release);
    }
  }
  void reap(std::uint64_t consumed_up_to) noexcept {
    for (auto& s : c_->producers) {
      if (s.state.load(std::memory_order_acquire) == 2 &&
          consumed_up_to >= s.reap_after.load(std::memory_order_acquire)) {
        s.state.store(0, std::memory_order_release);
      }
    }
  }

  void init_at(void* mem, std::uint64_t capacity) {
    auto* c = new (mem) MpscRingControl();
    c->capacity = capacity;
    c->cell_size = sizeof(Cell);
    bind(mem, capacity);
    for (std::uint64_t i = 0; i < capacity; ++i) {
      new (&cells_[i].word) std::atomic<std::uint64_t>(make(i, kFree, 0));
      std::memset(static_cast<void*>(&cells_[i].value), 0, sizeof(T));
    }
  }
  void bind(void* mem, std::uint64_t capacity) noexcept {
    c_ = static_cast<MpscRingControl*>(mem);
    cells_ = reinterpret_cast<Cell*>(static_cast<std::byte*>(mem) +
                                     slots_offset<MpscRingControl, Cell>());
    mask_ = capacity - 1;
  }

  MpscRingControl* c_ = nullptr;
  Cell* cells_ = nullptr;
  std::uint64_t mask_ = 0;
  OwnedBytes owned_;
};

}  // namespace ringwire::queue

namespace ringwire {
using queue::MpscRing;
}
