// The writer half of CacheTable (the reader half is inline in the header).
#include "ringwire/kv/cache/cache_table.hpp"

#include <new>
#include <utility>
#include <vector>

namespace ringwire::kv::cache {

namespace {

void store_words(std::byte* dst, std::string_view src) noexcept {
  auto* words = reinterpret_cast<std::uint64_t*>(dst);
  const char* p = src.data();
  std::size_t n = src.size();
  for (std::size_t i = 0; n > 0; ++i) {
    std::uint64_t w = 0;
    const std::size_t m = n < 8 ? n : 8;
    std::memcpy(&w, p, m);
    std::atomic_ref<std::uint64_t>(words[i]).store(w, std::memory_order_relaxed);
    p += m;
    n -= m;
  }
}

}  // namespace

bool CacheTable::format(void* payload, std::uint64_t payload_size, const CacheGeometry& geometry,
                        std::uint64_t hash_seed) noexcept {
  CacheGeometry g = geometry;
  if (!compute_geometry(g) || g.payload_size > payload_size) return false;
  auto* base = static_cast<std::byte*>(payload);
  auto* c = new (base) CacheControl();
  store_geometry(*c, g, hash_seed);
  for (pthread_mutex_t* m : {&c->writer_lock, &c->agent_lock}) {
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    const int rc = pthread_mutex_init(m, &a);
    pthread_mutexattr_destroy(&a);
    if (rc != 0) return false;
  }
  new (base + g.state_offset) CacheState();
  for (std::uint32_t i = 0; i < g.reader_slots; ++i)
    new (base + g.readers_offset + i * sizeof(ReaderSlot)) ReaderSlot();
  for (std::uint64_t i = 0; i < g.slots; ++i)
    new (base + g.slots_offset + i * g.slot_size) CacheSlot();
  return true;
}

bool CacheTable::attach(void* payload, std::uint64_t payload_size) noexcept {
  if (payload == nullptr || payload_size < sizeof(CacheControl)) return false;
  auto* base = static_cast<std::byte*>(payload);
  auto* c = reinterpret_cast<CacheControl*>(base);
  // Re-derive every offset from the claimed limits and insist they agree: a reader then
  // uses only numbers it computed itself.
  CacheGeometry g;
  g.slots = c->slots;
  g.capacity = c->capacity;
  g.key_max = c->key_max;
  g.value_max = c->value_max;
  g.max_probe = c->max_probe;
  g.reader_slots = c->reader_slots;
  if (!compute_geometry(g)) return false;
  if (g.slot_size != c->slot_size || g.state_offset != c->state_offset ||
      g.readers_offset != c->readers_offset || g.slots_offset != c->slots_offset ||
      g.payload_size > payload_size) {
    return false;
  }
  g_ = g;
  seed_ = c->hash_seed;
  control_ = c;
  state_ = reinterpret_cast<CacheState*>(base + g.state_offset);
  readers_ = reinterpret_cast<ReaderSlot*>(base + g.readers_offset);
  slots_ = base + g.slots_offset;
  return true;
}

std::int64_t CacheTable::find(std::string_view key, std::uint64_t h) const {
  const std::uint64_t mask = g_.slots - 1;
  for (std::uint32_t p = 0; p < g_.max_probe; ++p) {
    const std::uint64_t i = (h + p) & mask;
    const CacheSlot& s = slot(i);
    const auto st = static_cast<SlotState>(s.state.load(std::memory_order_relaxed));
    if (st == SlotState::empty) return -1;
    if (st == SlotState::full && s.hash.load(std::memory_order_relaxed) == h &&
        s.key_len.load(std::memory_order_relaxed) == key.size() &&
        detail::equal_words(key_area(i), key)) {
      return static_cast<std::int64_t>(i);
    }
  }
  return -1;
}

bool CacheTable::contains(std::string_view key) const {
  if (key.empty() || key.size() > g_.key_max) return false;
  return find(key, key_hash(key, seed_)) >= 0;
}

void CacheTable::set_state(std::uint64_t i, SlotState st) {
  CacheSlot& s = slot(i);
  const std::uint64_t seq = s.seq.load(std::memory_order_relaxed);
  state_->dirty_slot.store(static_cast<std::int64_t>(i), std::memory_order_relaxed);
  s.seq.store(seq | 1, std::memory_order_relaxed);
  // release fence: a reader that sees any of the stores below also sees seq odd.
  std::atomic_thread_fence(std::memory_order_release);
  s.state.store(static_cast<std::uint32_t>(st), std::memory_order_relaxed);
  s.referenced.store(0, std::memory_order_relaxed);
  // release: readers that load this even seq with acquire see the new state.
  s.seq.store((seq | 1) + 1, std::memory_order_release);
  state_->dirty_slot.store(-1, std::memory_order_relaxed);
}

void CacheTable::write_entry(std::uint64_t i, std::uint64_t h, std::string_view key,
                             std::string_view value, std::int64_t mod_revision,
                             std::int64_t create_revision, std::int64_t version) {
  CacheSlot& s = slot(i);
  const std::uint64_t seq = s.seq.load(std::memory_order_relaxed);
  state_->dirty_slot.store(static_cast<std::int64_t>(i), std::memory_order_relaxed);
  s.seq.store(seq | 1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);  // as in set_state
  s.hash.store(h, std::memory_order_relaxed);
  s.key_len.store(static_cast<std::uint32_t>(key.size()), std::memory_order_relaxed);
  s.value_len.store(static_cast<std::uint32_t>(value.size()), std::memory_order_relaxed);
  s.mod_revision.store(mod_revision, std::memory_order_relaxed);
  s.create_revision.store(create_revision, std::memory_order_relaxed);
  s.version.store(version, std::memory_order_relaxed);
  store_words(key_area(i), key);
  store_words(value_area(i), value);
  s.state.store(static_cast<std::uint32_t>(SlotState::full), std::memory_order_relaxed);
  s.seq.store((seq | 1) + 1, std::memory_order_release);
  state_->dirty_slot.store(-1, std::memory_order_relaxed);
}

// CLOCK: sweep from the hand; a referenced entry gets a second chance, the first
// unreferenced one goes. Bounded by two full turns.
void CacheTable::evict_one() {
  std::uint64_t hand = state_->clock_hand.load(std::memory_order_relaxed);
  for (std::uint64_t n = 0; n < 2 * g_.slots; ++n, ++hand) {
    const std::uint64_t i = hand & (g_.slots - 1);
    CacheSlot& s = slot(i);
    if (static_cast<SlotState>(s.state.load(std::memory_order_relaxed)) != SlotState::full)
      continue;
    if (s.referenced.load(std::memory_order_relaxed) != 0) {
      s.referenced.store(0, std::memory_order_relaxed);
      continue;
    }
    set_state(i, SlotState::tombstone);
    state_->entries.fetch_sub(1, std::memory_order_relaxed);
    state_->tombstones.fetch_add(1, std::memory_order_relaxed);
    state_->evictions.fetch_add(1, std::memory_order_relaxed);
    state_->clock_hand.store(hand + 1, std::memory_order_relaxed);
    return;
  }
}

// First empty-or-tombstone slot in the key's window; if the window is full of live entries,
// the least recently referenced of them is evicted to make room.
std::int64_t CacheTable::free_slot_for(std::uint64_t h) {
  const std::uint64_t mask = g_.slots - 1;
  std::int64_t victim = -1;
  for (std::uint32_t p = 0; p < g_.max_probe; ++p) {
    const std::uint64_t i = (h + p) & mask;
    CacheSlot& s = slot(i);
    const auto st = static_cast<SlotState>(s.state.load(std::memory_order_relaxed));
    if (st == SlotState::empty || st == SlotState::tombstone) return static_cast<std::int64_t>(i);
    if (victim < 0 && s.referenced.load(std::memory_order_relaxed) == 0)
      victim = static_cast<std::int64_t>(i);
  }
  if (victim < 0) victim = static_cast<std::int64_t>(h & mask);
  set_state(static_cast<std::uint64_t>(victim), SlotState::tombstone);
  state_->entries.fetch_sub(1, std::memory_order_relaxed);
  state_->tombstones.fetch_add(1, std::memory_order_relaxed);
  state_->evictions.fetch_add(1, std::memory_order_relaxed);
  return victim;
}

bool CacheTable::upsert(std::string_view key, std::string_view value, std::int64_t mod_revision,
                        std::int64_t create_revision, std::int64_t version) {
  if (key.empty() || key.size() > g_.key_max || value.size() > g_.value_max) return false;
  const std::uint64_t h = key_hash(key, seed_);
  if (const std::int64_t at = find(key, h); at >= 0) {
    const auto i = static_cast<std::uint64_t>(at);
    if (slot(i).mod_revision.load(std::memory_order_relaxed) >= mod_revision) return true;
    write_entry(i, h, key, value, mod_revision, create_revision, version);
    return true;
  }
  maybe_rebuild();
  if (state_->entries.load(std::memory_order_relaxed) >= g_.capacity) evict_one();
  const std::int64_t at = free_slot_for(h);
  const auto i = static_cast<std::uint64_t>(at);
  if (static_cast<SlotState>(slot(i).state.load(std::memory_order_relaxed)) ==
      SlotState::tombstone) {
    state_->tombstones.fetch_sub(1, std::memory_order_relaxed);
  }
  write_entry(i, h, key, value, mod_revision, create_revision, version);
  state_->entries.fetch_add(1, std::memory_order_relaxed);
  return true;
}

bool CacheTable::update_if_cached(std::string_view key, std::string_view value,
                                  std::int64_t mod_revision, std::int64_t create_revision,
                                  std::int64_t version) {
  if (key.empty() || key.size() > g_.key_max) return false;
  const std::uint64_t h = key_hash(key, seed_);
  const std::int64_t at = find(key, h);
  if (at < 0) return false;
  const auto i = static_cast<std::uint64_t>(at);
  if (slot(i).mod_revision.load(std::memory_order_relaxed) >= mod_revision) return true;
  if (value.size() > g_.value_max) {
    // Grew beyond what we cache: the old value must not be served any more.
    set_state(i, SlotState::tombstone);
    state_->entries.fetch_sub(1, std::memory_order_relaxed);
    state_->tombstones.fetch_add(1, std::memory_order_relaxed);
    return true;
  }
  write_entry(i, h, key, value, mod_revision, create_revision, version);
  return true;
}

bool CacheTable::erase(std::string_view key, std::int64_t revision) {
  if (key.empty() || key.size() > g_.key_max) return false;
  const std::int64_t at = find(key, key_hash(key, seed_));
  if (at < 0) return false;
  const auto i = static_cast<std::uint64_t>(at);
  if (slot(i).mod_revision.load(std::memory_order_relaxed) >= revision) return false;
  set_state(i, SlotState::tombstone);
  state_->entries.fetch_sub(1, std::memory_order_relaxed);
  state_->tombstones.fetch_add(1, std::memory_order_relaxed);
  return true;
}

void CacheTable::clear() {
  state_->rebuilding.store(1, std::memory_order_relaxed);
  for (std::uint64_t i = 0; i < g_.slots; ++i) {
    const CacheSlot& s = slot(i);
    // Also a slot a dead writer left mid-write (odd seq) whose state still reads empty (it died
    // filling an empty slot, e.g. during a rebuild, which repair() answers with clear()):
    // skipped, it would stay odd and read as busy until something was written there again.
    if (static_cast<SlotState>(s.state.load(std::memory_order_relaxed)) != SlotState::empty ||
        (s.seq.load(std::memory_order_relaxed) & 1) != 0) {
      set_state(i, SlotState::empty);
    }
  }
  state_->entries.store(0, std::memory_order_relaxed);
  state_->tombstones.store(0, std::memory_order_relaxed);
  state_->generation.fetch_add(1, std::memory_order_relaxed);
  state_->clears.fetch_add(1, std::memory_order_relaxed);
  state_->rebuilding.store(0, std::memory_order_relaxed);
}

// Tombstones lengthen probes; when they pass a quarter of the table, rewrite it. Readers see
// misses for the keys being moved (and fall back to RPC), never a wrong value.
void CacheTable::maybe_rebuild() {
  if (state_->tombstones.load(std::memory_order_relaxed) < g_.slots / 4) return;
  struct Live {
    std::string key, value;
    std::int64_t mod, create, version;
  };
  std::vector<Live> live;
  live.reserve(state_->entries.load(std::memory_order_relaxed));
  for (std::uint64_t i = 0; i < g_.slots; ++i) {
    const CacheSlot& s = slot(i);
    if (static_cast<SlotState>(s.state.load(std::memory_order_relaxed)) != SlotState::full)
      continue;
    Live e;
    e.key.resize(s.key_len.load(std::memory_order_relaxed));
    e.value.resize(s.value_len.load(std::memory_order_relaxed));
    detail::load_words(key_area(i), e.key.data(), e.key.size());
    detail::load_words(value_area(i), e.value.data(), e.value.size());
    e.mod = s.mod_revision.load(std::memory_order_relaxed);
    e.create = s.create_revision.load(std::memory_order_relaxed);
    e.version = s.version.load(std::memory_order_relaxed);
    live.push_back(std::move(e));
  }
  const auto generation = state_->generation.load(std::memory_order_relaxed);
  const auto clears = state_->clears.load(std::memory_order_relaxed);
  clear();
  // A rebuild is not a clear: keep those counters as they were.
  state_->generation.store(generation, std::memory_order_relaxed);
  state_->clears.store(clears, std::memory_order_relaxed);
  state_->rebuilding.store(1, std::memory_order_relaxed);
  for (const auto& e : live) {
    const std::uint64_t h = key_hash(e.key, seed_);
    const auto i = static_cast<std::uint64_t>(free_slot_for(h));
    write_entry(i, h, e.key, e.value, e.mod, e.create, e.version);
    state_->entries.fetch_add(1, std::memory_order_relaxed);
  }
  state_->rebuilding.store(0, std::memory_order_relaxed);
}

std::uint64_t CacheTable::repair() {
  std::uint64_t repaired = 0;
  if (state_->rebuilding.load(std::memory_order_relaxed) != 0) {
    // Died mid-rewrite: entries may be missing from the table but none is wrong. Start over.
    clear();
    return g_.slots;
  }
  std::uint64_t entries = 0, tombstones = 0;
  for (std::uint64_t i = 0; i < g_.slots; ++i) {
    CacheSlot& s = slot(i);
    const std::uint64_t seq = s.seq.load(std::memory_order_relaxed);
    if (seq & 1) {
      // Half-written: whatever it holds is unusable. A tombstone (not empty) keeps the probe
      // chains of the keys behind it intact.
      s.state.store(static_cast<std::uint32_t>(SlotState::tombstone), std::memory_order_relaxed);
      s.seq.store(seq + 1, std::memory_order_release);
      ++repaired;
    }
    auto st = static_cast<SlotState>(s.state.load(std::memory_order_relaxed));
    if (st == SlotState::full) ++entries;
    if (st == SlotState::tombstone) ++tombstones;
  }
  state_->entries.store(entries, std::memory_order_relaxed);
  state_->tombstones.store(tombstones, std::memory_order_relaxed);
  state_->dirty_slot.store(-1, std::memory_order_relaxed);
  return repaired;
}

}  // namespace ringwire::kv::cache
