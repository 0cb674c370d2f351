// ipc_bench message format. Every message is a whole number of 8-byte words
// (64 B or 4 KiB here): word 0 is the sequence number, the last word its
// complement, and every other word a function of (seq, index). The sender
// writes every word; the receiver checks the first and last word and one
// word per 64-byte line (every word of a 64-byte message), so a lost,
// duplicated, stale or torn message is caught wherever it was cut.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace ipcb {

inline constexpr std::size_t kMinMessage = 16;

constexpr std::uint64_t body_word(std::uint64_t seq, std::size_t k) noexcept {
  return seq * 0x9E3779B97F4A7C15ull + k;
}

// `n` is a multiple of 8 and at least kMinMessage. `p` may be unaligned.
inline void fill_msg(void* p, std::size_t n, std::uint64_t seq) noexcept {
  auto* b = static_cast<unsigned char*>(p);
  const std::size_t words = n / 8;
  std::memcpy(b, &seq, 8);
  for (std::size_t k = 1; k + 1 < words; ++k) {
    const std::uint64_t w = body_word(seq, k);
    std::memcpy(b + 8 * k, &w, 8);
  }
  const std::uint64_t last = ~seq;
  std::memcpy(b + n - 8, &last, 8);
}

// Reads the sequence number into `seq`; true when the rest of the message
// agrees with it.
inline bool check_msg(const void* p, std::size_t n, std::uint64_t& seq) noexcept {
  const auto* b = static_cast<const unsigned char*>(p);
  const std::size_t words = n / 8;
  std::memcpy(&seq, b, 8);
  std::uint64_t w;
  std::memcpy(&w, b + n - 8, 8);
  bool ok = w == ~seq;
  const std::size_t step = n <= 64 ? 1 : 8;
  for (std::size_t k = step; k + 1 < words; k += step) {
    std::memcpy(&w, b + 8 * k, 8);
    ok &= w == body_word(seq, k);
  }
  return ok;
}

}  // namespace ipcb
