// Mailbox: a named many-producer-processes / one-consumer channel for
// variable-length messages, zero-copy on both sides.
//
// Design: one ByteRing ("lane") per producer, all in one segment that the
// consumer creates. A producer process claims a free lane when it opens the
// mailbox and is then the lane's only writer, so the hot path is exactly the
// SPSC ByteRing's: no RMW, no contention between producers. Why lanes rather
// than one shared ring: a producer killed in the middle of a message can only
// leave garbage beyond its own lane's published tail, which nobody reads; a
// shared multi-producer byte ring would need a reservation protocol in which a
// dead writer stalls or corrupts everyone behind it.
//
// Lane ownership: LaneSlot::owner goes 0 -> PID by CAS (the claim carries the
// identity, so a half-done claim is never anonymous), then the start time is
// stored. The consumer frees a lane whose owner left (flag) or died (PID +
// start time), but only after it has delivered every message the owner
// published. The next owner resumes at the ring's published tail.
//
// Waiting: the consumer sleeps on one mailbox-wide futex word; a producer
// checks the consumer's "asleep" flag after publishing (a full fence and a
// load; a syscall only when the consumer really sleeps). A producer waiting
// for room sleeps on its own lane's words.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ringwire/core/clock.hpp"
#include "ringwire/core/status.hpp"
#include "ringwire/ipc/byte_ring.hpp"
#include "ringwire/ipc/channel.hpp"
#include "ringwire/shm/shm_segment.hpp"

namespace ringwire::ipc {

inline constexpr std::uint32_t kMaxMailboxLanes = 256;

struct MailboxOptions {
  std::uint32_t lanes = 8;                               // producers at once
  std::uint64_t lane_capacity = std::uint64_t{1} << 16;  // bytes per lane, power of two
  std::uint64_t max_message = 0;                         // 0: the largest a lane allows
  WaitStrategy wait = WaitStrategy::spin_futex;
  FullPolicy full = FullPolicy::block;
  std::uint32_t spin_rounds = 4096;
  std::uint64_t liveness_interval_ns = 10'000'000;
  std::uint64_t name_check_interval_ns = 100'000'000;
};

struct alignas(core::kFalseSharingRange) MailboxControl {
  std::uint32_t lanes;
  std::uint32_t wait_strategy;
  std::uint32_t full_policy;
  std::uint32_t reserved0;
  std::uint64_t lane_capacity;
  std::uint64_t max_message;
  std::uint64_t lane_stride;   // bytes from one lane's ring to the next
  std::uint64_t lanes_offset;  // first lane's ring, from the payload start
  std::uint64_t slots_offset;  // LaneSlot array, from the payload start
};
static_assert(sizeof(MailboxControl) == core::kFalseSharingRange);

// The consumer's futex words: written when it goes to sleep, read by
// producers after they publish.
struct alignas(core::kFalseSharingRange) MailboxWait {
  std::atomic<std::uint32_t> data_seq{0};
  std::atomic<std::uint32_t> consumer_sleeping{0};
  std::atomic<std::uint64_t> wakeups{0};
  std::atomic<std::uint64_t> lanes_reclaimed{0};
};

struct alignas(core::kFalseSharingRange) LaneSlot {
  std::atomic<std::uint64_t> owner{0};  // PID of the producer holding the lane; 0 = free
  std::atomic<std::uint64_t> start_time{0};
  std::atomic<std::uint64_t> heartbeat_ns{0};
  std::atomic<std::uint32_t> left{0};  // 1 once the owner closed its handle
};
static_assert(sizeof(LaneSlot) == core::kFalseSharingRange);

inline constexpr std::uint64_t kMailboxLayoutHash = shm::layout_fingerprint(
    0x4d424f58 /* "MBOX" */, sizeof(MailboxControl), sizeof(MailboxWait), sizeof(LaneSlot),
    sizeof(ByteRingControl), offsetof(ByteRingControl, head), offsetof(ByteRingControl, wait),
    sizeof(RecordHeader));

struct MailboxMessage {
  std::uint32_t lane = 0;
  RecordView record;
};

struct LaneStats {
  std::int32_t owner_pid = 0;
  bool owner_alive = false;
  bool owner_left = false;
  bool quarantined = false;  // the consumer found the lane corrupt and stopped reading it
  std::uint64_t messages = 0;
  std::uint64_t bytes = 0;
  std::uint64_t drops = 0;
  std::uint64_t used_bytes = 0;
  std::uint64_t wakeups = 0;  // producer-side wake-ups issued by the consumer
};

// The consumer. It creates the segment and owns its name.
class Mailbox {
 public:
  static core::Result<Mailbox> create(std::string_view name, const MailboxOptions& options = {});

  Mailbox(Mailbox&&) noexcept;
  Mailbox& operator=(Mailbox&&) noexcept;
  ~Mailbox();

  // The next message from any lane, in place, valid until release(). As with
  // Channel, release() before a receive() that may wait. Waits
  // until `deadline`; errors: timed_out, corrupted (once per corrupt lane,
  // which is then skipped), session_changed / closed.
  core::Result<MailboxMessage> receive(core::Deadline deadline);
  core::Result<MailboxMessage> try_receive();  // would_block when empty
  // Hands back every message received so far (all lanes).
  void release() noexcept;
  // Frees lanes whose owner left or died once all their messages were
  // delivered; returns how many. receive() calls it while waiting.
  std::uint32_t reclaim_lanes();

  std::uint32_t lanes() const noexcept { return static_cast<std::uint32_t>(rings_.size()); }
  std::vector<LaneStats> lane_stats() const;
  std::uint64_t wakeups() const noexcept;
  std::uint64_t max_message() const noexcept { return max_message_; }
  shm::ShmSegment& segment() noexcept { return *seg_; }

 private:
  Mailbox() = default;
  bool any_readable() noexcept;

  std::unique_ptr<shm::ShmSegment> seg_;
  MailboxWait* wait_words_ = nullptr;
  LaneSlot* slots_ = nullptr;
  std::vector<ByteRing> rings_;
  std::vector<std::uint8_t> dirty_;  // lanes with records read but not released
  std::vector<std::uint8_t> quarantined_;
  std::uint32_t next_lane_ = 0;
  std::uint32_t burst_ = 0;
  std::uint64_t max_message_ = 0;
  WaitStrategy wait_ = WaitStrategy::spin_futex;
  std::uint32_t spin_rounds_ = 4096;
  std::uint64_t liveness_interval_ns_ = 10'000'000;
};

struct MailboxProducerOptions {
  std::uint64_t wait_ready_ns = 1'000'000'000;
  std::uint32_t spin_rounds = 4096;
  std::uint64_t liveness_interval_ns = 10'000'000;
  std::uint64_t name_check_interval_ns = 100'000'000;
};

// One producer process (or thread: a process may hold several, one lane each).
class MailboxProducer {
 public:
  // Claims a free lane. Errors: not_found / kind_mismatch / ... from the
  // segment, would_block when every lane is taken.
  static core::Result<MailboxProducer> open(std::string_view name,
                                            const MailboxProducerOptions& options = {});

  MailboxProducer(MailboxProducer&&) noexcept;
  MailboxProducer& operator=(MailboxProducer&&) noexcept;
  ~MailboxProducer();

  core::Result<std::span<std::byte>> loan(std::size_t n, core::Deadline deadline);
  void commit(std::size_t used, std::uint16_t type = 0, std::uint16_t flags = 0) noexcept {
    ring_.commit(used, type, flags);
  }
  void publish() noexcept;
  core::Status send(std::span<const std::byte> data, std::uint16_t type, core::Deadline deadline);
  // ok while the consumer lives and the segment is still the one we opened.
  core::Status check();

  std::uint32_t lane() const noexcept { return lane_; }
  std::uint64_t max_message() const noexcept { return ring_.max_message(); }

 private:
  MailboxProducer(shm::ShmSegment seg, ByteRing ring) noexcept;

  std::unique_ptr<shm::ShmSegment> seg_;
  ByteRing ring_;
  MailboxWait* wait_words_ = nullptr;
  LaneSlot* slot_ = nullptr;
  std::uint32_t lane_ = 0;
  WaitStrategy wait_ = WaitStrategy::spin_futex;
  FullPolicy full_ = FullPolicy::block;
  std::uint32_t spin_rounds_ = 4096;
  std::uint64_t liveness_interval_ns_ = 10'000'000;
  std::uint64_t name_check_interval_ns_ = 100'000'000;
  std::uint64_t next_name_check_ns_ = 0;
};

}  // namespace ringwire::ipc

namespace ringwire {
using ipc::Mailbox;
using ipc::MailboxProducer;
}  // namespace ringwire
