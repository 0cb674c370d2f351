// The Raft loop's inbox: gRPC handler threads and peer streams hand it closures through our
// wait-free MpscNodeQueue; the loop sleeps on a futex until the next tick or a post.
//
// Wake-up handshake (why no post is ever slept through): the poster pushes, then a seq_cst
// fence, then reads `sleeping_`; the loop sets `sleeping_`, then a seq_cst fence, then checks
// the queue. With both fences, at least one side sees the other's write: either the loop finds
// the task, or the poster sees the loop asleep and bumps the futex word (the loop's futex_wait
// on the old word value then returns at once). A wake-up syscall is paid only when the loop
// is really asleep, never on a busy loop's hot path.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>

#include "ringwire/core/futex.hpp"
#include "ringwire/queue/mpsc_node_queue.hpp"

namespace ringwire::kv::server {

class Inbox {
 public:
  using Fn = std::function<void()>;

  Inbox() = default;
  Inbox(const Inbox&) = delete;
  Inbox& operator=(const Inbox&) = delete;
  ~Inbox() {
    drain([](Fn&) {});  // closures never run free their captures here
  }

  // Any thread.
  void post(Fn fn) {
    auto* t = new Task{{}, new Fn(std::move(fn))};
    queue_.push(&t->hook);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (sleeping_.load(std::memory_order_relaxed) != 0) {
      word_.fetch_add(1, std::memory_order_relaxed);
      core::futex_wake(&word_, 1);
    }
  }

  // Loop thread: runs every queued closure (in post order); returns how many ran.
  template <class Run>
  std::size_t drain(Run&& run) {
    std::size_t n = 0;
    for (;;) {
      queue::MpscHook* h = queue_.pop_linearizable();
      if (h == nullptr) return n;
      Task* t = queue::hook_owner<Task>(h);
      run(*t->fn);
      delete t->fn;
      delete t;
      ++n;
    }
  }

  // Loop thread: sleeps up to timeout_ns unless something is queued.
  void wait(std::uint64_t timeout_ns) {
    const std::uint32_t w = word_.load(std::memory_order_relaxed);
    sleeping_.store(1, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (queue_.empty_approx()) core::futex_wait(&word_, w, timeout_ns);
    sleeping_.store(0, std::memory_order_relaxed);
  }

 private:
  struct Task {
    queue::MpscHook hook;
    Fn* fn;  // a pointer keeps Task standard-layout (hook_owner needs offsetof)
  };
  queue::MpscNodeQueue queue_;
  std::atomic<std::uint32_t> word_{0};
  std::atomic<std::uint32_t> sleeping_{0};
};

}  // namespace ringwire::kv::server
