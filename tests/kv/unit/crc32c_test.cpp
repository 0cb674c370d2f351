// CRC32C: published check values, incremental use, and agreement of the hardware and table
// paths on every length and alignment the tail handling distinguishes.
#include "ringwire/kv/storage/crc32c.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "storage/crc32c_paths.hpp"

namespace ringwire::kv::storage {
namespace {

std::uint32_t table_crc(const std::string& s) {
  return ~detail::crc32c_table(~0u, reinterpret_cast<const unsigned char*>(s.data()), s.size());
}

TEST(Crc32c, CheckValue) {
  EXPECT_EQ(crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(table_crc("123456789"), 0xE3069283u);
  EXPECT_EQ(crc32c(std::string_view{}), 0u);
}

// RFC 3720 (iSCSI) appendix B.4 test vectors.
TEST(Crc32c, Rfc3720Vectors) {
  std::string zeros(32, '\0');
  std::string ones(32, '\xFF');
  std::string up, down;
  for (int i = 0; i < 32; ++i) {
    up.push_back(static_cast<char>(i));
    down.push_back(static_cast<char>(31 - i));
  }
  EXPECT_EQ(crc32c(zeros), 0x8A9136AAu);
  EXPECT_EQ(crc32c(ones), 0x62A8AB43u);
  EXPECT_EQ(crc32c(up), 0x46DD794Eu);
  EXPECT_EQ(crc32c(down), 0x113FDB5Cu);
  EXPECT_EQ(table_crc(up), 0x46DD794Eu);
}

TEST(Crc32c, IncrementalEqualsOneShot) {
  const std::string s = "the quick brown fox jumps over the lazy dog, twice over";
  for (std::size_t cut = 0; cut <= s.size(); ++cut) {
    const std::string_view v(s);
    EXPECT_EQ(crc32c(v.substr(cut), crc32c(v.substr(0, cut))), crc32c(s)) << cut;
  }
}

TEST(Crc32c, HardwareAndTableAgree) {
  if (!detail::crc32c_hw_available()) GTEST_SKIP() << "no SSE4.2 on this CPU";
  std::mt19937_64 rng(7);
  std::vector<unsigned char> buf(4096 + 16);
  for (auto& b : buf)
    b = static_cast<unsigned char>(rng());
  for (std::size_t align = 0; align < 8; ++align) {
    for (std::size_t len = 0; len < 300; ++len) {
      const unsigned char* p = buf.data() + align;
      ASSERT_EQ(detail::crc32c_sse42(~0u, p, len), detail::crc32c_table(~0u, p, len))
          << "align " << align << " len " << len;
    }
  }
  const unsigned char* p = buf.data() + 3;
  EXPECT_EQ(detail::crc32c_sse42(0x12345678u, p, 4096), detail::crc32c_table(0x12345678u, p, 4096));
}

// A single flipped bit anywhere must change the checksum (CRC detects all 1-bit errors).
TEST(Crc32c, DetectsEverySingleBitFlip) {
  std::string s(64, 'a');
  const std::uint32_t base = crc32c(s);
  for (std::size_t i = 0; i < s.size() * 8; ++i) {
    std::string t = s;
    t[i / 8] = static_cast<char>(t[i / 8] ^ (1 << (i % 8)));
    EXPECT_NE(crc32c(t), base) << i;
  }
}

}  // namespace
}  // namespace ringwire::kv::storage
