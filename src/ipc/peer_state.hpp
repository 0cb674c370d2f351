// "Left on purpose" flags for the two peer roles of a segment header. A peer
// that closes its handle sets its flag, so the other side can tell a clean
// exit ("closed") from a crash ("peer dead"). The flag lives in the spare
// 32-bit word of the role's PeerSlot and is accessed atomically.
#pragma once

#include <atomic>
#include <cstdint>

#include "ringwire/shm/segment_header.hpp"

namespace ringwire::ipc {

inline std::atomic_ref<std::uint32_t> left_flag(shm::SegmentHeader& h, shm::PeerRole r) noexcept {
  return std::atomic_ref<std::uint32_t>(h.peers[static_cast<std::size_t>(r)].reserved);
}
// release / acquire: whatever the leaver published before leaving is seen by
// a peer that sees the flag.
inline void mark_left(shm::SegmentHeader& h, shm::PeerRole r) noexcept {
  left_flag(h, r).store(1, std::memory_order_release);
}
inline void clear_left(shm::SegmentHeader& h, shm::PeerRole r) noexcept {
  left_flag(h, r).store(0, std::memory_order_release);
}
inline bool has_left(shm::SegmentHeader& h, shm::PeerRole r) noexcept {
  return left_flag(h, r).load(std::memory_order_acquire) != 0;
}

}  // namespace ringwire::ipc
