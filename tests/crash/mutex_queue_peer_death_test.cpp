// MutexQueue in memory shared by several processes, when one of them dies:
// while holding the (robust) mutex, or while blocked in pop_wait/push_wait on
// a process-shared condition variable. The queue must stay usable by the
// survivors. Every use after a death runs in a child guarded by a timeout, so
// a wedged queue fails the test instead of hanging it.
#include <pthread.h>
#include <sys/mman.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <thread>

#include "common/test_support.hpp"
#include "ringwire/core/clock.hpp"
#include "ringwire/queue/mutex_queue.hpp"

namespace {

using namespace std::chrono_literals;
using ringwire::MutexQueue;
using ringwire::core::Deadline;
using ringwire::test::Child;
using Queue = MutexQueue<std::uint64_t>;

constexpr std::uint64_t kCap = 8;

// A MutexQueue in an anonymous MAP_SHARED mapping, inherited across fork().
class SharedQueue {
 public:
  SharedQueue() {
    bytes_ = Queue::bytes_for(kCap);
    mem_ = ::mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (mem_ == MAP_FAILED) std::abort();
    auto q = Queue::create_in(mem_, bytes_, kCap);
    if (!q) std::abort();
    q_ = std::make_unique<Queue>(std::move(q.value()));
  }
  ~SharedQueue() {
    q_.reset();
    ::munmap(mem_, bytes_);
  }
  Queue& operator*() { return *q_; }
  Queue* operator->() { return q_.get(); }

 private:
  void* mem_ = nullptr;
  std::size_t bytes_ = 0;
  std::unique_ptr<Queue> q_;
};

// True once `pid` is asleep (state S), e.g. inside pthread_cond_timedwait.
bool sleeping(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  const auto p = s.rfind(')');
  return p != std::string::npos && p + 2 < s.size() && s[p + 2] == 'S';
}

// Forks a child that blocks in `wait_body`, and kills it once it sleeps.
template <class F>
void kill_while_blocked(F wait_body) {
  Child c = Child::spawn(wait_body);
  ASSERT_TRUE(ringwire::test::eventually([&] { return sleeping(c.pid()); }, 5s));
  std::this_thread::sleep_for(5ms);  // let it settle inside the futex wait
  c.kill(SIGKILL);
  EXPECT_EQ(c.exit_code(), -SIGKILL) << "the waiter returned instead of blocking";
}

// Runs `body` in a child; fails if it does not finish within 5 s or exits
// non-zero. Returns true on success.
template <class F>
bool expect_finishes(const std::string& what, F body) {
  Child c = Child::spawn(body);
  if (!c.wait_for(5s)) {
    ADD_FAILURE() << what << ": still blocked after 5 s (queue wedged)";
    return false;  // ~Child kills it
  }
  const int rc = c.exit_code();
  EXPECT_EQ(rc, 0) << what;
  return rc == 0;
}

TEST(MutexQueuePeerDeath, AProcessDyingWithTheLockHeldDoesNotWedgeTheQueue) {
  SharedQueue q;
  ASSERT_TRUE(q->try_push(1));
  Child holder = Child::spawn([&] {
    pthread_mutex_lock(&q->control().mutex);
    return 0;  // exits holding the robust mutex
  });
  ASSERT_EQ(holder.exit_code(), 0);
  ASSERT_TRUE(expect_finishes("push/pop after the holder died", [&] {
    std::uint64_t v = 0;
    if (!q->try_pop(v) || v != 1) return 1;
    if (!q->try_push(2)) return 2;
    return q->size() == 1 ? 0 : 3;
  }));
  expect_finishes("a second process after recovery", [&] {
    std::uint64_t v = 0;
    return q->try_pop(v) && v == 2 ? 0 : 1;
  });
}

// Known library bug: glibc's process-shared condition variables keep
// per-group waiter state that a killed waiter never releases. After consumers
// die inside pop_wait, later pushes either block for ever inside
// pthread_cond_signal() -- holding the queue's mutex, so every process wedges
// -- or their signal is lost and pop_wait sleeps to its deadline (and then
// reports a timeout although the item is there). The header's claim that a
// dead waiter only costs spurious wake-ups does not hold.
TEST(MutexQueuePeerDeath, ConsumersKilledInPopWaitDoNotWedgeTheQueue) {
  SharedQueue q;
  for (int dead = 1; dead <= 3; ++dead) {
    kill_while_blocked([&] {
      std::uint64_t v = 0;
      return q->pop_wait(v, Deadline::after(30s)) ? 1 : 2;
    });
    const std::string after = " after " + std::to_string(dead) + " dead consumer(s)";
    if (!expect_finishes("try_push + try_pop" + after, [&] {
          if (!q->try_push(7)) return 1;
          std::uint64_t v = 0;
          return q->try_pop(v) && v == 7 ? 0 : 2;
        })) {
      return;
    }
    if (!expect_finishes("pop_wait woken by a push" + after + " (exit 1: lost wake-up)", [&] {
          std::thread producer([&] {
            std::this_thread::sleep_for(20ms);
            q->try_push(8);
          });
          std::uint64_t v = 0;
          const bool ok = q->pop_wait(v, Deadline::after(2s));
          producer.join();
          if (!ok) return 1;
          return v == 8 ? 0 : 2;
        })) {
      return;
    }
  }
}

TEST(MutexQueuePeerDeath, ProducersKilledInPushWaitDoNotWedgeTheQueue) {
  SharedQueue q;
  for (std::uint64_t i = 0; i < kCap; ++i)
    ASSERT_TRUE(q->try_push(i));
  for (int dead = 1; dead <= 3; ++dead) {
    kill_while_blocked([&] { return q->push_wait(99, Deadline::after(30s)) ? 1 : 2; });
    const std::string after = " after " + std::to_string(dead) + " dead producer(s)";
    if (!expect_finishes("try_pop + try_push" + after, [&] {
          std::uint64_t v = 0;
          if (!q->try_pop(v)) return 1;
          return q->try_push(100) ? 0 : 2;
        })) {
      return;
    }
    if (!expect_finishes("push_wait woken by a pop" + after + " (exit 1: lost wake-up)", [&] {
          std::thread consumer([&] {
            std::this_thread::sleep_for(20ms);
            std::uint64_t v = 0;
            q->try_pop(v);
          });
          const bool ok = q->push_wait(101, Deadline::after(2s));
          consumer.join();
          return ok ? 0 : 1;
        })) {
      return;
    }
  }
}

}  // namespace
