// SpscRing between a producer thread and a consumer thread. Each raw-API
// variant (try_push/try_pop, push_n/pop_n, claim/commit, mixed) moves
// 10,000,000 self-checking messages, the spin_then_sleep variant 3,000,000
// (every op is a fence and, when the pair falls into lock-step, a futex
// syscall); RINGWIRE_STRESS_MESSAGES overrides all counts, TSan runs 10x
// fewer. Every message is verified: sequence (no loss, duplication or
// reordering) and payload checksum.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <random>
#include <thread>
#include <vector>

#include "common/test_support.hpp"
#include "ringwire/core/clock.hpp"
#include "ringwire/queue/blocking.hpp"
#include "ringwire/queue/spsc_ring.hpp"

namespace {

using namespace std::chrono_literals;
using ringwire::SpscRing;
using ringwire::core::Deadline;
using ringwire::core::now_ns;
using ringwire::queue::pop_wait;
using ringwire::queue::push_wait;
using ringwire::queue::WaitOptions;
using ringwire::queue::WaitPolicy;
using ringwire::queue::WaitResult;
using ringwire::test::Idle;
using ringwire::test::make_msg;
using ringwire::test::Msg;
using ringwire::test::Verifier;
using Ring = SpscRing<Msg>;

constexpr std::uint64_t kDefaultMessages = 10'000'000;
constexpr std::uint64_t kBlockingMessages = 3'000'000;
constexpr std::uint64_t kWatchdogNs = 240'000'000'000ull;  // a stuck run fails, never hangs

std::uint64_t messages() {
  return ringwire::test::stress_messages(kDefaultMessages);
}

// Runs `produce(stop)` on a thread and `consume(stop)` here; `stop` is set by
// either side when it gives up. Checks the verifier and prints the rate.
template <class Produce, class Consume>
void run_pair(const char* what, Ring& ring, std::uint64_t n, Produce produce, Consume consume) {
  std::atomic<bool> stop{false};
  Verifier v;
  const auto t0 = now_ns();
  std::thread producer([&] { produce(stop); });
  consume(v, stop);
  producer.join();
  const double s = ringwire::test::seconds_since(t0);
  std::printf("[ stress   ] %s: %llu messages in %.2f s (%.1f M/s), wakeups %llu\n", what,
              static_cast<unsigned long long>(v.received), s,
              static_cast<double>(v.received) / s / 1e6,
              static_cast<unsigned long long>(ring.control().wait.wakeups.load()));
  EXPECT_FALSE(stop.load()) << "a side gave up (watchdog or wait failure)";
  EXPECT_EQ(v.received, n) << "messages lost";
  EXPECT_EQ(v.out_of_sequence, 0u) << v.first_error;
  EXPECT_EQ(v.corrupt, 0u) << v.first_error;
  EXPECT_EQ(ring.size_approx(), 0u) << "items left in the ring";
  EXPECT_EQ(ring.control().tail.load(), n);
  EXPECT_EQ(ring.control().head.load(), n);
}

// True (and sets stop) once the watchdog deadline has passed.
bool watchdog_expired(std::uint64_t t0, std::atomic<bool>& stop) {
  if (now_ns() - t0 > kWatchdogNs) stop = true;
  return stop.load(std::memory_order_relaxed);
}

TEST(SpscRingThreadsStress, TryPushTryPop) {
  const std::uint64_t n = messages();
  Ring ring(1024);
  const auto t0 = now_ns();
  run_pair(
      "try_push/try_pop", ring, n,
      [&](std::atomic<bool>& stop) {
        Idle idle;
        for (std::uint64_t seq = 0; seq < n;) {
          if (ring.try_push(make_msg(seq))) {
            ++seq;
            idle.reset();
          } else {
            idle();
            if (idle.should_check() && watchdog_expired(t0, stop)) return;
          }
        }
      },
      [&](Verifier& v, std::atomic<bool>& stop) {
        Idle idle;
        Msg m;
        while (v.received < n) {
          if (ring.try_pop(m)) {
            v.check(m);
            idle.reset();
          } else {
            idle();
            if (idle.should_check() && watchdog_expired(t0, stop)) return;
          }
        }
      });
}

TEST(SpscRingThreadsStress, BatchPushNPopNWithVaryingSizes) {
  const std::uint64_t n = messages();
  Ring ring(256);  // batch sizes are not divisors of 256: runs split across the wrap
  const auto t0 = now_ns();
  run_pair(
      "push_n/pop_n", ring, n,
      [&](std::atomic<bool>& stop) {
        std::vector<Msg> batch(97);
        Idle idle;
        std::uint64_t seq = 0;
        for (std::size_t round = 0; seq < n; ++round) {
          const std::size_t want =
              static_cast<std::size_t>(std::min<std::uint64_t>(1 + round % 97, n - seq));
          for (std::size_t i = 0; i < want; ++i)
            batch[i] = make_msg(seq + i);
          std::size_t done = 0;
          while (done < want) {
            const std::size_t k = ring.push_n(batch.data() + done, want - done);
            if (k > 0) {
              done += k;
              idle.reset();
            } else {
              idle();
              if (idle.should_check() && watchdog_expired(t0, stop)) return;
            }
          }
          seq += want;
        }
      },
      [&](Verifier& v, std::atomic<bool>& stop) {
        std::vector<Msg> out(131);
        Idle idle;
        for (std::size_t round = 0; v.received < n; ++round) {
          const std::size_t k = ring.pop_n(out.data(), 1 + round % 131);
          for (std::size_t i = 0; i < k; ++i)
            v.check(out[i]);
          if (k > 0) {
            idle.reset();
          } else {
            idle();
            if (idle.should_check() && watchdog_expired(t0, stop)) return;
          }
        }
      });
}

TEST(SpscRingThreadsStress, ZeroCopyClaimCommitWithPartialCommits) {
  const std::uint64_t n = messages();
  Ring ring(512);
  const auto t0 = now_ns();
  run_pair(
      "claim/commit", ring, n,
      [&](std::atomic<bool>& stop) {
        Idle idle;
        std::uint64_t seq = 0;
        for (std::size_t round = 0; seq < n; ++round) {
          auto span = ring.claim_write(1 + round % 71);
          if (span.empty()) {
            idle();
            if (idle.should_check() && watchdog_expired(t0, stop)) return;
            continue;
          }
          idle.reset();
          // Fill the whole span but sometimes publish only a prefix: the
          // unpublished slots are claimed (and overwritten) again next round.
          std::size_t k = span.size();
          if (round % 3 == 0 && k > 1) k -= 1 + round % (k - 1);
          k = static_cast<std::size_t>(std::min<std::uint64_t>(k, n - seq));
          for (std::size_t i = 0; i < span.size(); ++i)
            span[i] = make_msg(seq + i);
          ring.commit_write(k);
          seq += k;
        }
      },
      [&](Verifier& v, std::atomic<bool>& stop) {
        Idle idle;
        for (std::size_t round = 0; v.received < n; ++round) {
          auto span = ring.claim_read(1 + round % 89);
          if (span.empty()) {
            idle();
            if (idle.should_check() && watchdog_expired(t0, stop)) return;
            continue;
          }
          idle.reset();
          std::size_t k = span.size();
          if (round % 4 == 0 && k > 1) k = k / 2;  // consume only part of what we claimed
          for (std::size_t i = 0; i < k; ++i)
            v.check(span[i]);
          ring.commit_read(k);
        }
      });
}

TEST(SpscRingThreadsStress, BlockingSpinThenSleep) {
  const std::uint64_t n = ringwire::test::stress_messages(kBlockingMessages);
  Ring ring(64);
  auto opts = [] {
    WaitOptions o;
    o.policy = WaitPolicy::spin_then_sleep;
    o.spin_rounds = 256;  // short spins: both sides really go to sleep now and then
    o.deadline = Deadline::after(20s);
    return o;
  };
  run_pair(
      "push_wait/pop_wait spin_then_sleep", ring, n,
      [&](std::atomic<bool>& stop) {
        for (std::uint64_t seq = 0; seq < n; ++seq) {
          if (stop.load(std::memory_order_relaxed)) return;
          if (push_wait(ring, make_msg(seq), opts()) != WaitResult::ok) {
            stop = true;
            return;
          }
        }
      },
      [&](Verifier& v, std::atomic<bool>& stop) {
        Msg m;
        while (v.received < n) {
          if (pop_wait(ring, m, opts()) != WaitResult::ok) {
            stop = true;
            return;
          }
          v.check(m);
        }
      });
}

// Both sides switch API at random: try_push / push_n / claim_write against
// try_pop / pop_n / claim_read, so every pairing meets at the wrap.
TEST(SpscRingThreadsStress, MixedApisOnBothSides) {
  const std::uint64_t n = messages();
  Ring ring(128);
  const auto t0 = now_ns();
  run_pair(
      "mixed APIs", ring, n,
      [&](std::atomic<bool>& stop) {
        std::mt19937 rng(1);
        std::vector<Msg> batch(40);
        Idle idle;
        std::uint64_t seq = 0;
        while (seq < n) {
          std::size_t pushed = 0;
          const std::size_t want =
              static_cast<std::size_t>(std::min<std::uint64_t>(1 + rng() % 40, n - seq));
          switch (rng() % 3) {
            case 0:
              pushed = ring.try_push(make_msg(seq)) ? 1 : 0;
              break;
            case 1:
              for (std::size_t i = 0; i < want; ++i)
                batch[i] = make_msg(seq + i);
              pushed = ring.push_n(batch.data(), want);
              break;
            default: {
              auto span = ring.claim_write(want);
              for (std::size_t i = 0; i < span.size(); ++i)
                span[i] = make_msg(seq + i);
              ring.commit_write(span.size());
              pushed = span.size();
            }
          }
          seq += pushed;
          if (pushed > 0) {
            idle.reset();
          } else {
            idle();
            if (idle.should_check() && watchdog_expired(t0, stop)) return;
          }
        }
      },
      [&](Verifier& v, std::atomic<bool>& stop) {
        std::mt19937 rng(2);
        std::vector<Msg> out(40);
        Idle idle;
        Msg m;
        while (v.received < n) {
          std::size_t got = 0;
          const std::size_t want = 1 + rng() % 40;
          switch (rng() % 3) {
            case 0:
              if (ring.try_pop(m)) {
                v.check(m);
                got = 1;
              }
              break;
            case 1:
              got = ring.pop_n(out.data(), want);
              for (std::size_t i = 0; i < got; ++i)
                v.check(out[i]);
              break;
            default: {
              auto span = ring.claim_read(want);
              for (const Msg& x : span)
                v.check(x);
              ring.commit_read(span.size());
              got = span.size();
            }
          }
          if (got > 0) {
            idle.reset();
          } else {
            idle();
            if (idle.should_check() && watchdog_expired(t0, stop)) return;
          }
        }
      });
}

}  // namespace
