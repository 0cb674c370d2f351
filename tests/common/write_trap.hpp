// WriteTrap: stops a thread at an exact store, with no hook in the code under
// test. The test maps some pages, puts the object whose field the thread will
// write on one of them, and arms the trap (the pages become read-only). The
// thread's store faults; our SIGSEGV handler parks it inside the handler
// until the test calls release(), which makes the pages writable again and
// lets the handler return, so the faulting store re-executes and completes.
// Reads of the trapped pages keep working for every thread meanwhile.
//
// One trap per process at a time. A fault outside the armed range restores
// the default action, so a real crash still crashes.
#pragma once

#include <signal.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <thread>

#include "ringwire/core/clock.hpp"

namespace ringwire::test {

// Under ThreadSanitizer an atomic store runs inside the TSan runtime, which
// holds a lock on the word's sync state while it stores: a thread parked in
// the fault handler keeps that lock, and any other thread's atomic access to
// the same word deadlocks. Tests using WriteTrap skip themselves there.
#if defined(__SANITIZE_THREAD__)
inline constexpr bool kWriteTrapUsable = false;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
inline constexpr bool kWriteTrapUsable = false;
#else
inline constexpr bool kWriteTrapUsable = true;
#endif
#else
inline constexpr bool kWriteTrapUsable = true;
#endif

// Page-aligned anonymous memory.
class Pages {
 public:
  explicit Pages(std::size_t count)
      : size_(count * page_size()),
        p_(::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)) {
    if (p_ == MAP_FAILED) std::abort();
  }
  ~Pages() { ::munmap(p_, size_); }
  Pages(const Pages&) = delete;
  Pages& operator=(const Pages&) = delete;

  static std::size_t page_size() { return static_cast<std::size_t>(::sysconf(_SC_PAGESIZE)); }
  std::byte* page(std::size_t i) const { return static_cast<std::byte*>(p_) + i * page_size(); }

 private:
  std::size_t size_;
  void* p_;
};

class WriteTrap {
 public:
  // Makes [page, page + bytes) read-only and installs the handler.
  WriteTrap(void* page, std::size_t bytes) : page_(page), bytes_(bytes) {
    lo().store(reinterpret_cast<std::uintptr_t>(page));
    hi().store(reinterpret_cast<std::uintptr_t>(page) + bytes);
    trapped().store(0);
    released().store(false);
    struct sigaction sa {};
    sa.sa_sigaction = &on_fault;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGSEGV, &sa, &old_);
    ok_ = ::mprotect(page_, bytes_, PROT_READ) == 0;
  }
  ~WriteTrap() {
    release();
    ::sigaction(SIGSEGV, &old_, nullptr);
    lo().store(0);
    hi().store(0);
  }
  WriteTrap(const WriteTrap&) = delete;
  WriteTrap& operator=(const WriteTrap&) = delete;

  bool armed() const { return ok_; }
  // Threads parked in the handler so far.
  int trapped_count() const { return trapped().load(); }
  bool wait_trapped(std::chrono::milliseconds timeout) const {
    const auto until = core::now_ns() + static_cast<std::uint64_t>(timeout.count()) * 1'000'000ull;
    while (trapped().load() == 0) {
      if (core::now_ns() >= until) return false;
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    return true;
  }
  // Pages writable again, parked threads resume (their store re-executes).
  void release() {
    if (released().load()) return;
    ::mprotect(page_, bytes_, PROT_READ | PROT_WRITE);
    released().store(true);
  }

 private:
  static std::atomic<std::uintptr_t>& lo() {
    static std::atomic<std::uintptr_t> v{0};
    return v;
  }
  static std::atomic<std::uintptr_t>& hi() {
    static std::atomic<std::uintptr_t> v{0};
    return v;
  }
  static std::atomic<int>& trapped() {
    static std::atomic<int> v{0};
    return v;
  }
  static std::atomic<bool>& released() {
    static std::atomic<bool> v{false};
    return v;
  }

  // Async-signal-safe: lock-free atomics and nanosleep only.
  static void on_fault(int, siginfo_t* si, void*) {
    const auto a = reinterpret_cast<std::uintptr_t>(si->si_addr);
    if (a < lo().load() || a >= hi().load()) {
      ::signal(SIGSEGV, SIG_DFL);  // not ours: the retried access crashes for real
      return;
    }
    trapped().fetch_add(1);
    while (!released().load()) {
      timespec ts{0, 100'000};
      ::nanosleep(&ts, nullptr);
    }
  }

  void* page_;
  std::size_t bytes_;
  struct sigaction old_ {};
  bool ok_ = false;
};

}  // namespace ringwire::test
