// The two CRC32C implementations behind crc32c(), exposed so tests can check they agree.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ringwire::kv::storage::detail {

// Both take and return the raw (un-inverted) register: crc32c() does the pre/post inversion.
std::uint32_t crc32c_table(std::uint32_t reg, const unsigned char* p, std::size_t n) noexcept;
// Only callable when crc32c_hw_available().
std::uint32_t crc32c_sse42(std::uint32_t reg, const unsigned char* p, std::size_t n) noexcept;
bool crc32c_hw_available() noexcept;

}  // namespace ringwire::kv::storage::detail
