// Helpers for the KV read-cache tests: a CacheTable over private heap memory (exactly the
// payload size, so ASan sees any read past it), raw access to a slot the way another process
// sees the bytes, and a self-verifying value that encodes its key and revision.
#pragma once

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <string>
#include <string_view>

#include "common/test_support.hpp"
#include "ringwire/kv/cache/cache_layout.hpp"
#include "ringwire/kv/cache/cache_table.hpp"

namespace ringwire::test {

// A geometry for direct CacheTable tests (CacheWriter picks its own through geometry_for).
inline kv::cache::CacheGeometry table_geometry(std::uint64_t slots, std::uint64_t capacity,
                                               std::uint32_t key_max, std::uint32_t value_max,
                                               std::uint32_t max_probe,
                                               std::uint32_t reader_slots = 4) {
  kv::cache::CacheGeometry g;
  g.slots = slots;
  g.capacity = capacity;
  g.key_max = key_max;
  g.value_max = value_max;
  g.max_probe = max_probe;
  g.reader_slots = reader_slots;
  return g;
}

// A formatted and attached table in heap memory of exactly the payload size.
class HeapTable {
 public:
  explicit HeapTable(kv::cache::CacheGeometry g, std::uint64_t seed = 0x5eed5eed5eedull) {
    if (!kv::cache::compute_geometry(g)) {
      ADD_FAILURE() << "test geometry rejected";
      std::abort();
    }
    size_ = g.payload_size;
    mem_ = static_cast<std::byte*>(::operator new (size_, std::align_val_t{4096}));
    std::memset(mem_, 0, size_);
    if (!kv::cache::CacheTable::format(mem_, size_, g, seed) || !table_.attach(mem_, size_)) {
      ADD_FAILURE() << "format/attach failed";
      std::abort();
    }
  }
  ~HeapTable() { ::operator delete (mem_, std::align_val_t{4096}); }
  HeapTable(const HeapTable&) = delete;
  HeapTable& operator=(const HeapTable&) = delete;

  kv::cache::CacheTable& table() { return table_; }
  std::byte* payload() const { return mem_; }
  std::uint64_t size() const { return size_; }

 private:
  std::byte* mem_ = nullptr;
  std::uint64_t size_ = 0;
  kv::cache::CacheTable table_;
};

// Slot i of a table laid out with geometry g at `payload`, as raw shared memory.
inline kv::cache::CacheSlot& raw_slot(void* payload, const kv::cache::CacheGeometry& g,
                                      std::uint64_t i) {
  return *reinterpret_cast<kv::cache::CacheSlot*>(static_cast<std::byte*>(payload) +
                                                  g.slots_offset + i * g.slot_size);
}
inline std::byte* raw_value_area(void* payload, const kv::cache::CacheGeometry& g,
                                 std::uint64_t i) {
  return static_cast<std::byte*>(payload) + g.slots_offset + i * g.slot_size +
         sizeof(kv::cache::CacheSlot) + kv::cache::round_up(g.key_max, 8);
}

// Index of the full slot holding `key`, or -1 (a plain scan of the key's probe window).
inline std::int64_t raw_find(void* payload, const kv::cache::CacheGeometry& g, std::uint64_t seed,
                             std::string_view key) {
  const std::uint64_t h = kv::cache::key_hash(key, seed);
  for (std::uint32_t p = 0; p < g.max_probe; ++p) {
    const std::uint64_t i = (h + p) & (g.slots - 1);
    auto& s = raw_slot(payload, g, i);
    const auto st = static_cast<kv::cache::SlotState>(s.state.load());
    if (st == kv::cache::SlotState::empty) return -1;
    if (st == kv::cache::SlotState::full && s.hash.load() == h && s.key_len.load() == key.size())
      return static_cast<std::int64_t>(i);
  }
  return -1;
}

// ---- self-verifying values ------------------------------------------------------------

// [key id][revision][filler of a length that varies with the revision][checksum]: a value
// that mixes two writes, or belongs to another key or revision, fails verify_value.
inline std::string encode_value(std::uint64_t key_id, std::int64_t revision,
                                std::size_t max_len = 200) {
  const auto rev = static_cast<std::uint64_t>(revision);
  const std::size_t filler = max_len <= 24 ? 0 : (mix64(rev ^ (key_id << 40)) % (max_len - 23));
  std::string v(24 + filler, '\0');
  std::memcpy(v.data(), &key_id, 8);
  std::memcpy(v.data() + 8, &rev, 8);
  std::uint64_t sum = mix64(key_id * 0x9e3779b97f4a7c15ull ^ rev);
  for (std::size_t i = 0; i < filler; ++i) {
    const auto b = static_cast<char>(mix64(rev + i * 131 + key_id) & 0xff);
    v[16 + i] = b;
    sum = mix64(sum ^ static_cast<unsigned char>(b));
  }
  std::memcpy(v.data() + 16 + filler, &sum, 8);
  return v;
}

// Empty string if `v` is exactly encode_value(key_id, revision), else what is wrong.
inline std::string verify_value(std::string_view v, std::uint64_t key_id, std::int64_t revision) {
  if (v.size() < 24) return "value too short (" + std::to_string(v.size()) + " bytes)";
  std::uint64_t k, r;
  std::memcpy(&k, v.data(), 8);
  std::memcpy(&r, v.data() + 8, 8);
  if (k != key_id)
    return "value of key " + std::to_string(k) + " under key " + std::to_string(key_id);
  if (static_cast<std::int64_t>(r) != revision)
    return "value of revision " + std::to_string(r) + " with mod_revision " +
           std::to_string(revision);
  std::uint64_t sum = mix64(k * 0x9e3779b97f4a7c15ull ^ r);
  for (std::size_t i = 16; i < v.size() - 8; ++i)
    sum = mix64(sum ^ static_cast<unsigned char>(v[i]));
  std::uint64_t stored;
  std::memcpy(&stored, v.data() + v.size() - 8, 8);
  if (stored != sum) return "checksum mismatch (torn value)";
  // The length is part of the encoding too (a torn length with matching bytes is caught).
  if (v != encode_value(key_id, revision)) return "value differs from the encoding";
  return {};
}

// prefix + decimal n (without operator+ on a literal, which GCC 12 -O3 misreports as an
// overlapping memcpy, PR105329).
inline std::string cat(std::string_view prefix, long long n) {
  std::string s(prefix);
  s.append(std::to_string(n));
  return s;
}

inline std::string key_name(std::uint64_t id) {
  return cat("key/", static_cast<long long>(id));
}

}  // namespace ringwire::test
