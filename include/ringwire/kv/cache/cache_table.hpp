// CacheTable: the open-addressing hash table of a kv_cache segment, as a view over its payload.
//
// One writer at a time (whoever holds CacheControl::writer_lock), any number of readers in any
// processes. Invariants the writer keeps and the reader relies on:
//   * a key lives within max_probe slots of its home slot (hash & (slots - 1)), at the first
//     empty-or-tombstone slot found when it was inserted, and at most once in the table;
//   * a slot only goes tombstone -> empty when the whole table is cleared, so a reader that
//     meets an empty slot may stop: the key is not further along;
//   * each slot change happens between seq = odd and seq = even (seqlock, see cache_layout.hpp).
// The reader never blocks and never loops unboundedly: a slot whose seq stays odd (its writer
// died) reads as "busy" after a few tries and the caller falls back to RPC.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "ringwire/core/cpu.hpp"
#include "ringwire/kv/cache/cache_layout.hpp"

namespace ringwire::kv::cache {

// Hash of a key: 8-byte words folded by multiply-xorshift, then a 64-bit finaliser. Keys come
// from the cluster, so the seed is per segment (random) to keep probe windows from being
// flooded by chosen keys.
inline std::uint64_t key_hash(std::string_view key, std::uint64_t seed) noexcept {
  constexpr std::uint64_t k1 = 0x9e3779b97f4a7c15ull, k2 = 0xbf58476d1ce4e5b9ull;
  std::uint64_t h = seed ^ (key.size() * k1);
  const char* p = key.data();
  std::size_t n = key.size();
  for (; n >= 8; n -= 8, p += 8) {
    std::uint64_t w;
    std::memcpy(&w, p, 8);
    h = (h ^ w) * k2;
    h ^= h >> 31;
  }
  if (n > 0) {
    std::uint64_t w = 0;
    std::memcpy(&w, p, n);
    h = (h ^ w) * k2;
  }
  h ^= h >> 30;
  h *= k2;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebull;
  h ^= h >> 31;
  return h;
}

struct CachedEntry {
  std::string value;
  std::int64_t mod_revision = 0;
  std::int64_t create_revision = 0;
  std::int64_t version = 0;
};

enum class Lookup { hit, miss, busy };

class CacheTable {
 public:
  CacheTable() = default;
  // `payload` must be the mapped payload of `payload_size` bytes. Validates the geometry the
  // control block claims against the size and copies it; false if it does not hold up.
  bool attach(void* payload, std::uint64_t payload_size) noexcept;
  // Writer: lay out a fresh table (the payload is zero-filled memory from ftruncate).
  static bool format(void* payload, std::uint64_t payload_size, const CacheGeometry& g,
                     std::uint64_t hash_seed) noexcept;

  const CacheGeometry& geometry() const noexcept { return g_; }
  CacheControl& control() const noexcept { return *control_; }
  CacheState& state() const noexcept { return *state_; }
  ReaderSlot& reader_slot(std::uint32_t i) const noexcept { return readers_[i]; }
  std::uint64_t seed() const noexcept { return seed_; }

  // ---- readers (any process, no lock) ----------------------------------------------------
  Lookup lookup(std::string_view key, CachedEntry& out) const;

  // ---- writer (writer_lock held) ---------------------------------------------------------
  // Puts the entry unless the table already has this key at mod_revision >= the given one.
  // Returns false if the key or value is too long to cache (nothing changes then).
  bool upsert(std::string_view key, std::string_view value, std::int64_t mod_revision,
              std::int64_t create_revision, std::int64_t version);
  // Updates a key only if it is cached (the watch path: uncached keys are not tracked).
  bool update_if_cached(std::string_view key, std::string_view value, std::int64_t mod_revision,
                        std::int64_t create_revision, std::int64_t version);
  // Removes the key if cached with mod_revision < revision (a delete at `revision`).
  bool erase(std::string_view key, std::int64_t revision);
  bool contains(std::string_view key) const;
  void clear();
  // After EOWNERDEAD: slots a dead writer left half-written become tombstones (or, if it died
  // while rewriting the table, the table is cleared). Returns the number of slots repaired.
  std::uint64_t repair();

 private:
  CacheSlot& slot(std::uint64_t i) const noexcept {
    return *reinterpret_cast<CacheSlot*>(slots_ + i * g_.slot_size);
  }
  std::byte* key_area(std::uint64_t i) const noexcept {
    return slots_ + i * g_.slot_size + sizeof(CacheSlot);
  }
  std::byte* value_area(std::uint64_t i) const noexcept {
    return key_area(i) + round_up(g_.key_max, 8);
  }
  std::int64_t find(std::string_view key, std::uint64_t h) const;
  std::int64_t free_slot_for(std::uint64_t h);
  void evict_one();
  void write_entry(std::uint64_t i, std::uint64_t h, std::string_view key, std::string_view value,
                   std::int64_t mod_revision, std::int64_t create_revision, std::int64_t version);
  void set_state(std::uint64_t i, SlotState s);
  void maybe_rebuild();

  CacheGeometry g_{};
  std::uint64_t seed_ = 0;
  CacheControl* control_ = nullptr;
  CacheState* state_ = nullptr;
  ReaderSlot* readers_ = nullptr;
  std::byte* slots_ = nullptr;
};

// ---- the read path, inline: it is the product ---------------------------------------------

namespace detail {

// Copies n bytes out of a slot's data area word by word with relaxed atomic loads: racing a
// writer is expected (the seqlock re-check discards such a copy), so plain memcpy would be a
// data race in the C++ model; on x86-64 these are ordinary moves.
inline void load_words(const std::byte* src, char* dst, std::size_t n) noexcept {
  auto* words = reinterpret_cast<std::uint64_t*>(const_cast<std::byte*>(src));
  std::size_t i = 0;
  for (; n >= 8; ++i, n -= 8, dst += 8) {
    const std::uint64_t w =
        std::atomic_ref<std::uint64_t>(words[i]).load(std::memory_order_relaxed);
    std::memcpy(dst, &w, 8);
  }
  if (n > 0) {
    const std::uint64_t w =
        std::atomic_ref<std::uint64_t>(words[i]).load(std::memory_order_relaxed);
    std::memcpy(dst, &w, n);
  }
}

inline bool equal_words(const std::byte* src, std::string_view key) noexcept {
  auto* words = reinterpret_cast<std::uint64_t*>(const_cast<std::byte*>(src));
  const char* p = key.data();
  std::size_t n = key.size();
  for (std::size_t i = 0; n > 0; ++i) {
    const std::uint64_t w =
        std::atomic_ref<std::uint64_t>(words[i]).load(std::memory_order_relaxed);
    std::uint64_t k = 0;
    const std::size_t m = n < 8 ? n : 8;
    std::memcpy(&k, p, m);
    std::uint64_t mask = m == 8 ? ~std::uint64_t{0} : ((std::uint64_t{1} << (8 * m)) - 1);
    if (((w ^ k) & mask) != 0) return false;
    p += m;
    n -= m;
  }
  return true;
}

inline constexpr int kSeqRetries = 16;

}  // namespace detail

inline Lookup CacheTable::lookup(std::string_view key, CachedEntry& out) const {
  if (slots_ == nullptr || key.empty() || key.size() > g_.key_max) return Lookup::miss;
  const std::uint64_t h = key_hash(key, seed_);
  const std::uint64_t mask = g_.slots - 1;
  for (std::uint32_t p = 0; p < g_.max_probe; ++p) {
    const std::uint64_t i = (h + p) & mask;
    const CacheSlot& s = slot(i);
    int tries = 0;
    for (;;) {
      if (++tries > detail::kSeqRetries) return Lookup::busy;
      // acquire: the fields read below are at least as new as this seq's write.
      const std::uint64_t s1 = s.seq.load(std::memory_order_acquire);
      if (s1 & 1) {
        core::cpu_relax();
        continue;
      }
      const auto state = static_cast<SlotState>(s.state.load(std::memory_order_relaxed));
      bool found = false, stop = false;
      if (state == SlotState::empty) {
        stop = true;
      } else if (state == SlotState::full && s.hash.load(std::memory_order_relaxed) == h &&
                 s.key_len.load(std::memory_order_relaxed) == key.size() &&
                 detail::equal_words(key_area(i), key)) {
        const std::uint32_t vlen = s.value_len.load(std::memory_order_relaxed);
        // A length beyond our private geometry is corruption or a torn read: never copy it.
        if (vlen <= g_.value_max) {
          out.value.resize(vlen);
          detail::load_words(value_area(i), out.value.data(), vlen);
          out.mod_revision = s.mod_revision.load(std::memory_order_relaxed);
          out.create_revision = s.create_revision.load(std::memory_order_relaxed);
          out.version = s.version.load(std::memory_order_relaxed);
          found = true;
        }
      }
      // acquire fence: the relaxed loads above happen before the re-read of seq, so an
      // unchanged seq proves no write overlapped them.
      std::atomic_thread_fence(std::memory_order_acquire);
      if (s.seq.load(std::memory_order_relaxed) != s1) continue;
      if (found) {
        // CLOCK reference bit; written only when clear to keep the line shared.
        auto& ref = const_cast<CacheSlot&>(s).referenced;
        if (ref.load(std::memory_order_relaxed) == 0) ref.store(1, std::memory_order_relaxed);
        return Lookup::hit;
      }
      if (stop) return Lookup::miss;
      break;  // next slot in the window
    }
  }
  return Lookup::miss;
}

}  // namespace ringwire::kv::cache
