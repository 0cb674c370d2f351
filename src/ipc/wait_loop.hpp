// The one waiting loop of the ipc layer: spin, then yield or futex-sleep,
// until `ready()` or the deadline, calling `check()` (peer liveness, session)
// every liveness interval. Shared by Channel and Mailbox.
#pragma once

#include <sched.h>

#include <algorithm>
#include <atomic>
#include <cstdint>

#include "ringwire/core/clock.hpp"
#include "ringwire/core/cpu.hpp"
#include "ringwire/core/futex.hpp"
#include "ringwire/core/status.hpp"
#include "ringwire/ipc/channel.hpp"

namespace ringwire::ipc::detail {

struct WaitParams {
  WaitStrategy strategy = WaitStrategy::spin_futex;
  std::uint32_t spin_rounds = 4096;
  std::uint64_t liveness_interval_ns = 10'000'000;
};

// `sleeping` / `seq`: the futex handshake words of the side that waits (see
// queue/blocking.hpp). The waker publishes, issues a full fence, and reads
// `sleeping`; we set `sleeping`, issue a full fence, and re-check `ready()`.
// One of the two sees the other's store, so no wake-up is lost; `seq`
// covers a wake that lands between our load of it and futex_wait.
template <class Ready, class Check>
core::Status wait_loop(const WaitParams& p, std::atomic<std::uint32_t>& sleeping,
                       std::atomic<std::uint32_t>& seq, core::Deadline deadline, Ready ready,
                       Check check, const char* what) {
  if (ready()) return {};
  std::uint64_t now = core::now_ns();
  std::uint64_t next_check = now + p.liveness_interval_ns;
  std::uint32_t spins = 0;
  for (;;) {
    if (p.strategy == WaitStrategy::spin || spins < p.spin_rounds) {
      core::cpu_relax();
      ++spins;
      if (ready()) return {};
      if ((spins & 255) != 0) continue;  // read the clock every 256 pauses
    } else if (p.strategy == WaitStrategy::spin_yield) {
      ::sched_yield();
      if (ready()) return {};
    } else {
      const std::uint32_t observed = seq.load(std::memory_order_acquire);
      sleeping.store(1, std::memory_order_relaxed);
      std::atomic_thread_fence(std::memory_order_seq_cst);
      if (ready()) {
        sleeping.store(0, std::memory_order_relaxed);
        return {};
      }
      const std::uint64_t slice =
          std::min(deadline.remaining_ns(core::now_ns()), p.liveness_interval_ns);
      if (slice > 0) core::futex_wait(&seq, observed, slice);
      sleeping.store(0, std::memory_order_relaxed);
      if (ready()) return {};
    }
    now = core::now_ns();
    if (now >= next_check) {
      // Messages a peer published before it died or left are still
      // delivered: report the peer only once nothing is ready.
      if (auto st = check(); !st) return ready() ? core::Status{} : st;
      next_check = now + p.liveness_interval_ns;
    }
    if (deadline.expired(now)) {
      return ready() ? core::Status{} : core::Status(core::Errc::timed_out, what);
    }
  }
}

}  // namespace ringwire::ipc::detail
