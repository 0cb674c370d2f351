// IndexFreeList: a lock-free stack of slot indices (Treiber stack) for node
// pools. The top word packs a 32-bit generation tag above the index, so a pop
// that read `next` of a node which was popped and pushed back meanwhile fails
// its CAS instead of corrupting the list (the ABA problem).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>

#include "ringwire/core/cache_line.hpp"

namespace ringwire::queue {

class IndexFreeList {
 public:
  // Starts full: every index in [0, count) is free.
  explicit IndexFreeList(std::uint32_t count) : next_(new std::atomic<std::uint32_t>[count]) {
    for (std::uint32_t i = 0; i < count; ++i) {
      next_[i].store(i + 1 < count ? i + 2 : 0, std::memory_order_relaxed);
    }
    top_.store(count > 0 ? 1 : 0, std::memory_order_relaxed);
  }

  std::optional<std::uint32_t> pop() noexcept {
    // acquire: pairs with the release CAS in push(), so next_[i] as written
    // by the pusher is what we read.
    std::uint64_t top = top_.load(std::memory_order_acquire);
    for (;;) {
      const auto link = static_cast<std::uint32_t>(top);  // index + 1, 0 = empty
      if (link == 0) return std::nullopt;
      // relaxed: if the node was reused meanwhile this value is stale, and
      // the tag makes the CAS below fail.
      const std::uint32_t after = next_[link - 1].load(std::memory_order_relaxed);
      const std::uint64_t want = (((top >> 32) + 1) << 32) | after;
      if (top_.compare_exchange_weak(top, want, std::memory_order_acquire,
                                     std::memory_order_acquire)) {
        return link - 1;
      }
    }
  }

  void push(std::uint32_t index) noexcept {
    std::uint64_t top = top_.load(std::memory_order_relaxed);
    for (;;) {
      next_[index].store(static_cast<std::uint32_t>(top), std::memory_order_relaxed);
      const std::uint64_t want = (((top >> 32) + 1) << 32) | (index + 1);
      // release: our write of next_[index] (and of the node's contents, by
      // whoever freed it) is visible to the popper that acquires it.
      if (top_.compare_exchange_weak(top, want, std::memory_order_release,
                                     std::memory_order_relaxed)) {
        return;
      }
    }
  }

 private:
  alignas(core::kFalseSharingRange) std::atomic<std::uint64_t> top_{0};
  std::unique_ptr<std::atomic<std::uint32_t>[]> next_;
};

}  // namespace ringwire::queue
