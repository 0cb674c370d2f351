// SpscRing<T>: a bounded single-producer / single-consumer ring.
//
// Invariants (every method relies on them):
//  * `tail` counts items ever pushed, `head` items ever popped. Both are 64-bit
//    and only grow, so they never wrap in practice (2^64 items at 1e9/s take
//    584 years). slot(i) = i & mask; full is tail - head == capacity and empty
//    is tail == head, so no slot is wasted.
//  * Only the producer writes `tail`; only the consumer writes `head`. Each
//    sits on its own 128-byte block in the shared control block, so the two
//    cores never write the same line pair.
//  * Each side keeps, in the handle's private memory, its own index (it is
//    the only writer, so it never needs to read it back from shared memory)
//    and a cached copy of the other side's index, reloaded from shared memory
//    only when the cache says full (producer) or empty (consumer). The two
//    private views are 128 bytes apart too, so one handle may be shared by a
//    producer thread and a consumer thread.
//  * Slots in [head, tail) belong to the consumer, the rest to the producer.
//    Ownership moves only through the release store of an index and the
//    matching acquire load on the other side.
//  * The control block holds no pointers, only integers, so the ring may live
//    in a MAP_SHARED segment mapped at different addresses in two processes.
//    The handle (this class) keeps the mask and its own index in private
//    memory: a peer that scribbles on the shared bytes can corrupt data, but
//    never make us index outside the slot array or move our own index.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <span>
#include <type_traits>

#include "ringwire/core/cache_line.hpp"
#include "ringwire/core/status.hpp"
#include "ringwire/queue/ring_storage.hpp"

namespace ringwire::queue {

// Futex words used by the blocking adapter (blocking.hpp). They sit on their
// own line: written only when a side goes to sleep, read by the other side
// after it publishes, so on the fast path the line stays shared and cheap.
struct alignas(core::kFalseSharingRange) RingWaitWords {
  std::atomic<std::uint32_t> data_seq{0};           // bumped to wake a sleeping consumer
  std::atomic<std::uint32_t> consumer_sleeping{0};  // 1 while the consumer may be in futex_wait
  std::atomic<std::uint32_t> space_seq{0};          // bumped to wake a sleeping producer
  std::atomic<std::uint32_t> producer_sleeping{0};
  std::atomic<std::uint64_t> drops{0};    // items refused by the drop-and-count policy
  std::atomic<std::uint64_t> wakeups{0};  // FUTEX_WAKE calls issued, for inspection
};

struct SpscControl {
  alignas(core::kFalseSharingRange) std::atomic<std::uint64_t> tail{0};
  alignas(core::kFalseSharingRange) std::atomic<std::uint64_t> head{0};
  alignas(core::kFalseSharingRange) std::uint64_t capacity = 0;  // immutable after init
  std::uint64_t element_size = 0;                                // immutable after init
  RingWaitWords wait;
};
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);
static_assert(std::is_standard_layout_v<SpscControl>);
static_assert(offsetof(SpscControl, head) - offsetof(SpscControl, tail) >=
              core::kFalseSharingRange);
static_assert(offsetof(SpscControl, capacity) - offsetof(SpscControl, head) >=
              core::kFalseSharingRange);
static_assert(sizeof(SpscControl) == 4 * core::kFalseSharingRange);

template <class T>
class SpscRing {
  static_assert(std::is_trivially_copyable_v<T>, "ring slots are copied as raw bytes");

 public:
  using value_type = T;

  static constexpr std::size_t bytes_for(std::uint64_t capacity) noexcept {
    return ring_bytes<SpscControl, T>(capacity);
  }

  // An in-process ring on the heap. Throws std::invalid_argument on a bad capacity.
  explicit SpscRing(std::uint64_t capacity) {
    if (auto st = check_capacity(capacity); !st) throw std::invalid_argument(st.message());
    owned_ = OwnedBytes(bytes_for(capacity));
    init_at(owned_.get(), capacity);
  }

  // Builds a fresh ring inside `mem` (e.g. a new segment). `mem` must be
  // 128-byte aligned and hold bytes_for(capacity).
  static core::Result<SpscRing> create_in(void* mem, std::size_t bytes, std::uint64_t capacity) {
    if (auto st = check_capacity(capacity); !st) return st;
    if (bytes < bytes_for(capacity)) {
      return core::Result<SpscRing>(core::Errc::geometry_mismatch,
                                    "region of " + std::to_string(bytes) +
                                        " bytes is smaller than the " +
                                        std::to_string(bytes_for(capacity)) + " the ring needs");
    }
    SpscRing r;
    r.init_at(mem, capacity);
    return r;
  }

  // Attaches to a ring another process built in `mem`; the geometry stored
  // there is untrusted and checked against `bytes` before it is used.
  static core::Result<SpscRing> attach(void* mem, std::size_t bytes) {
    if (bytes < sizeof(SpscControl)) {
      return core::Result<SpscRing>(core::Errc::geometry_mismatch, "region too small for a ring");
    }
    auto* c = static_cast<SpscControl*>(mem);
    const std::uint64_t cap = c->capacity;
    if (!check_capacity(cap) || c->element_size != sizeof(T) || bytes_for(cap) > bytes) {
      return core::Result<SpscRing>(
          core::Errc::geometry_mismatch,
          "ring header says capacity " + std::to_string(cap) + " x " +
              std::to_string(c->element_size) + " bytes, expected elements of " +
              std::to_string(sizeof(T)) + " bytes within " + std::to_string(bytes));
    }
    SpscRing r;
    r.bind(mem, cap);
    return r;
  }

  SpscRing(SpscRing&&) noexcept = default;
  SpscRing& operator=(SpscRing&&) noexcept = default;

  std::uint64_t capacity() const noexcept { return mask_ + 1; }
  SpscControl& control() noexcept { return *c_; }

  // ---- producer side -------------------------------------------------------

  bool try_push(const T& item) noexcept {
    const std::uint64_t t = p_.tail;
    if (t - p_.cached_head >= capacity() && refresh_head(t) == 0) return false;
    slots_[t & mask_] = item;
    p_.tail = t + 1;
    // release: the slot write above happens-before any consumer that sees t+1.
    c_->tail.store(t + 1, std::memory_order_release);
    return true;
  }

  // Pushes up to n items with one index publication; returns how many.
  std::size_t push_n(const T* items, std::size_t n) noexcept {
    auto first = claim_write_after(0, n);
    std::size_t done = first.size();
    std::memcpy(static_cast<void*>(first.data()), items, done * sizeof(T));
    // A second run at slot 0 only if the first stopped at the array's end.
    if (done < n && first.data() + done == slots_ + capacity()) {
      auto rest = claim_write_after(done, n - done);
      std::memcpy(static_cast<void*>(rest.data()), items + done, rest.size() * sizeof(T));
      done += rest.size();
    }
    commit_write(done);
    return done;
  }

  // Zero-copy: up to `max` contiguous free slots to fill in place. Nothing is
  // visible to the consumer until commit_write(k), k <= the span's size.
  std::span<T> claim_write(std::size_t max) noexcept { return claim_write_after(0, max); }

  void commit_write(std::size_t n) noexcept {
    p_.tail += n;
    // release: publishes every slot written into the claimed span.
    c_->tail.store(p_.tail, std::memory_order_release);
  }

  // ---- consumer side -------------------------------------------------------

  bool try_pop(T& out) noexcept {
    const std::uint64_t h = q_.head;
    if (q_.cached_tail <= h && refresh_tail(h) == 0) return false;
    out = slots_[h & mask_];
    q_.head = h + 1;
    // release: our read of the slot completes before the producer, after its
    // acquire load of head, may overwrite it.
    c_->head.store(h + 1, std::memory_order_release);
    return true;
  }

  std::size_t pop_n(T* out, std::size_t n) noexcept {
    auto first = claim_read_after(0, n);
    std::size_t done = first.size();
    std::memcpy(static_cast<void*>(out), first.data(), done * sizeof(T));
    if (done < n && first.data() + done == slots_ + capacity()) {
      auto rest = claim_read_after(done, n - done);
      std::memcpy(static_cast<void*>(out + done), rest.data(), rest.size() * sizeof(T));
      done += rest.size();
    }
    commit_read(done);
    return done;
  }

  // Zero-copy: up to `max` contiguous filled slots to read in place. They stay
  // ours until commit_read(k) hands the first k back to the producer.
  std::span<const T> claim_read(std::size_t max) noexcept { return claim_read_after(0, max); }

  void commit_read(std::size_t n) noexcept {
    q_.head += n;
    // release: our reads of the slots complete before the producer reuses them.
    c_->head.store(q_.head, std::memory_order_release);
  }

  // ---- either side (approximate while the other side runs) -----------------

  std::uint64_t size_approx() const noexcept {
    const std::uint64_t h = c_->head.load(std::memory_order_acquire);
    const std::uint64_t t = c_->tail.load(std::memory_order_acquire);
    return t >= h ? std::min(t - h, capacity()) : 0;
  }
  bool empty_approx() const noexcept { return size_approx() == 0; }

 private:
  SpscRing() = default;

  void init_at(void* mem, std::uint64_t capacity) {
    auto* c = new (mem) SpscControl();
    c->capacity = capacity;
    c->element_size = sizeof(T);
    bind(mem, capacity);
  }
  // The private views start from what the shared indices say now: a process
  // that attaches to a running ring takes over where the last holder of its
  // role stopped.
  void bind(void* mem, std::uint64_t capacity) noexcept {
    c_ = static_cast<SpscControl*>(mem);
    slots_ = reinterpret_cast<T*>(static_cast<std::byte*>(mem) + slots_offset<SpscControl, T>());
    mask_ = capacity - 1;
    p_.tail = c_->tail.load(std::memory_order_acquire);
    p_.cached_head = c_->head.load(std::memory_order_acquire);
    q_.head = p_.cached_head;
    q_.cached_tail = p_.tail;
  }

  // Free slots after re-reading head. acquire: the consumer's reads of the
  // slots it released happen-before our overwrite of them. A head ahead of our
  // own tail (only a corrupt peer can do that) reads as "no space".
  std::uint64_t refresh_head(std::uint64_t t) noexcept {
    p_.cached_head = c_->head.load(std::memory_order_acquire);
    const std::uint64_t used = t - p_.cached_head;
    return used >= capacity() ? 0 : capacity() - used;
  }
  // Filled slots after re-reading tail. acquire: pairs with the producer's
  // release so the slot contents are visible. A tail behind our head reads as
  // empty and a distance past one ring is clamped, so a corrupt tail cannot
  // make us hand out more than one ring's worth of slots.
  std::uint64_t refresh_tail(std::uint64_t h) noexcept {
    const std::uint64_t t = c_->tail.load(std::memory_order_acquire);
    const std::uint64_t n = t >= h ? std::min(t - h, capacity()) : 0;
    q_.cached_tail = h + n;  // the cache never claims more than we checked
    return n;
  }

  // The second run of a batch that wrapped has `skip` slots already claimed.
  // Room is counted from our own index, capped at one ring, then `skip` is
  // taken off, so both runs together never exceed capacity.
  std::span<T> claim_write_after(std::size_t skip, std::size_t max) noexcept {
    const std::uint64_t t = p_.tail;
    const std::uint64_t used = t - p_.cached_head;
    std::uint64_t free = used >= capacity() ? 0 : capacity() - used;
    if (free < skip + max) free = refresh_head(t);
    free = free > skip ? free - skip : 0;
    const std::uint64_t idx = (t + skip) & mask_;
    const std::size_t n =
        static_cast<std::size_t>(std::min<std::uint64_t>({free, max, capacity() - idx}));
    return {slots_ + idx, n};
  }
  std::span<const T> claim_read_after(std::size_t skip, std::size_t max) noexcept {
    const std::uint64_t h = q_.head;
    std::uint64_t avail = q_.cached_tail >= h ? q_.cached_tail - h : 0;  // <= capacity
    if (avail < skip + max) avail = refresh_tail(h);
    avail = avail > skip ? avail - skip : 0;
    const std::uint64_t idx = (h + skip) & mask_;
    const std::size_t n =
        static_cast<std::size_t>(std::min<std::uint64_t>({avail, max, capacity() - idx}));
    return {slots_ + idx, n};
  }

  // Read-only after construction; shared by both sides' threads.
  SpscControl* c_ = nullptr;
  T* slots_ = nullptr;
  std::uint64_t mask_ = 0;  // private copy: shared bytes never steer our indexing
  OwnedBytes owned_;
  // Producer-private and consumer-private state, each on its own block.
  struct alignas(core::kFalseSharingRange) ProducerView {
    std::uint64_t tail = 0;
    std::uint64_t cached_head = 0;
  } p_;
  struct alignas(core::kFalseSharingRange) ConsumerView {
    std::uint64_t head = 0;
    std::uint64_t cached_tail = 0;  // invariant: head <= cached_tail <= head + capacity
  } q_;
};

}  // namespace ringwire::queue

namespace ringwire {
using queue::SpscRing;
}
