// MpscNodeQueue: Dmitry Vyukov's intrusive node-based multi-producer /
// single-consumer queue.
//
// Shape: a singly linked list from `tail_` (oldest, consumer side) to `head_`
// (newest, producer side), always holding at least one node. The queue owns
// one node of its own, the stub, which it threads back in whenever the list
// would otherwise become empty, so `head_` is never null.
//
//   push(n): n.next = null; prev = head_.exchange(n); prev.next = n
//
// One atomic exchange and one release store, no loop: push is wait-free.
// Between the two steps the new node is reachable from `head_` but not yet
// from `prev`: the "half-done push" window. A consumer that reaches `prev`
// during that window cannot see `n` or anything pushed after it. The two pop
// flavours answer that window differently (see the seed's table):
//
//   | pop               | progress   | consistency   | during a half-done push |
//   |-------------------|------------|---------------|-------------------------|
//   | try_pop()         | lock-free  | serializable  | returns Busy at once    |
//   | pop_linearizable()| blocking   | linearizable  | spins until it links    |
//
// pop_linearizable() blocks for as long as the pushing thread is paused
// between its two steps (forever, if that thread died there): use it only
// among threads of one process that cannot be killed independently.
//
// Node ownership: a pushed node belongs to the queue until pop returns it;
// the caller then owns it again and may free or reuse it. Embed an MpscHook
// in your type (first member or via container_of) to use it:
//
//   struct Job { ringwire::queue::MpscHook hook; int work; };
//   q.push(&job->hook);
//   auto r = q.try_pop(); if (r.status == PopStatus::ok) { auto* j = hook_owner<Job>(r.node); }
//
// The consumer-side members are single-threaded by contract; only push may
// be called concurrently.
#pragma once

#include <atomic>
#include <cstddef>
#include <type_traits>

#include "ringwire/core/cache_line.hpp"
#include "ringwire/core/cpu.hpp"

namespace ringwire::queue {

struct MpscHook {
  std::atomic<MpscHook*> next{nullptr};
};

// Recovers the object that embeds `hook` as a member named `hook`.
template <class Owner>
Owner* hook_owner(MpscHook* hook) noexcept {
  static_assert(std::is_standard_layout_v<Owner>, "offsetof needs a standard-layout owner");
  return reinterpret_cast<Owner*>(reinterpret_cast<std::byte*>(hook) - offsetof(Owner, hook));
}

enum class PopStatus {
  ok,     // `node` is the oldest item
  empty,  // no item was pushed that is not yet popped
  busy,   // an item is being pushed right now (half-done push): retry soon
};

struct PopResult {
  MpscHook* node = nullptr;
  PopStatus status = PopStatus::empty;
};

class MpscNodeQueue {
 public:
  MpscNodeQueue() noexcept : head_(&stub_), tail_(&stub_) {}
  MpscNodeQueue(const MpscNodeQueue&) = delete;
  MpscNodeQueue& operator=(const MpscNodeQueue&) = delete;

  // Wait-free; any number of threads.
  void push(MpscHook* node) noexcept {
    // relaxed: the node is private until the exchange publishes it.
    node->next.store(nullptr, std::memory_order_relaxed);
    // acq_rel: release publishes the node's contents (and its null next) to
    // the producer that will link after it and, through that link, to the
    // consumer; acquire orders us after the previous head's initialisation,
    // whose `next` we are about to write.
    MpscHook* prev = head_.exchange(node, std::memory_order_acq_rel);
    // release: the consumer's acquire load of prev->next sees the node whole.
    prev->next.store(node, std::memory_order_release);
  }

  // Lock-free, serializable. Consumer only.
  PopResult try_pop() noexcept {
    MpscHook* tail = tail_;
    // acquire: pairs with the release store of the link in push().
    MpscHook* next = tail->next.load(std::memory_order_acquire);
    if (tail == &stub_) {
      if (next == nullptr) {
        // Truly empty only if no producer has swapped head_ away from the stub.
        return {nullptr, head_.load(std::memory_order_acquire) == &stub_ ? PopStatus::empty
                                                                         : PopStatus::busy};
      }
      // Skip the stub: it carries no item.
      tail_ = next;
      tail = next;
      next = next->next.load(std::memory_order_acquire);
    }
    if (next != nullptr) {
      tail_ = next;
      return {tail, PopStatus::ok};
    }
    // `tail` is the last linked node. If head_ moved on, a push after it is
    // half done: its item is not reachable yet.
    if (tail != head_.load(std::memory_order_acquire)) return {nullptr, PopStatus::busy};
    // `tail` is the only item. Re-insert the stub behind it so that taking
    // `tail` leaves the list non-empty; then it has a successor.
    push(&stub_);
    next = tail->next.load(std::memory_order_acquire);
    if (next != nullptr) {
      tail_ = next;
      return {tail, PopStatus::ok};
    }
    // A producer slipped in between our head_ check and the stub push and has
    // not linked yet.
    return {nullptr, PopStatus::busy};
  }

  // Blocking, linearizable (Akka's variant): spins through half-done pushes,
  // so "empty" means no push had completed its exchange. Consumer only.
  MpscHook* pop_linearizable() noexcept {
    for (core::Backoff backoff;; backoff.pause()) {
      PopResult r = try_pop();
      if (r.status != PopStatus::busy) return r.node;
    }
  }

  // Approximate: false while any node is queued or being pushed. Consumer only.
  bool empty_approx() const noexcept {
    return tail_ == &stub_ && stub_.next.load(std::memory_order_acquire) == nullptr &&
           head_.load(std::memory_order_acquire) == &stub_;
  }

 private:
  // Producers hammer head_; the consumer owns tail_ and reads the stub.
  alignas(core::kFalseSharingRange) std::atomic<MpscHook*> head_;
  alignas(core::kFalseSharingRange) MpscHook* tail_;
  MpscHook stub_;
};

}  // namespace ringwire::queue

namespace ringwire {
using queue::MpscNodeQueue;
}
