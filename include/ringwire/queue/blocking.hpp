// What to do when an SpscRing is full (producer) or empty (consumer).
//
// The ring itself never blocks and never makes a syscall; this adapter adds
// the caller's choice on top:
//   fail_fast        return at once
//   spin             busy-wait with `pause` until the deadline
//   spin_then_sleep  spin a little, then futex-sleep on a word in the ring's
//                    control block; the other side wakes us only if we said
//                    we were asleep, so a busy pair makes no syscalls at all
//   drop_and_count   (full side only) discard the item and count it
// Every wait ends at a deadline, and calls `alive()` at least every
// `liveness_interval` so a dead peer is noticed instead of waited for.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include "ringwire/core/clock.hpp"
#include "ringwire/core/cpu.hpp"
#include "ringwire/core/futex.hpp"
#include "ringwire/queue/spsc_ring.hpp"

namespace ringwire::queue {

enum class WaitPolicy { fail_fast, spin, spin_then_sleep, drop_and_count };

enum class WaitResult { ok, would_block, timed_out, dropped, peer_dead };

struct WaitOptions {
  WaitPolicy policy = WaitPolicy::spin_then_sleep;
  core::Deadline deadline = core::Deadline::after(std::chrono::seconds(1));
  std::uint32_t spin_rounds = 4096;  // pause rounds before the first futex sleep
  std::uint64_t liveness_interval_ns = 10'000'000;
};

struct AlwaysAlive {
  bool operator()() const noexcept { return true; }
};

namespace detail {

// Dekker-style handshake with the waker: the sleeper stores its flag, then a
// full fence, then re-checks the ring; the waker publishes its index, then a
// full fence, then reads the flag. With both fences seq_cst at least one side
// sees the other's store, so either the sleeper finds the item or the waker
// finds the flag: no lost wake-up. `seq` closes the remaining window (waker
// bumps it after the sleeper read it -> futex_wait returns at once).
inline void wake_if_sleeping(std::atomic<std::uint32_t>& sleeping, std::atomic<std::uint32_t>& seq,
                             std::atomic<std::uint64_t>& wakeups) noexcept {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  // The plain load keeps the common case (nobody asleep) free of RMWs; the
  // exchange then makes sure one sleep costs one wake-up, not one per item
  // published until the sleeper gets round to clearing its flag.
  if (sleeping.load(std::memory_order_relaxed) != 0 &&
      sleeping.exchange(0, std::memory_order_relaxed) != 0) {
    seq.fetch_add(1, std::memory_order_release);
    core::futex_wake(&seq, 1);
    wakeups.fetch_add(1, std::memory_order_relaxed);
  }
}

template <class Ready, class Alive>
WaitResult wait_until(Ready ready, std::atomic<std::uint32_t>& sleeping,
                      std::atomic<std::uint32_t>& seq, const WaitOptions& opt, Alive& alive) {
  if (ready()) return WaitResult::ok;
  if (opt.policy == WaitPolicy::fail_fast) return WaitResult::would_block;
  std::uint64_t now = core::now_ns();
  std::uint64_t next_check = now + opt.liveness_interval_ns;
  std::uint32_t spins = 0;
  for (;;) {
    if (opt.policy == WaitPolicy::spin || spins < opt.spin_rounds) {
      core::cpu_relax();
      ++spins;
      if (ready()) return WaitResult::ok;
      if ((spins & 255) != 0) continue;  // read the clock only every 256 pauses
    } else {
      const std::uint32_t observed = seq.load(std::memory_order_acquire);
      sleeping.store(1, std::memory_order_relaxed);
      std::atomic_thread_fence(std::memory_order_seq_cst);  // see wake_if_sleeping
      if (ready()) {
        sleeping.store(0, std::memory_order_relaxed);
        return WaitResult::ok;
      }
      const std::uint64_t slice =
          std::min(opt.deadline.remaining_ns(core::now_ns()), opt.liveness_interval_ns);
      if (slice > 0) core::futex_wait(&seq, observed, slice);
      sleeping.store(0, std::memory_order_relaxed);
      if (ready()) return WaitResult::ok;
    }
    now = core::now_ns();
    if (now >= next_check) {
      // A peer that published and then died leaves its items behind: take
      // them before reporting the death.
      if (!alive()) return ready() ? WaitResult::ok : WaitResult::peer_dead;
      next_check = now + opt.liveness_interval_ns;
    }
    if (opt.deadline.expired(now)) return ready() ? WaitResult::ok : WaitResult::timed_out;
  }
}

}  // namespace detail

// Wake a consumer that may sleep in pop_wait. Call after publishing items with
// the raw ring API when the consumer uses spin_then_sleep.
template <class T>
void wake_consumer(SpscRing<T>& ring) noexcept {
  auto& w = ring.control().wait;
  detail::wake_if_sleeping(w.consumer_sleeping, w.data_seq, w.wakeups);
}
template <class T>
void wake_producer(SpscRing<T>& ring) noexcept {
  auto& w = ring.control().wait;
  detail::wake_if_sleeping(w.producer_sleeping, w.space_seq, w.wakeups);
}

// For zero-copy users: waits until claim_write can hand out at least one slot
// (or claim_read at least one item). drop_and_count acts as fail_fast.
template <class T, class Alive = AlwaysAlive>
WaitResult wait_for_space(SpscRing<T>& ring, const WaitOptions& opt, Alive alive = {}) {
  auto& w = ring.control().wait;
  WaitOptions o = opt;
  if (o.policy == WaitPolicy::drop_and_count) o.policy = WaitPolicy::fail_fast;
  return detail::wait_until([&] { return !ring.claim_write(1).empty(); }, w.producer_sleeping,
                            w.space_seq, o, alive);
}
template <class T, class Alive = AlwaysAlive>
WaitResult wait_for_data(SpscRing<T>& ring, const WaitOptions& opt, Alive alive = {}) {
  auto& w = ring.control().wait;
  WaitOptions o = opt;
  if (o.policy == WaitPolicy::drop_and_count) o.policy = WaitPolicy::fail_fast;
  return detail::wait_until([&] { return !ring.claim_read(1).empty(); }, w.consumer_sleeping,
                            w.data_seq, o, alive);
}

// Pushes one item under the given policy. With spin_then_sleep on either side
// pass `notify = true` (the default) so a sleeping consumer is woken.
template <class T, class Alive = AlwaysAlive>
WaitResult push_wait(SpscRing<T>& ring, const T& item, const WaitOptions& opt, Alive alive = {},
                     bool notify = true) {
  auto& w = ring.control().wait;
  WaitResult r;
  if (opt.policy == WaitPolicy::drop_and_count) {
    if (!ring.try_push(item)) {
      w.drops.fetch_add(1, std::memory_order_relaxed);
      return WaitResult::dropped;
    }
    r = WaitResult::ok;
  } else {
    r = detail::wait_until([&] { return ring.try_push(item); }, w.producer_sleeping, w.space_seq,
                           opt, alive);
  }
  if (r == WaitResult::ok && notify) wake_consumer(ring);
  return r;
}

// Pops one item under the given policy (drop_and_count acts as fail_fast).
template <class T, class Alive = AlwaysAlive>
WaitResult pop_wait(SpscRing<T>& ring, T& out, const WaitOptions& opt, Alive alive = {},
                    bool notify = true) {
  auto& w = ring.control().wait;
  WaitOptions o = opt;
  if (o.policy == WaitPolicy::drop_and_count) o.policy = WaitPolicy::fail_fast;
  const WaitResult r = detail::wait_until([&] { return ring.try_pop(out); }, w.consumer_sleeping,
                                          w.data_seq, o, alive);
  if (r == WaitResult::ok && notify) wake_producer(ring);
  return r;
}

}  // namespace ringwire::queue
