// Channel: a named one-producer / one-consumer pipe for variable-length
// messages between processes, zero-copy on both sides.
//
// A Channel is a ShmSegment (validated header: magic, ABI, layout hash,
// session id, creator identity) whose payload is a ChannelControl followed by
// a ByteRing. Either side may create it; the other opens it by name. Each
// side registers its PID and start time in the segment header, so the other
// can tell "slow" from "dead".
//
// Hot path: loan / commit / publish on one side, receive / release on the
// other; with both sides busy that is plain loads and stores, no syscall and
// no RMW. Waiting (ring full / empty) follows the channel's WaitStrategy and
// always ends: at the caller's deadline, when the peer is found dead (PID +
// start time, checked every liveness interval), or when the segment was
// closed or re-created under us (session id, and a re-open of the name to
// catch a new segment under the same name: the seed's "ghost slab").
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "ringwire/core/clock.hpp"
#include "ringwire/core/status.hpp"
#include "ringwire/ipc/byte_ring.hpp"
#include "ringwire/shm/shm_segment.hpp"

namespace ringwire::ipc {

enum class WaitStrategy : std::uint32_t {
  spin = 0,        // busy-wait with `pause`; lowest latency, burns the core
  spin_yield = 1,  // spin a while, then sched_yield between checks
  spin_futex = 2,  // spin a while, then sleep on a futex; woken only if asleep
};
enum class FullPolicy : std::uint32_t {
  block = 0,  // wait for space until the deadline
  fail = 1,   // return would_block at once
  drop = 2,   // discard the message, count it, return would_block
};
const char* wait_strategy_name(WaitStrategy w) noexcept;
const char* full_policy_name(FullPolicy p) noexcept;
bool parse_wait_strategy(std::string_view s, WaitStrategy& out) noexcept;
bool parse_full_policy(std::string_view s, FullPolicy& out) noexcept;

struct ChannelOptions {
  std::uint64_t capacity = std::uint64_t{1} << 20;  // data bytes, a power of two >= 64
  std::uint64_t max_message = 0;                    // 0: the largest the capacity allows
  WaitStrategy wait = WaitStrategy::spin_futex;
  FullPolicy full = FullPolicy::block;
  bool huge_pages = false;  // ask for transparent huge pages; falls back silently
  std::uint32_t spin_rounds = 4096;
  std::uint64_t liveness_interval_ns = 10'000'000;     // peer / session checks while waiting
  std::uint64_t name_check_interval_ns = 100'000'000;  // re-open of the name while waiting
};

struct ChannelOpenOptions {
  std::uint64_t wait_ready_ns = 1'000'000'000;
  std::uint32_t spin_rounds = 4096;
  std::uint64_t liveness_interval_ns = 10'000'000;
  std::uint64_t name_check_interval_ns = 100'000'000;
};

enum class ChannelRole : std::uint32_t { producer = 0, consumer = 1 };

// Stored at the start of the payload; immutable after creation.
struct alignas(core::kFalseSharingRange) ChannelControl {
  std::uint32_t wait_strategy;  // WaitStrategy
  std::uint32_t full_policy;    // FullPolicy
  std::uint32_t huge_pages;     // 1 when the creator's madvise(MADV_HUGEPAGE) succeeded
  std::uint32_t reserved0;
  std::uint64_t ring_offset;  // from the payload start
  std::uint64_t ring_bytes;
};
static_assert(sizeof(ChannelControl) == core::kFalseSharingRange);

inline constexpr std::uint64_t kChannelLayoutHash = shm::layout_fingerprint(
    0x43484e4c /* "CHNL" */, sizeof(ChannelControl), sizeof(ByteRingControl),
    offsetof(ByteRingControl, tail), offsetof(ByteRingControl, head),
    offsetof(ByteRingControl, capacity), offsetof(ByteRingControl, wait), sizeof(RecordHeader));

struct ChannelStats {
  std::uint64_t messages = 0;  // published by the producer
  std::uint64_t bytes = 0;
  std::uint64_t drops = 0;
  std::uint64_t wakeups = 0;  // FUTEX_WAKE calls issued by either side
  std::uint64_t used_bytes = 0;
  std::uint64_t capacity = 0;
};

class Channel {
 public:
  static core::Result<Channel> create(std::string_view name, ChannelRole role,
                                      const ChannelOptions& options = {});
  static core::Result<Channel> open(std::string_view name, ChannelRole role,
                                    const ChannelOpenOptions& options = {});

  Channel(Channel&&) noexcept;
  Channel& operator=(Channel&&) noexcept;
  ~Channel();

  // ---- producer ----
  // Room for n bytes, waiting per the full policy until `deadline` (commits
  // not yet published are published before it waits). Errors:
  // would_block (full, policy fail/drop), timed_out, peer_dead,
  // session_changed / closed, corrupted, invalid_argument (n out of range).
  core::Result<std::span<std::byte>> loan(std::size_t n, core::Deadline deadline);
  void commit(std::size_t used, std::uint16_t type = 0, std::uint16_t flags = 0) noexcept {
    ring_.commit(used, type, flags);
  }
  // Publishes every committed message and wakes the consumer if it sleeps.
  void publish() noexcept;
  // Copying convenience: loan, copy, commit, publish.
  core::Status send(std::span<const std::byte> data, std::uint16_t type, core::Deadline deadline);

  // ---- consumer ----
  // The next message, in place, valid until release(). A consumer that
  // batches releases must release() before a receive() that may wait: the
  // producer may be waiting for exactly the space it holds. Waits until
  // `deadline`. Errors: timed_out, peer_dead (after every published message
  // was delivered), session_changed / closed, corrupted.
  core::Result<RecordView> receive(core::Deadline deadline);
  // Non-waiting: ok, or would_block when empty, or the error.
  core::Result<RecordView> try_receive();
  // Hands every received message back and wakes the producer if it sleeps.
  void release() noexcept;

  // ---- either side ----
  // ok while the peer (if it ever attached) lives and the segment is ours.
  core::Status check();
  void heartbeat() noexcept;
  ChannelStats stats() const noexcept;
  ChannelRole role() const noexcept { return role_; }
  WaitStrategy wait_strategy() const noexcept { return wait_; }
  FullPolicy full_policy() const noexcept { return full_; }
  std::uint64_t max_message() const noexcept { return ring_.max_message(); }
  ByteRing& ring() noexcept { return ring_; }
  shm::ShmSegment& segment() noexcept { return *seg_; }

 private:
  Channel(shm::ShmSegment seg, ByteRing ring, ChannelRole role, WaitStrategy wait, FullPolicy full);
  template <class Ready>
  core::Status wait_for(Ready ready, bool producer_side, core::Deadline deadline);

  std::unique_ptr<shm::ShmSegment> seg_;
  ByteRing ring_;
  ChannelRole role_;
  WaitStrategy wait_;
  FullPolicy full_;
  std::uint32_t spin_rounds_ = 4096;
  std::uint64_t liveness_interval_ns_ = 10'000'000;
  std::uint64_t name_check_interval_ns_ = 100'000'000;
  std::uint64_t next_name_check_ns_ = 0;
};

}  // namespace ringwire::ipc

namespace ringwire {
using ipc::Channel;
}
