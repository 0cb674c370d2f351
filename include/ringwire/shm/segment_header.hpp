// The versioned header at offset 0 of every ringwire shared-memory segment.
// Its layout is part of the ABI: pinned below with static_asserts and folded
// into kHeaderLayoutHash, which every attach compares.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "ringwire/core/cache_line.hpp"

namespace ringwire::shm {

inline constexpr std::uint64_t kMagic = 0x314d485357474e52ull;  // "RNGWSHM1" little-endian
inline constexpr std::uint32_t kAbiVersion = 1;

enum class SegmentState : std::uint32_t { initializing = 1, ready = 2, closed = 3 };

// What the payload holds; a tool that finds another kind refuses to attach.
enum class SegmentKind : std::uint32_t {
  raw = 0,
  spsc_ring = 1,
  mutex_queue = 2,
  spsc_ring_pair = 3,  // request + response rings (ping-pong)
  mutex_queue_pair = 4,
  channel = 5,   // ipc::Channel: one ByteRing, one producer, one consumer
  mailbox = 6,   // ipc::Mailbox: one ByteRing lane per producer, one consumer
  kv_cache = 7,  // kv::cache: seqlocked hash table of KV entries, written by kv_cache
};
const char* segment_kind_name(std::uint32_t kind) noexcept;

enum class PeerRole : std::uint32_t { producer = 0, consumer = 1 };
inline constexpr std::size_t kPeerSlots = 2;

// A process attached in some role. The PID is published last (release) and
// read first (acquire), so a reader that sees a PID sees its start time too.
struct PeerSlot {
  std::atomic<std::int32_t> pid{0};
  std::uint32_t reserved = 0;
  std::atomic<std::uint64_t> start_time{0};
  std::atomic<std::uint64_t> heartbeat_ns{0};  // CLOCK_MONOTONIC, refreshed by the peer
};

struct alignas(core::kFalseSharingRange) SegmentHeader {
  std::uint64_t magic;
  std::uint32_t abi_version;
  std::uint32_t header_size;
  std::uint64_t layout_hash;  // header layout combined with the payload's layout
  std::uint32_t kind;         // SegmentKind
  std::uint32_t element_size;
  std::uint64_t capacity;
  std::uint64_t payload_offset;
  std::uint64_t payload_size;
  std::uint64_t total_size;
  std::uint64_t session_id;  // random per creation: detects a re-created segment
  std::int32_t creator_pid;
  std::uint32_t reserved0;
  std::uint64_t creator_start_time;
  std::uint64_t created_unix_ns;
  std::atomic<std::uint32_t> state;  // SegmentState
  std::uint32_t reserved1;
  PeerSlot peers[kPeerSlots];
};

static_assert(std::is_standard_layout_v<SegmentHeader>);
static_assert(std::atomic<std::uint32_t>::is_always_lock_free);
static_assert(offsetof(SegmentHeader, magic) == 0);
static_assert(offsetof(SegmentHeader, abi_version) == 8);
static_assert(offsetof(SegmentHeader, layout_hash) == 16);
static_assert(offsetof(SegmentHeader, kind) == 24);
static_assert(offsetof(SegmentHeader, capacity) == 32);
static_assert(offsetof(SegmentHeader, session_id) == 64);
static_assert(offsetof(SegmentHeader, creator_pid) == 72);
static_assert(offsetof(SegmentHeader, state) == 96);
static_assert(offsetof(SegmentHeader, peers) == 104);
static_assert(sizeof(PeerSlot) == 24);
static_assert(sizeof(SegmentHeader) == 256);

// FNV-1a over a list of numbers: a compile-time fingerprint of a layout.
constexpr std::uint64_t fnv1a(std::uint64_t h, std::uint64_t v) noexcept {
  for (int i = 0; i < 8; ++i) {
    h ^= (v >> (8 * i)) & 0xff;
    h *= 0x100000001b3ull;
  }
  return h;
}
template <class... V>
constexpr std::uint64_t layout_fingerprint(V... values) noexcept {
  std::uint64_t h = 0xcbf29ce484222325ull;
  ((h = fnv1a(h, static_cast<std::uint64_t>(values))), ...);
  return h;
}

inline constexpr std::uint64_t kHeaderLayoutHash = layout_fingerprint(
    kAbiVersion, sizeof(SegmentHeader), offsetof(SegmentHeader, session_id),
    offsetof(SegmentHeader, state), offsetof(SegmentHeader, peers), sizeof(PeerSlot));

}  // namespace ringwire::shm
