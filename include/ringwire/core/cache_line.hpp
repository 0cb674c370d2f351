// Cache-line constants shared by every layout in ringwire.
#pragma once

#include <cstddef>

namespace ringwire::core {

// x86-64 and most AArch64 parts move 64-byte lines.
inline constexpr std::size_t kCacheLine = 64;

// Distance that keeps two hot fields from interfering. Intel's adjacent-line
// prefetcher pulls cache lines in 128-byte pairs, so two fields written by
// different cores 64 bytes apart still ping-pong; 128 bytes apart they do not.
inline constexpr std::size_t kFalseSharingRange = 128;

}  // namespace ringwire::core
