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
// Owners are registered in `producers[]` (up to 64) with an opaque identity
// of two nonzero 64-bit words the caller chooses (the shm layer stores PID
// and start time). A dead owner's slot is only freed for reuse once the
// consumer has passed every position that owner could have claimed, so a
// claim is never attributed to the wrong process. A slot left half-registered
// by a killed registrant is reclaimed by check_producers().
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
  // 0 = free, 1 = in use, 2 = dead (waiting for the consumer to pass the
  // positions it may have claimed), 3 + 4 * ticket = being registered by the
  // registrant holding `ticket` (low two bits 3), 0xFFFFFFFF = being reclaimed
  // after a registrant vanished half-way.
  std::atomic<std::uint32_t> state{0};
  // Consumer-only bookkeeping for a slot stuck in "registering": the state
  // value seen at the last check_producers (its count is kept in reap_after).
  std::uint32_t registering_seen = 0;
  std::atomic<std::uint64_t> identity_a{0};  // caller-defined, e.g. PID
  std::atomic<std::uint64_t> identity_b{0};  // caller-defined, e.g. start time
  // dead: free once the consumer is at (or, see reap(), just before) this
  // position; registering: how many checks in a row saw the same ticket.
  std::atomic<std::uint64_t> reap_after{0};
};

struct MpscRingControl {
  alignas(core::kFalseSharingRange) std::atomic<std::uint64_t> enqueue_pos{0};
  alignas(core::kFalseSharingRange) std::atomic<std::uint64_t> dequeue_pos{0};
  std::atomic<std::uint64_t> abandoned{0};  // cells skipped because their writer died
  alignas(core::kFalseSharingRange) std::uint64_t capacity = 0;
  std::uint64_t cell_size = 0;
  std::atomic<std::uint32_t> registration_tickets{0};  // source of registering tickets
  std::uint32_t reserved = 0;
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

  // Takes a free owner slot for a new producer; nullopt when all 64 are used
  // or the identity has a zero half (zero marks an unwritten identity).
  //
  // Registration is three steps (take the slot, write the identity, mark it
  // in use) and a producer can be killed between any two. While it is
  // "registering" nobody can judge its liveness, so the consumer's
  // check_producers() reclaims a slot that stays registering under the same
  // ticket for kRegisteringChecks checks in a row. A registrant that was
  // only slow must then not finish on the reclaimed slot, nor write its
  // identity over the next owner's: its identity words are written by
  // CAS from zero (the reclaimer zeroes them first) and the final step is a
  // CAS from its own ticket; if any of them fails it leaves the slot alone
  // (the reclaimer collects it) and tries again.
  std::optional<std::uint32_t> register_producer(std::uint64_t id_a, std::uint64_t id_b) noexcept {
    if (id_a == 0 || id_b == 0) return std::nullopt;
    for (int attempt = 0; attempt < 4; ++attempt) {
      bool contended = false;
      for (std::uint32_t i = 0; i < kMpscMaxProducers; ++i) {
        auto& s = c_->producers[i];
        if (s.state.load(std::memory_order_relaxed) != kSlotFree) continue;
        const std::uint32_t ticket =
            registering_value(c_->registration_tickets.fetch_add(1, std::memory_order_relaxed));
        std::uint32_t expected = kSlotFree;
        if (!s.state.compare_exchange_strong(expected, ticket, std::memory_order_acq_rel)) {
          continue;
        }
        std::uint64_t zero = 0;
        // acq_rel: ordered after our slot CAS and before the final one, so
        // the consumer that sees "in use" (acquire) sees this identity.
        if (!s.identity_a.compare_exchange_strong(zero, id_a, std::memory_order_acq_rel)) {
          contended = true;
          continue;
        }
        zero = 0;
        if (!s.identity_b.compare_exchange_strong(zero, id_b, std::memory_order_acq_rel)) {
          contended = true;
          continue;
        }
        expected = ticket;
        if (s.state.compare_exchange_strong(expected, kSlotInUse, std::memory_order_acq_rel)) {
          return i;
        }
        contended = true;  // reclaimed under us: the identity words are no longer ours
      }
      if (!contended) break;
    }
    return std::nullopt;
  }
  // A producer leaving cleanly gives its slot back (all its claims are ready).
  void unregister_producer(std::uint32_t owner) noexcept {
    if (owner >= kMpscMaxProducers) return;
    auto& s = c_->producers[owner];
    s.identity_a.store(0, std::memory_order_relaxed);
    s.identity_b.store(0, std::memory_order_relaxed);
    s.state.store(kSlotFree, std::memory_order_release);
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
      // How far the cell's position is ahead of ours, modulo 2^56.
      const std::uint64_t ahead = (at - pos) & kPosMask;
      if (ahead == 0 && state_of(w) != kFree) {
        advance(pos);  // p is taken: help move the hint on, then retry
      } else if (((pos - capacity()) & kPosMask) == at && state_of(w) != kFree) {
        return false;  // the cell still holds the previous lap's item: full
      } else if (ahead != 0 && ahead < (kPosMask >> 1)) {
        // The cell is already past p: position p was claimed and then
        // consumed or abandoned (a producer killed before it moved the hint,
        // and the consumer skipped its claim). Move the hint on; if it had
        // moved already, the CAS fails and we reload.
        advance(pos);
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
  // It also reclaims slots left half-registered (see register_producer).
  // Only the consumer calls it.
  template <class IdentityAlive>
  void check_producers(IdentityAlive&& alive) noexcept {
    // Reap before marking: a producer found dead now keeps its slot (state
    // dead) at least until the next check.
    reap(c_->dequeue_pos.load(std::memory_order_relaxed));
    for (std::uint32_t i = 0; i < kMpscMaxProducers; ++i) {
      auto& s = c_->producers[i];
      const std::uint32_t st = s.state.load(std::memory_order_acquire);
      if (st == kSlotInUse && !slot_alive(i, alive)) mark_dead(i);
      if (is_registering(st)) {
        reclaim_if_stuck(s, st);
      } else {
        s.registering_seen = 0;
      }
    }
  }

  // Checks in a row that must see a slot registering under the same ticket
  // before it is reclaimed. Registration is a few instructions; a
  // registrant that is only descheduled this long retries (see above).
  static constexpr std::uint64_t kRegisteringChecks = 3;

  std::uint64_t size_approx() const noexcept {
    const std::uint64_t e = c_->enqueue_pos.load(std::memory_order_acquire);
    const std::uint64_t d = c_->dequeue_pos.load(std::memory_order_acquire);
    return e > d ? std::min(e - d, capacity()) : 0;
  }

 private:
  static constexpr std::uint64_t kPosMask = (std::uint64_t{1} << 56) - 1;
  static constexpr std::uint32_t kFree = 0, kClaimed = 1, kReady = 2;
  static constexpr std::uint32_t kSlotFree = 0, kSlotInUse = 1, kSlotDead = 2;
  static constexpr std::uint32_t kSlotReclaiming = 0xFFFFFFFFu;

  static constexpr std::uint32_t registering_value(std::uint32_t ticket) noexcept {
    // 30 bits of ticket; the all-ones value is kSlotReclaiming, skip it.
    const std::uint32_t t = ticket % ((1u << 30) - 1);
    return 3u | (t << 2);
  }
  static constexpr bool is_registering(std::uint32_t st) noexcept {
    return (st & 3u) == 3u && st != kSlotReclaiming;
  }

  void reclaim_if_stuck(MpscProducerSlot& s, std::uint32_t st) noexcept {
    if (s.registering_seen != st) {
      s.registering_seen = st;
      s.reap_after.store(1, std::memory_order_relaxed);
      return;
    }
    const std::uint64_t seen = s.reap_after.load(std::memory_order_relaxed) + 1;
    s.reap_after.store(seen, std::memory_order_relaxed);
    if (seen < kRegisteringChecks) return;
    std::uint32_t expected = st;
    // The reclaiming state shuts out both the stalled registrant (its final
    // CAS expects its ticket) and new registrants (they need "free") while
    // the identity words are zeroed for the next one.
    if (!s.state.compare_exchange_strong(expected, kSlotReclaiming, std::memory_order_acq_rel)) {
      return;
    }
    s.identity_a.store(0, std::memory_order_release);
    s.identity_b.store(0, std::memory_order_release);
    s.registering_seen = 0;
    s.reap_after.store(0, std::memory_order_relaxed);
    s.state.store(kSlotFree, std::memory_order_release);
  }

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
    if (s.state.load(std::memory_order_acquire) != kSlotInUse) return false;
    return alive(s.identity_a.load(std::memory_order_relaxed),
                 s.identity_b.load(std::memory_order_acquire));
  }

  // A dead owner may still have claims between dequeue_pos and enqueue_pos
  // (inclusive: a claim whose owner died before it moved the hint sits at
  // enqueue_pos itself). Being dead, it makes no new ones. Its slot is
  // recycled only once the consumer has passed them all, so that a claim is
  // never judged by the next owner's identity.
  void mark_dead(std::uint32_t owner) noexcept {
    auto& s = c_->producers[owner & 63u];
    std::uint32_t expected = kSlotInUse;
    if (s.state.compare_exchange_strong(expected, kSlotDead, std::memory_order_acq_rel)) {
      s.reap_after.store(c_->enqueue_pos.load(std::memory_order_acquire) + 1,
                         std::memory_order_release);
    }
  }
  // Dead owner o, marked when enqueue_pos was e (reap_after = e + 1): every
  // position it could hold is <= e. The consumer at e + 1 has passed them
  // all. The consumer at e has passed all but e itself, and e only matters
  // if its cell still shows o's claim: otherwise the slot is free to go even
  // on a ring that went idle (without this, slots of producers that died
  // while idle would never come back).
  void reap(std::uint64_t consumed_up_to) noexcept {
    for (std::uint32_t i = 0; i < kMpscMaxProducers; ++i) {
      auto& s = c_->producers[i];
      if (s.state.load(std::memory_order_acquire) != kSlotDead) continue;
      const std::uint64_t after = s.reap_after.load(std::memory_order_acquire);
      bool passed = consumed_up_to >= after;
      if (!passed && after != 0 && consumed_up_to == after - 1) {
        const std::uint64_t e = after - 1;
        const std::uint64_t w = cells_[e & mask_].word.load(std::memory_order_acquire);
        passed = !(pos_of(w) == (e & kPosMask) && state_of(w) == kClaimed && owner_of(w) == i);
      }
      if (passed) {
        s.identity_a.store(0, std::memory_order_relaxed);
        s.identity_b.store(0, std::memory_order_relaxed);
        s.state.store(kSlotFree, std::memory_order_release);
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
