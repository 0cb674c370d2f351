// CRC32C (Castagnoli, reflected polynomial 0x82F63B78). The SSE4.2 crc32 instruction computes
// exactly this polynomial; the table path is the reference and the fallback for other CPUs.
#include "ringwire/kv/storage/crc32c.hpp"

#include <array>
#include <cstring>

#include "storage/crc32c_paths.hpp"

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace ringwire::kv::storage {
namespace detail {
namespace {

constexpr std::uint32_t kPoly = 0x82F63B78u;

// Slicing-by-8 tables: kTables[k][b] is the CRC of byte b followed by k zero bytes, so eight
// input bytes are folded with eight independent lookups instead of a serial chain of eight.
constexpr std::array<std::array<std::uint32_t, 256>, 8> make_tables() {
  std::array<std::array<std::uint32_t, 256>, 8> t{};
  for (std::uint32_t b = 0; b < 256; ++b) {
    std::uint32_t c = b;
    for (int k = 0; k < 8; ++k)
      c = (c & 1u) ? (c >> 1) ^ kPoly : c >> 1;
    t[0][b] = c;
  }
  for (std::size_t k = 1; k < 8; ++k)
    for (std::size_t b = 0; b < 256; ++b)
      t[k][b] = (t[k - 1][b] >> 8) ^ t[0][t[k - 1][b] & 0xFFu];
  return t;
}
constexpr auto kTables = make_tables();

std::uint32_t load_le32(const unsigned char* p) noexcept {
  return static_cast<std::uint32_t>(p[0]) | static_cast<std::uint32_t>(p[1]) << 8 |
         static_cast<std::uint32_t>(p[2]) << 16 | static_cast<std::uint32_t>(p[3]) << 24;
}

}  // namespace

std::uint32_t crc32c_table(std::uint32_t reg, const unsigned char* p, std::size_t n) noexcept {
  while (n >= 8) {
    const std::uint32_t lo = reg ^ load_le32(p);
    const std::uint32_t hi = load_le32(p + 4);
    reg = kTables[7][lo & 0xFFu] ^ kTables[6][(lo >> 8) & 0xFFu] ^ kTables[5][(lo >> 16) & 0xFFu] ^
          kTables[4][lo >> 24] ^ kTables[3][hi & 0xFFu] ^ kTables[2][(hi >> 8) & 0xFFu] ^
          kTables[1][(hi >> 16) & 0xFFu] ^ kTables[0][hi >> 24];
    p += 8;
    n -= 8;
  }
  while (n-- > 0)
    reg = (reg >> 8) ^ kTables[0][(reg ^ *p++) & 0xFFu];
  return reg;
}

#if defined(__x86_64__)
// Compiled for SSE4.2 on its own so the rest of the build keeps the baseline ISA; only reached
// after the runtime CPU check.
__attribute__((target("sse4.2"))) std::uint32_t crc32c_sse42(std::uint32_t reg,
                                                             const unsigned char* p,
                                                             std::size_t n) noexcept {
  std::uint64_t r = reg;
  while (n >= 8) {
    std::uint64_t v;
    std::memcpy(&v, p, sizeof v);  // unaligned-safe; x86 is little-endian like the format
    r = _mm_crc32_u64(r, v);
    p += 8;
    n -= 8;
  }
  auto r32 = static_cast<std::uint32_t>(r);
  while (n-- > 0)
    r32 = _mm_crc32_u8(r32, *p++);
  return r32;
}

bool crc32c_hw_available() noexcept {
  static const bool kHave = __builtin_cpu_supports("sse4.2") != 0;
  return kHave;
}
#else
std::uint32_t crc32c_sse42(std::uint32_t reg, const unsigned char* p, std::size_t n) noexcept {
  return crc32c_table(reg, p, n);
}
bool crc32c_hw_available() noexcept {
  return false;
}
#endif

}  // namespace detail

std::uint32_t crc32c(const void* data, std::size_t size, std::uint32_t crc) noexcept {
  // The register is kept inverted between calls so crc32c(b, crc32c(a)) == crc32c(a + b).
  const auto* p = static_cast<const unsigned char*>(data);
  const std::uint32_t reg = ~crc;
  const std::uint32_t out = detail::crc32c_hw_available() ? detail::crc32c_sse42(reg, p, size)
                                                          : detail::crc32c_table(reg, p, size);
  return ~out;
}

}  // namespace ringwire::kv::storage
