// The message spsc_queue sends: a 16-byte header and P payload bytes whose
// content is derived from the sequence number, so the consumer can detect
// loss, duplication, reordering and corruption of every single message.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace ringwire::tools {

template <std::size_t P>
struct Message {
  std::uint64_t seq;
  std::uint32_t len;       // always P; a wrong value is corruption
  std::uint32_t checksum;  // over seq and the payload
  std::uint64_t payload[P / 8];
};
template <>
struct Message<0> {
  std::uint64_t seq;
  std::uint32_t len;
  std::uint32_t checksum;
};

static_assert(sizeof(Message<0>) == 16);
static_assert(sizeof(Message<256>) == 272);

inline constexpr std::uint64_t kMix = 0x9e3779b97f4a7c15ull;

inline std::uint32_t fold(std::uint64_t h) noexcept {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return static_cast<std::uint32_t>(h);
}

template <std::size_t P>
std::uint32_t checksum_of(const Message<P>& m) noexcept {
  std::uint64_t h = m.seq * kMix;
  if constexpr (P > 0) {
    for (std::size_t i = 0; i < P / 8; ++i)
      h = (h ^ m.payload[i]) * kMix + i;
  }
  return fold(h);
}

template <std::size_t P>
void fill_message(Message<P>& m, std::uint64_t seq) noexcept {
  m.seq = seq;
  m.len = static_cast<std::uint32_t>(P);
  if constexpr (P > 0) {
    const std::uint64_t base = seq * kMix;
    for (std::size_t i = 0; i < P / 8; ++i)
      m.payload[i] = base + i;
  }
  m.checksum = checksum_of(m);
}

// Intact means: the length is right and the checksum matches the bytes.
template <std::size_t P>
bool message_intact(const Message<P>& m) noexcept {
  return m.len == P && m.checksum == checksum_of(m);
}

}  // namespace ringwire::tools
