// One blocking interface over SpscRing and MutexQueue for the spsc_queue
// loops. The fast path is a single try_* call; only when the queue is full or
// empty do we build a deadline and wait, checking the peer's liveness.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "ringwire/core/clock.hpp"
#include "ringwire/queue/blocking.hpp"
#include "ringwire/queue/mutex_queue.hpp"
#include "ringwire/queue/spsc_ring.hpp"
#include "run.hpp"

namespace ringwire::tools {

using queue::WaitResult;

struct Waiter {
  WaitKind kind = WaitKind::spin;
  std::uint64_t timeout_ns = 10'000'000'000ull;
  std::function<bool()> alive = [] { return true; };

  queue::WaitOptions options() const {
    queue::WaitOptions o;
    o.policy =
        kind == WaitKind::spin ? queue::WaitPolicy::spin : queue::WaitPolicy::spin_then_sleep;
    o.deadline = core::Deadline::after(std::chrono::nanoseconds(timeout_ns));
    return o;
  }
  bool notify() const { return kind == WaitKind::sleep; }
};

// ---- SpscRing ----------------------------------------------------------------

template <class T>
WaitResult push_one(SpscRing<T>& q, const T& m, const Waiter& w) {
  WaitResult r = WaitResult::ok;
  if (!q.try_push(m)) r = queue::push_wait(q, m, w.options(), w.alive, false);
  if (r == WaitResult::ok && w.notify()) queue::wake_consumer(q);
  return r;
}

template <class T>
WaitResult pop_one(SpscRing<T>& q, T& m, const Waiter& w) {
  WaitResult r = WaitResult::ok;
  if (!q.try_pop(m)) r = queue::pop_wait(q, m, w.options(), w.alive, false);
  if (r == WaitResult::ok && w.notify()) queue::wake_producer(q);
  return r;
}

// Zero-copy: `fill(T&, i)` writes the i-th item of this batch in place.
template <class T, class Fill>
WaitResult push_batch(SpscRing<T>& q, std::size_t max, std::size_t& pushed, const Waiter& w,
                      Fill fill) {
  auto span = q.claim_write(max);
  if (span.empty()) {
    if (auto r = queue::wait_for_space(q, w.options(), w.alive); r != WaitResult::ok) return r;
    span = q.claim_write(max);
  }
  for (std::size_t i = 0; i < span.size(); ++i)
    fill(span[i], i);
  q.commit_write(span.size());
  pushed = span.size();
  if (w.notify()) queue::wake_consumer(q);
  return WaitResult::ok;
}

// Zero-copy: `visit(const T&)` reads each item in place before it is released.
template <class T, class Visit>
WaitResult pop_batch(SpscRing<T>& q, std::size_t max, std::size_t& popped, const Waiter& w,
                     Visit visit) {
  auto span = q.claim_read(max);
  if (span.empty()) {
    if (auto r = queue::wait_for_data(q, w.options(), w.alive); r != WaitResult::ok) return r;
    span = q.claim_read(max);
  }
  for (const T& m : span)
    visit(m);
  q.commit_read(span.size());
  popped = span.size();
  if (w.notify()) queue::wake_producer(q);
  return WaitResult::ok;
}

// ---- MutexQueue ----------------------------------------------------------------

// Condition-variable waits in slices, so a dead peer is noticed.
template <class Attempt>
WaitResult mutex_wait(const Waiter& w, Attempt attempt) {
  const auto deadline = core::Deadline::after(std::chrono::nanoseconds(w.timeout_ns));
  for (;;) {
    const auto slice = core::Deadline::at(
        std::min(deadline.ns(), core::now_ns() + queue::WaitOptions{}.liveness_interval_ns));
    if (attempt(slice)) return WaitResult::ok;
    if (!w.alive()) return WaitResult::peer_dead;
    if (deadline.expired()) return WaitResult::timed_out;
  }
}

template <class T>
WaitResult push_one(MutexQueue<T>& q, const T& m, const Waiter& w) {
  if (q.try_push(m)) return WaitResult::ok;
  return mutex_wait(w, [&](core::Deadline d) { return q.push_wait(m, d); });
}

template <class T>
WaitResult pop_one(MutexQueue<T>& q, T& m, const Waiter& w) {
  if (q.try_pop(m)) return WaitResult::ok;
  return mutex_wait(w, [&](core::Deadline d) { return q.pop_wait(m, d); });
}

// The mutex queue has no in-place access: batches go through a local buffer
// with push_n / pop_n (one lock per batch).
template <class T, class Fill>
WaitResult push_batch(MutexQueue<T>& q, std::size_t max, std::size_t& pushed, const Waiter& w,
                      Fill fill) {
  thread_local std::vector<T> buf;
  buf.resize(max);
  for (std::size_t i = 0; i < max; ++i)
    fill(buf[i], i);
  std::size_t done = q.push_n(buf.data(), max);
  while (done < max) {
    if (auto r = push_one(q, buf[done], w); r != WaitResult::ok) {
      pushed = done;
      return r;
    }
    ++done;
    done += q.push_n(buf.data() + done, max - done);
  }
  pushed = done;
  return WaitResult::ok;
}

template <class T, class Visit>
WaitResult pop_batch(MutexQueue<T>& q, std::size_t max, std::size_t& popped, const Waiter& w,
                     Visit visit) {
  thread_local std::vector<T> buf;
  buf.resize(max);
  std::size_t n = q.pop_n(buf.data(), max);
  if (n == 0) {
    if (auto r = pop_one(q, buf[0], w); r != WaitResult::ok) return r;
    n = 1 + q.pop_n(buf.data() + 1, max - 1);
  }
  for (std::size_t i = 0; i < n; ++i)
    visit(buf[i]);
  popped = n;
  return WaitResult::ok;
}

}  // namespace ringwire::tools
