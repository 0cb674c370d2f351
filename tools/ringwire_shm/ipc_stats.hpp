// Decoding of channel and mailbox segments for `ringwire-shm inspect`.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "ringwire/shm/shm_segment.hpp"

namespace ringwire::tools {

// Rings of an spsc_queue segment (spsc_ring, spsc_ring_pair).
nlohmann::json spsc_ring_stats(const std::string& name, const shm::SegmentInfo& info);
// Channel: its ring; mailbox: every lane with its owner. Empty for other kinds.
nlohmann::json ipc_stats(const std::string& name, const shm::SegmentInfo& info);

}  // namespace ringwire::tools
