// Helpers for the multi-producer / multi-consumer queue tests: unique item
// ids (producer + sequence, never zero), an exactly-once ledger that any
// number of consumers (threads, or processes when it lives in shared memory)
// update concurrently, a per-producer order tracker, and a watchdog that turns
// a hung queue into a failed test with a message instead of a ctest timeout.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/test_support.hpp"
#include "ringwire/core/clock.hpp"

namespace ringwire::test {

// ---- item ids -------------------------------------------------------------------

// Producer index in the top 16 bits, sequence + 1 in the low 48: unique per
// (producer, seq) and never 0 (the Pawl ring reserves 0 for "empty").
inline constexpr std::uint64_t kItemSeqBits = 48;
inline constexpr std::uint64_t kItemSeqMask = (std::uint64_t{1} << kItemSeqBits) - 1;

constexpr std::uint64_t encode_item(std::uint32_t producer, std::uint64_t seq) noexcept {
  return (std::uint64_t{producer} << kItemSeqBits) | ((seq + 1) & kItemSeqMask);
}
constexpr std::uint32_t item_producer(std::uint64_t id) noexcept {
  return static_cast<std::uint32_t>(id >> kItemSeqBits);
}
// Meaningless (huge) for a corrupted id of 0; the ledger rejects it.
constexpr std::uint64_t item_seq(std::uint64_t id) noexcept {
  return (id & kItemSeqMask) - 1;
}

// A 16-byte payload for the shared-memory rings: the id and a check word, so a
// torn or stale cell shows up as a mismatch.
struct CheckedItem {
  std::uint64_t id;
  std::uint64_t check;
};
inline CheckedItem make_checked(std::uint32_t producer, std::uint64_t seq) noexcept {
  const std::uint64_t id = encode_item(producer, seq);
  return {id, mix64(id ^ 0x5bd1e9955bd1e995ull)};
}
inline bool checked_ok(const CheckedItem& it) noexcept {
  return it.check == mix64(it.id ^ 0x5bd1e9955bd1e995ull);
}

// ---- exactly once ---------------------------------------------------------------

enum class Seen { first, duplicate, out_of_range };

// One byte per (producer, seq). Works on memory it does not own, so it can sit
// in a shared-memory segment that several consumer processes update.
class LedgerView {
 public:
  LedgerView() = default;
  LedgerView(std::atomic<std::uint8_t>* bytes, std::uint32_t producers, std::uint64_t per_producer)
      : bytes_(bytes), producers_(producers), per_(per_producer) {}

  static std::size_t bytes_for(std::uint32_t producers, std::uint64_t per_producer) {
    return static_cast<std::size_t>(producers) * static_cast<std::size_t>(per_producer);
  }

  Seen record(std::uint64_t id) noexcept {
    const std::uint32_t p = item_producer(id);
    const std::uint64_t s = item_seq(id);
    if (p >= producers_ || s >= per_) return Seen::out_of_range;
    // relaxed: the exchange itself is the only thing compared.
    return bytes_[p * per_ + s].exchange(1, std::memory_order_relaxed) == 0 ? Seen::first
                                                                            : Seen::duplicate;
  }
  bool seen(std::uint32_t p, std::uint64_t s) const noexcept {
    return bytes_[p * per_ + s].load(std::memory_order_relaxed) != 0;
  }
  // Items of producer p (of `expected`) never recorded; the first one in `first`.
  std::uint64_t missing(std::uint32_t p, std::uint64_t expected, std::uint64_t* first) const {
    std::uint64_t n = 0;
    for (std::uint64_t s = 0; s < expected; ++s) {
      if (!seen(p, s) && n++ == 0 && first != nullptr) *first = s;
    }
    return n;
  }
  // Highest seq+1 recorded for producer p (0 if none).
  std::uint64_t extent(std::uint32_t p) const {
    for (std::uint64_t s = per_; s > 0; --s) {
      if (seen(p, s - 1)) return s;
    }
    return 0;
  }
  std::uint32_t producers() const noexcept { return producers_; }
  std::uint64_t per_producer() const noexcept { return per_; }

 private:
  std::atomic<std::uint8_t>* bytes_ = nullptr;
  std::uint32_t producers_ = 0;
  std::uint64_t per_ = 0;
};

// An in-process ledger with its own storage.
class Ledger : public LedgerView {
 public:
  Ledger(std::uint32_t producers, std::uint64_t per_producer)
      : Ledger(std::make_unique<std::atomic<std::uint8_t>[]>(bytes_for(producers, per_producer)),
               producers, per_producer) {}

 private:
  Ledger(std::unique_ptr<std::atomic<std::uint8_t>[]> b, std::uint32_t producers,
         std::uint64_t per_producer)
      : LedgerView(b.get(), producers, per_producer), storage_(std::move(b)) {}
  std::unique_ptr<std::atomic<std::uint8_t>[]> storage_;
};

// What one consumer saw: per producer, the sequence numbers must increase
// (strictly_next: must be exactly last + 1, for a single consumer of a FIFO).
class OrderTracker {
 public:
  OrderTracker(std::uint32_t producers, bool strictly_next)
      : last_(producers, -1), strict_(strictly_next) {}

  // False (and remembers the first problem) when the order is broken.
  bool check(std::uint64_t id) {
    ++received_;
    const std::uint32_t p = item_producer(id);
    const auto s = static_cast<std::int64_t>(item_seq(id));
    if (p >= last_.size()) return fail("producer index " + std::to_string(p) + " out of range");
    const std::int64_t prev = last_[p];
    last_[p] = s;
    if (strict_ ? s != prev + 1 : s <= prev) {
      return fail("producer " + std::to_string(p) + ": seq " + std::to_string(s) + " after " +
                  std::to_string(prev));
    }
    return true;
  }
  std::uint64_t received() const { return received_; }
  std::uint64_t violations() const { return violations_; }
  const std::string& first_error() const { return first_error_; }
  std::int64_t last(std::uint32_t p) const { return last_[p]; }

 private:
  bool fail(std::string what) {
    if (violations_++ == 0) first_error_ = std::move(what);
    return false;
  }
  std::vector<std::int64_t> last_;
  bool strict_;
  std::uint64_t received_ = 0;
  std::uint64_t violations_ = 0;
  std::string first_error_;
};

// ---- watchdog ----------------------------------------------------------------------

// Watches a progress counter from its own thread. If the counter does not move
// for `stall`, prints `what` plus describe() and aborts the process: a queue
// that livelocks inside a library call cannot be stopped any other way, and
// an abort with a message beats a silent ctest timeout.
class StallWatchdog {
 public:
  StallWatchdog(std::string what, const std::atomic<std::uint64_t>& progress,
                std::chrono::milliseconds stall, std::function<std::string()> describe = {})
      : what_(std::move(what)), describe_(std::move(describe)) {
    thread_ = std::thread([this, &progress, stall] {
      std::uint64_t last = progress.load();
      auto since = core::now_ns();
      const auto limit = static_cast<std::uint64_t>(stall.count()) * 1'000'000ull;
      std::unique_lock<std::mutex> lk(m_);
      while (!stop_) {
        cv_.wait_for(lk, std::chrono::milliseconds(50));
        const std::uint64_t now = progress.load();
        if (now != last) {
          last = now;
          since = core::now_ns();
        } else if (core::now_ns() - since > limit) {
          std::fprintf(stderr, "\n[ watchdog ] %s: no progress for %lld ms at %llu. %s\n",
                       what_.c_str(), static_cast<long long>(stall.count()),
                       static_cast<unsigned long long>(now), describe_ ? describe_().c_str() : "");
          std::fflush(stderr);
          std::abort();
        }
      }
    });
  }
  ~StallWatchdog() {
    {
      std::lock_guard<std::mutex> lk(m_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  StallWatchdog(const StallWatchdog&) = delete;
  StallWatchdog& operator=(const StallWatchdog&) = delete;

 private:
  std::string what_;
  std::function<std::string()> describe_;
  std::mutex m_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace ringwire::test
