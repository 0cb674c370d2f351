// CRC32C (Castagnoli), as used by the WAL and snapshot files. Hardware instruction when the
// CPU has SSE4.2, table-driven otherwise; both give the same values.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace ringwire::kv::storage {

// Extends `crc` (0 to start) over the bytes. crc32c("123456789") == 0xE3069283.
std::uint32_t crc32c(const void* data, std::size_t size, std::uint32_t crc = 0) noexcept;
inline std::uint32_t crc32c(std::string_view s, std::uint32_t crc = 0) noexcept {
  return crc32c(s.data(), s.size(), crc);
}

}  // namespace ringwire::kv::storage
