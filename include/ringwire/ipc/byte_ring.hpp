// ByteRing: a single-producer / single-consumer ring of variable-length
// records, zero-copy on both sides, meant to live in shared memory.
//
// Layout: a control block, then `capacity` data bytes (a power of two, at
// least 64). A record is an 8-byte RecordHeader {length, type, flags}
// followed by `length` payload bytes, padded to a multiple of 8. A record is
// always contiguous: when the next one does not fit before the end of the
// data area, the producer writes a padding record (type kPadType) that
// covers the rest and starts again at offset 0.
//
// Invariants:
//  * `tail` (producer) and `head` (consumer) count bytes ever published /
//    released. Both only grow, are multiples of 8, and tail - head <=
//    capacity. offset = position & (capacity - 1).
//  * Bytes in [head, tail) belong to the consumer, the rest to the producer;
//    ownership moves only through a release store of an index and the
//    acquire load of it on the other side (see publish() and release()).
//  * Each side keeps its own position and a cached copy of the other side's
//    index in private memory, and reloads the shared index only when the
//    cache says full / empty. The shared indices sit 128 bytes apart.
//  * Nothing read from shared memory is trusted: the peer's index is checked
//    against our own (it may only move forward and by at most capacity) and
//    every record header is copied out once, then bounds-checked against the
//    published range, the end of the data area and max_message before a
//    span over it is formed. A violation makes the handle report `corrupted`
//    from then on; it never reads or writes outside the mapping.
//  * No pointers in shared memory, only integers.
//
// The ring makes no syscalls and never blocks; waiting and waking live in
// the ipc layer (channel.hpp), which uses the wait words in the control block.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <type_traits>

#include "ringwire/core/cache_line.hpp"
#include "ringwire/core/status.hpp"
#include "ringwire/queue/ring_storage.hpp"
#include "ringwire/queue/spsc_ring.hpp"

namespace ringwire::ipc {

struct RecordHeader {
  std::uint32_t length;  // payload bytes, not counting this header or padding
  std::uint16_t type;    // caller-defined; kPadType is reserved
  std::uint16_t flags;   // caller-defined
};
static_assert(sizeof(RecordHeader) == 8);

inline constexpr std::uint16_t kPadType = 0xFFFF;
inline constexpr std::size_t kRecordAlign = 8;
inline constexpr std::uint64_t kMinByteRingCapacity = 64;

constexpr std::uint64_t record_bytes(std::uint64_t payload) noexcept {
  return (sizeof(RecordHeader) + payload + kRecordAlign - 1) & ~std::uint64_t{kRecordAlign - 1};
}

struct ByteRingControl {
  // Producer line: written by the producer only.
  alignas(core::kFalseSharingRange) std::atomic<std::uint64_t> tail{0};
  std::atomic<std::uint64_t> messages{0};  // records published (not counting padding)
  std::atomic<std::uint64_t> bytes{0};     // payload bytes published
  std::atomic<std::uint64_t> drops{0};     // messages refused by a drop policy
  // Consumer line: written by the consumer only.
  alignas(core::kFalseSharingRange) std::atomic<std::uint64_t> head{0};
  // Immutable after init.
  alignas(core::kFalseSharingRange) std::uint64_t capacity = 0;
  std::uint64_t max_message = 0;
  // Futex words and wake-up counter (see queue/blocking.hpp).
  queue::RingWaitWords wait;
};
static_assert(std::is_standard_layout_v<ByteRingControl>);
static_assert(offsetof(ByteRingControl, head) - offsetof(ByteRingControl, tail) >=
              core::kFalseSharingRange);
static_assert(sizeof(ByteRingControl) == 4 * core::kFalseSharingRange);

// A record as the consumer sees it: valid until the next release().
struct RecordView {
  std::uint16_t type = 0;
  std::uint16_t flags = 0;
  std::span<const std::byte> data;
};

enum class ReadStatus { ok, empty, corrupted };

class ByteRing {
 public:
  static constexpr std::size_t data_offset() noexcept {
    return queue::align_up(sizeof(ByteRingControl), core::kFalseSharingRange);
  }
  static constexpr std::size_t bytes_for(std::uint64_t capacity) noexcept {
    return data_offset() + static_cast<std::size_t>(capacity);
  }
  // The largest payload a ring of `capacity` bytes can carry: one record may
  // need a padding record in front of it, so it must fit in half the ring.
  static constexpr std::uint64_t max_message_for(std::uint64_t capacity) noexcept {
    return capacity / 2 - sizeof(RecordHeader);
  }

  static core::Status check_geometry(std::uint64_t capacity, std::uint64_t max_message) {
    if (!queue::is_power_of_two(capacity) || capacity < kMinByteRingCapacity ||
        capacity > queue::kMaxCapacity) {
      return {core::Errc::invalid_argument,
              "byte ring capacity must be a power of two between 64 and 2^32 bytes, got " +
                  std::to_string(capacity)};
    }
    if (max_message == 0 || max_message > max_message_for(capacity)) {
      return {core::Errc::invalid_argument, "max message must be between 1 and " +
                                                std::to_string(max_message_for(capacity)) +
                                                " bytes for a " + std::to_string(capacity) +
                                                "-byte ring, got " + std::to_string(max_message)};
    }
    return {};
  }

  // Builds a new, empty ring in `mem` (128-byte aligned, bytes_for(capacity)).
  static core::Result<ByteRing> create_in(void* mem, std::size_t bytes, std::uint64_t capacity,
                                          std::uint64_t max_message) {
    if (auto st = check_geometry(capacity, max_message); !st) return st;
    if (bytes < bytes_for(capacity)) {
      return core::Result<ByteRing>(core::Errc::geometry_mismatch, "region too small for ring");
    }
    auto* c = new (mem) ByteRingControl();
    c->capacity = capacity;
    c->max_message = max_message;
    std::memset(static_cast<std::byte*>(mem) + data_offset(), 0, capacity);
    return ByteRing(mem, capacity, max_message);
  }

  // Attaches to a ring built elsewhere; the stored geometry is checked
  // against the region first and then kept privately.
  static core::Result<ByteRing> attach(void* mem, std::size_t bytes) {
    if (bytes < sizeof(ByteRingControl)) {
      return core::Result<ByteRing>(core::Errc::geometry_mismatch, "region too small for a ring");
    }
    auto* c = static_cast<ByteRingControl*>(mem);
    const std::uint64_t cap = c->capacity, max = c->max_message;
    if (!check_geometry(cap, max) || bytes_for(cap) > bytes) {
      return core::Result<ByteRing>(core::Errc::geometry_mismatch,
                                    "byte ring header says capacity " + std::to_string(cap) +
                                        ", max message " + std::to_string(max) +
                                        ", which does not fit a region of " +
                                        std::to_string(bytes) + " bytes");
    }
    ByteRing r(mem, cap, max);
    // Pick up where the previous holder of each role left off. A producer
    // resumes at the published tail (anything written beyond it was never
    // published), a consumer at the released head.
    r.p_.write = r.p_.published = c->tail.load(std::memory_order_acquire);
    r.p_.cached_head = c->head.load(std::memory_order_acquire);
    r.q_.read = r.q_.released = r.p_.cached_head;
    r.q_.cached_tail = r.p_.write;
    if ((r.p_.write & 7) || (r.q_.read & 7) || r.p_.write - r.q_.read > cap) {
      return core::Result<ByteRing>(core::Errc::corrupted,
                                    "byte ring indices are inconsistent (head " +
                                        std::to_string(r.q_.read) + ", tail " +
                                        std::to_string(r.p_.write) + ")");
    }
    return r;
  }

  ByteRing(ByteRing&&) noexcept = default;
  ByteRing& operator=(ByteRing&&) noexcept = default;

  std::uint64_t capacity() const noexcept { return mask_ + 1; }
  std::uint64_t max_message() const noexcept { return max_message_; }
  ByteRingControl& control() noexcept { return *c_; }
  const ByteRingControl& control() const noexcept { return *c_; }

  // ---- producer ------------------------------------------------------------

  // Room for a payload of `n` bytes (1 <= n <= max_message), to be written in
  // place. Empty when the ring is full (or n is out of range, or the
  // consumer's index is corrupt: see producer_corrupted()). A loan that is
  // not committed costs nothing; a new loan replaces it.
  std::span<std::byte> loan(std::size_t n) noexcept {
    if (n == 0 || n > max_message_ || p_.corrupted) return {};
    const std::uint64_t need = record_bytes(n);
    std::uint64_t w = p_.write;
    const std::uint64_t offset = w & mask_;
    const std::uint64_t to_end = capacity() - offset;
    const std::uint64_t pad = need > to_end ? to_end : 0;
    if (!has_room(w, pad + need)) return {};
    if (pad != 0) {
      // The padding record is ours to write: [w, w + pad) is free space.
      const RecordHeader h{static_cast<std::uint32_t>(pad - sizeof(RecordHeader)), kPadType, 0};
      std::memcpy(data_ + offset, &h, sizeof h);
      w += pad;
      p_.write = w;  // unpublished until publish(); a later loan starts after it
    }
    p_.loan_pos = w;
    p_.loan_size = n;
    return {data_ + (w & mask_) + sizeof(RecordHeader), n};
  }

  // Finishes the current loan with `used` payload bytes (<= the loan's size;
  // 0 or no loan: nothing happens). The record is not visible to the
  // consumer until publish(), so several commits can go out in one publish.
  void commit(std::size_t used, std::uint16_t type = 0, std::uint16_t flags = 0) noexcept {
    if (p_.loan_size == 0 || used == 0 || used > p_.loan_size || type == kPadType) return;
    const RecordHeader h{static_cast<std::uint32_t>(used), type, flags};
    std::memcpy(data_ + (p_.loan_pos & mask_), &h, sizeof h);
    p_.write = p_.loan_pos + record_bytes(used);
    p_.loan_size = 0;
    ++p_.pending_messages;
    p_.pending_bytes += used;
  }

  // Makes every committed record visible. Returns false if there was nothing
  // new (so the caller can skip waking the consumer).
  bool publish() noexcept {
    if (p_.write == p_.published) return false;
    // relaxed: statistics for inspection only; nothing is ordered by them.
    c_->messages.store(c_->messages.load(std::memory_order_relaxed) + p_.pending_messages,
                       std::memory_order_relaxed);
    c_->bytes.store(c_->bytes.load(std::memory_order_relaxed) + p_.pending_bytes,
                    std::memory_order_relaxed);
    p_.pending_messages = p_.pending_bytes = 0;
    p_.published = p_.write;
    // release: every header and payload byte written before this store is
    // visible to a consumer whose acquire load sees the new tail.
    c_->tail.store(p_.write, std::memory_order_release);
    return true;
  }

  // Copying convenience: loan + memcpy + commit + publish. False when full.
  bool try_write(const void* src, std::size_t n, std::uint16_t type = 0,
                 std::uint16_t flags = 0) noexcept {
    auto span = loan(n);
    if (span.empty()) return false;
    std::memcpy(span.data(), src, n);
    commit(n, type, flags);
    publish();
    return true;
  }

  // True when a loan of n bytes would succeed now (reloads the head).
  bool writable(std::size_t n) noexcept {
    if (n == 0 || n > max_message_ || p_.corrupted) return false;
    const std::uint64_t need = record_bytes(n);
    const std::uint64_t to_end = capacity() - (p_.write & mask_);
    return has_room(p_.write, (need > to_end ? to_end : 0) + need);
  }
  bool producer_corrupted() const noexcept { return p_.corrupted; }
  void count_drop() noexcept {
    // relaxed: a statistic; only the producer writes it.
    c_->drops.store(c_->drops.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }

  // ---- consumer ------------------------------------------------------------

  // The next record, valid (in place, read-only) until release(). Several
  // records can be read before one release() hands them all back.
  ReadStatus read(RecordView& out) noexcept {
    if (q_.corrupted) return ReadStatus::corrupted;
    for (;;) {
      std::uint64_t r = q_.read;
      if (q_.cached_tail == r) {
        // acquire: pairs with the producer's release of tail; the records
        // below it are fully written.
        const std::uint64_t t = c_->tail.load(std::memory_order_acquire);
        // The tail may only have moved forward, stay 8-aligned, and never
        // run more than a ring ahead of what we released.
        if ((t & 7) != 0 || t - r > capacity() || t - q_.released > capacity()) {
          return fail(t < r ? "tail moved backwards" : "tail ran past the free space");
        }
        q_.cached_tail = t;
        if (t == r) return ReadStatus::empty;
      }
      const std::uint64_t avail = q_.cached_tail - r;
      const std::uint64_t offset = r & mask_;
      const std::uint64_t to_end = capacity() - offset;
      RecordHeader h;
      // One copy: the producer could rewrite the header while we check it.
      std::memcpy(&h, data_ + offset, sizeof h);
      if (h.type == kPadType) {
        if (h.length != to_end - sizeof(RecordHeader) || avail < to_end) {
          return fail("bad padding record");
        }
        q_.read = r + to_end;
        continue;
      }
      const std::uint64_t rec = record_bytes(h.length);
      if (h.length == 0 || h.length > max_message_ || rec > avail || rec > to_end) {
        return fail("record length " + std::to_string(h.length) + " at offset " +
                    std::to_string(offset) + " is out of bounds");
      }
      out.type = h.type;
      out.flags = h.flags;
      out.data = {data_ + offset + sizeof(RecordHeader), h.length};
      q_.read = r + rec;
      return ReadStatus::ok;
    }
  }

  // Hands every record read so far back to the producer. Returns false if
  // there was nothing to release.
  bool release() noexcept {
    if (q_.read == q_.released) return false;
    q_.released = q_.read;
    // release: our reads of those records complete before the producer,
    // after its acquire load of head, overwrites them.
    c_->head.store(q_.read, std::memory_order_release);
    return true;
  }

  // True when read() would not return empty now (reloads the tail).
  bool readable() noexcept {
    if (q_.corrupted) return true;  // so a waiter wakes up and sees the error
    if (q_.cached_tail != q_.read) return true;
    return c_->tail.load(std::memory_order_acquire) != q_.read;
  }
  const std::string& corruption() const noexcept { return q_.why; }

  // Approximate fill level in bytes (any side, any time).
  std::uint64_t used_bytes() const noexcept {
    const std::uint64_t t = c_->tail.load(std::memory_order_acquire);
    const std::uint64_t h = c_->head.load(std::memory_order_acquire);
    return t >= h ? std::min(t - h, capacity()) : 0;
  }

 private:
  ByteRing(void* mem, std::uint64_t capacity, std::uint64_t max_message) noexcept
      : c_(static_cast<ByteRingControl*>(mem)),
        data_(static_cast<std::byte*>(mem) + data_offset()),
        mask_(capacity - 1),
        max_message_(max_message) {}

  bool has_room(std::uint64_t w, std::uint64_t need) noexcept {
    if (capacity() - (w - p_.cached_head) >= need) return true;
    // acquire: pairs with the consumer's release of head; it has finished
    // reading everything below it, so we may overwrite it.
    const std::uint64_t h = c_->head.load(std::memory_order_acquire);
    // The consumer's head may only be in [cached_head, published tail].
    if ((h & 7) != 0 || h - p_.cached_head > p_.published - p_.cached_head) {
      p_.corrupted = true;
      return false;
    }
    p_.cached_head = h;
    return capacity() - (w - h) >= need;
  }

  ReadStatus fail(std::string why) {
    q_.corrupted = true;
    q_.why = std::move(why);
    return ReadStatus::corrupted;
  }

  ByteRingControl* c_ = nullptr;
  std::byte* data_ = nullptr;
  std::uint64_t mask_ = 0;
  std::uint64_t max_message_ = 0;

  // Private per-side state, 128 bytes apart so one handle can serve a
  // producer thread and a consumer thread.
  struct alignas(core::kFalseSharingRange) ProducerView {
    std::uint64_t write = 0;      // end of committed records (and padding)
    std::uint64_t published = 0;  // last tail stored
    std::uint64_t cached_head = 0;
    std::uint64_t loan_pos = 0;
    std::uint64_t loan_size = 0;
    std::uint64_t pending_messages = 0;
    std::uint64_t pending_bytes = 0;
    bool corrupted = false;
  } p_;
  struct alignas(core::kFalseSharingRange) ConsumerView {
    std::uint64_t read = 0;      // next record to read
    std::uint64_t released = 0;  // last head stored
    std::uint64_t cached_tail = 0;
    bool corrupted = false;
    std::string why;
  } q_;
};

}  // namespace ringwire::ipc

namespace ringwire {
using ipc::ByteRing;
}
