// Fuzz target: the fuzzer's input becomes the payload of a kv_cache segment (the control
// block's geometry, the slots and their data areas), in one of three shapes, then a script
// of lookups (and of hostile writes between them) runs against CacheTable, which must keep
// what it promises for untrusted shared memory:
//   * attach() accepts only a geometry that lies inside the payload (payload_size <= size,
//     slots a power of two, max_probe <= slots), and a table that did not attach only misses;
//   * lookup() returns hit / miss / busy only, and a key longer than key_max (or empty) is a
//     miss without looking;
//   * a hit's value is at most the reader's private value_max (every byte is read, so ASan
//     sees a copy from outside the payload: the payload is allocated at exactly its size);
//   * while nothing was scribbled on a formatted table, lookups agree exactly with what the
//     writer stored (hit with the value and revisions of the last upsert, or miss).
//
// Input layout:
//   [0]      shape: % 3 == 0 a formatted table with entries from the input, then mutated by
//            the script; 1 a plausible geometry (from [1..8]) over slot bytes from the input;
//            2 the whole payload from the input, control block included
//   [1..8]   geometry: slots = 2 << ([1] % 8), capacity, key_max, value_max ([4..5]),
//            max_probe, reader_slots, [8] perturbation bits (shape 1: an offset or size in
//            the control block is changed)
//   [9..10]  payload size delta (signed, shapes 1 and 2): the allocation is the geometry's
//            payload_size plus this, so attach must refuse a short one
//   [11..12] how many body bytes are payload (shapes 1, 2) or entry script (shape 0)
//   [13..]   those bytes, then the op script.
//
// Built with clang: a libFuzzer target (tests/CMakeLists.txt, `fuzz` section). Otherwise
// RINGWIRE_FUZZ_REPLAY_MAIN adds a main() that replays a fixed number of pseudo-random inputs
// (a third of them real formatted tables with entries and a few mutated bytes) or the files
// named on the command line.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <map>
#include <new>
#include <string>
#include <string_view>
#include <vector>

#include "ringwire/kv/cache/cache_layout.hpp"
#include "ringwire/kv/cache/cache_table.hpp"

namespace {

using ringwire::kv::cache::CacheControl;
using ringwire::kv::cache::CachedEntry;
using ringwire::kv::cache::CacheGeometry;
using ringwire::kv::cache::CacheSlot;
using ringwire::kv::cache::CacheTable;
using ringwire::kv::cache::compute_geometry;
using ringwire::kv::cache::key_hash;
using ringwire::kv::cache::Lookup;
using ringwire::kv::cache::round_up;
using ringwire::kv::cache::SlotState;

constexpr std::size_t kPrefix = 13;

[[noreturn]] void violation(const char* what) {
  std::fprintf(stderr, "kv_cache_fuzz: invariant violated: %s\n", what);
  std::abort();
}
#define FUZZ_CHECK(cond)           \
  do {                             \
    if (!(cond)) violation(#cond); \
  } while (0)

class Script {
 public:
  Script(const std::uint8_t* p, std::size_t n) : p_(p), n_(n) {}
  bool more() const { return i_ < n_; }
  std::uint8_t byte() { return i_ < n_ ? p_[i_++] : 0; }
  std::uint32_t u32() {
    std::uint32_t v = 0;
    for (int k = 0; k < 4; ++k)
      v |= static_cast<std::uint32_t>(byte()) << (8 * k);
    return v;
  }
  std::uint64_t u64() { return u32() | static_cast<std::uint64_t>(u32()) << 32; }
  std::string bytes(std::size_t n) {
    std::string s;
    for (std::size_t k = 0; k < n; ++k)
      s.push_back(static_cast<char>(byte()));
    return s;
  }

 private:
  const std::uint8_t* p_;
  std::size_t n_;
  std::size_t i_ = 0;
};

// Exactly `n` bytes (4096-aligned, as a mapping is), so ASan sees a read one byte past.
struct Payload {
  explicit Payload(std::size_t n)
      : size(n), p(static_cast<std::byte*>(::operator new (n, std::align_val_t{4096}))) {
    std::memset(p, 0, n);
  }
  ~Payload() { ::operator delete (p, std::align_val_t{4096}); }
  Payload(const Payload&) = delete;
  Payload& operator=(const Payload&) = delete;
  std::size_t size;
  std::byte* p;
};

volatile std::uint64_t g_sink = 0;

// What the inputs reached (printed by the replay driver).
struct Counts {
  std::uint64_t attached[3] = {0, 0, 0}, refused[3] = {0, 0, 0};
  std::uint64_t hits = 0, misses = 0, busy = 0, exact = 0;
} g_counts;

std::string key_of(std::uint64_t i) {
  std::string s = "k";
  s.append(std::to_string(i));
  return s;
}

// The geometry bytes mapped into what compute_geometry accepts (mostly).
CacheGeometry geometry_from(const std::uint8_t* in) {
  CacheGeometry g;
  g.slots = std::uint64_t{2} << (in[1] % 8);  // 2..256
  g.capacity = 1 + in[2] % (g.slots / 2);
  g.key_max = 1 + in[3] % 48u;
  g.value_max = (static_cast<std::uint32_t>(in[4]) | static_cast<std::uint32_t>(in[5]) << 8) % 300u;
  g.max_probe = 1 + static_cast<std::uint32_t>(in[6] % (g.slots < 64 ? g.slots : 64));
  g.reader_slots = 1 + in[7] % 4u;
  return g;
}

// What the writer stored, for the checks while the table is pristine.
struct Model {
  struct Entry {
    std::string value;
    std::int64_t mod, create, version;
  };
  std::map<std::string, Entry> entries;
};

// Shape 0: upserts / erases / updates driven by the entry script, through the real writer.
void fill(CacheTable& t, Script& s, Model& m, std::vector<std::string>& keys) {
  const auto& g = t.geometry();
  std::int64_t rev = 0;
  while (s.more()) {
    const std::uint8_t op = s.byte();
    std::string key;
    if (op & 0x80) {  // a key from the input, any bytes, sometimes too long
      key = s.bytes(s.byte() % (g.key_max + 4));
    } else {
      key = key_of(op % 40);
    }
    ++rev;
    if (!key.empty()) keys.push_back(key);
    switch ((op >> 5) & 3) {
      case 0:
      case 1: {
        const std::size_t len = s.byte() % (g.value_max + 8);
        std::string value(len, '\0');
        for (std::size_t i = 0; i < len; ++i)
          value[i] = static_cast<char>(rev * 31 + static_cast<std::int64_t>(i));
        const bool ok = t.upsert(key, value, rev, rev / 2, rev % 7);
        FUZZ_CHECK(ok == (!key.empty() && key.size() <= g.key_max && len <= g.value_max));
        if (ok) m.entries[key] = {value, rev, rev / 2, rev % 7};
        break;
      }
      case 2:
        t.erase(key, rev);
        m.entries.erase(key);
        break;
      default: {
        const std::string value(s.byte() % (g.value_max + 8), 'u');
        const bool cached = t.update_if_cached(key, value, rev, 1, 2);
        if (cached && value.size() <= g.value_max) {
          m.entries[key] = {value, rev, 1, 2};
        } else {
          m.entries.erase(key);
        }
      }
    }
  }
  // Evicted keys are gone from the table but not from the model: ask the writer.
  for (auto it = m.entries.begin(); it != m.entries.end();)
    it = t.contains(it->first) ? std::next(it) : m.entries.erase(it);
}

void check_lookup(const CacheTable& t, std::string_view key, bool pristine, const Model& m) {
  CachedEntry e;
  const Lookup r = t.lookup(key, e);
  FUZZ_CHECK(r == Lookup::hit || r == Lookup::miss || r == Lookup::busy);
  ++(r == Lookup::hit ? g_counts.hits : r == Lookup::miss ? g_counts.misses : g_counts.busy);
  const auto& g = t.geometry();
  if (key.empty() || key.size() > g.key_max) FUZZ_CHECK(r == Lookup::miss);
  if (r == Lookup::hit) {
    FUZZ_CHECK(e.value.size() <= g.value_max);
    std::uint64_t sum = 0;
    for (char c : e.value)
      sum += static_cast<unsigned char>(c);
    g_sink = g_sink + sum;
  }
  if (pristine) {
    ++g_counts.exact;
    const auto it = m.entries.find(std::string(key));
    if (it == m.entries.end()) {
      FUZZ_CHECK(r == Lookup::miss);
    } else {
      FUZZ_CHECK(r == Lookup::hit);
      FUZZ_CHECK(e.value == it->second.value);
      FUZZ_CHECK(e.mod_revision == it->second.mod);
      FUZZ_CHECK(e.create_revision == it->second.create);
      FUZZ_CHECK(e.version == it->second.version);
    }
  }
}

// attach() either refuses or takes a geometry inside the payload.
bool attach_checked(CacheTable& t, Payload& p) {
  if (!t.attach(p.p, p.size)) {
    CachedEntry e;
    FUZZ_CHECK(t.lookup("k1", e) == Lookup::miss);  // never attached: nothing to read
    return false;
  }
  const auto& g = t.geometry();
  FUZZ_CHECK(g.payload_size <= p.size);
  FUZZ_CHECK(g.slots >= 2 && (g.slots & (g.slots - 1)) == 0);
  FUZZ_CHECK(g.max_probe >= 1 && g.max_probe <= g.slots);
  FUZZ_CHECK(g.value_max <= ringwire::kv::cache::kMaxValueBytes);
  FUZZ_CHECK(g.slots_offset + g.slots * g.slot_size <= p.size);
  FUZZ_CHECK(g.slot_size >= sizeof(CacheSlot) + round_up(g.key_max, 8) + round_up(g.value_max, 8));
  return true;
}

CacheSlot& slot_at(Payload& p, const CacheGeometry& g, std::uint64_t i) {
  return *reinterpret_cast<CacheSlot*>(p.p + g.slots_offset + (i % g.slots) * g.slot_size);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* in, std::size_t size) {
  if (size < kPrefix) return 0;
  const int shape = in[0] % 3;
  CacheGeometry g = geometry_from(in);
  if (!compute_geometry(g)) return 0;  // cannot happen with the mapping above, but be safe
  const auto delta = static_cast<std::int16_t>(in[9] | in[10] << 8);
  const std::size_t body = size - kPrefix;
  std::size_t head = static_cast<std::size_t>(in[11] | in[12] << 8);
  if (head > body) head = body;
  const std::uint8_t* head_bytes = in + kPrefix;
  Script script(in + kPrefix + head, body - head);

  std::int64_t psize = static_cast<std::int64_t>(g.payload_size);
  if (shape != 0) psize += delta;
  if (psize < 1) psize = 1;
  Payload p(static_cast<std::size_t>(psize));

  Model model;
  std::vector<std::string> keys;
  CacheTable writer;  // shape 0: the legitimate writer's view
  bool pristine = false;
  if (shape == 0) {
    FUZZ_CHECK(CacheTable::format(p.p, p.size, g, static_cast<std::uint64_t>(delta) * 0x9e37u));
    FUZZ_CHECK(writer.attach(p.p, p.size));
    Script entries(head_bytes, head);
    fill(writer, entries, model, keys);
    pristine = true;
  } else if (shape == 1) {
    // Slot bytes from the input, a geometry that adds up (unless perturbed) in the control
    // block; attach decides.
    if (p.size >= sizeof(CacheControl)) {
      auto* c = new (p.p) CacheControl();
      ringwire::kv::cache::store_geometry(*c, g, 0x5eed);
      const std::uint8_t perturb = in[8];
      const std::uint64_t by = 8u << (perturb >> 4);
      switch (perturb % 16) {
        case 1:
          c->slot_size += static_cast<std::uint32_t>(by);
          break;
        case 2:
          c->slots_offset -= by;
          break;
        case 3:
          c->slots <<= 1;
          break;
        case 4:
          c->value_max += static_cast<std::uint32_t>(by);
          break;
        case 5:
          c->state_offset += by;
          break;
        case 6:
          c->max_probe += static_cast<std::uint32_t>(by);
          break;
        default:
          break;  // most inputs keep a consistent geometry
      }
      if (g.slots_offset < p.size) {
        const std::size_t room = p.size - g.slots_offset;
        std::memcpy(p.p + g.slots_offset, head_bytes, head < room ? head : room);
      }
    }
  } else {
    std::memcpy(p.p, head_bytes, head < p.size ? head : p.size);
  }

  CacheTable t;
  const bool attached = attach_checked(t, p);
  ++(attached ? g_counts.attached : g_counts.refused)[shape];
  if (shape == 0) FUZZ_CHECK(attached);

  // Every known key once while the table is as the writer left it.
  if (attached)
    for (const auto& k : keys)
      check_lookup(t, k, pristine, model);

  const std::size_t steps = 64 + (script.more() ? 0 : 64);
  for (std::size_t step = 0; step < steps; ++step) {
    const std::uint8_t op = script.more() ? script.byte() : static_cast<std::uint8_t>(step * 7);
    if (!attached && (op % 8) < 6) continue;
    switch (op % 8) {
      case 0:  // a key the writer used (or one like it)
        check_lookup(t, keys.empty() ? key_of(op) : keys[script.byte() % keys.size()], pristine,
                     model);
        break;
      case 1:  // any bytes as a key, sometimes longer than key_max
        check_lookup(t, script.bytes(script.byte() % (t.geometry().key_max + 8)), pristine, model);
        break;
      case 2: {  // the key a slot claims to hold (its bytes, its length clipped)
        auto& s = slot_at(p, t.geometry(), script.byte());
        const std::uint32_t len = s.key_len.load() % (t.geometry().key_max + 1);
        std::string k(len, '\0');
        std::memcpy(k.data(), reinterpret_cast<std::byte*>(&s) + sizeof(CacheSlot), len);
        check_lookup(t, k, pristine, model);
        break;
      }
      case 3: {  // hostile: a byte anywhere in the payload
        const std::size_t at = script.u32() % p.size;
        p.p[at] = static_cast<std::byte>(script.byte());
        pristine = false;
        break;
      }
      case 4: {  // hostile: a forged entry for a key, with any value length
        const auto& tg = t.geometry();
        auto& s = slot_at(p, tg, script.byte());
        const std::string k = keys.empty() || (op & 0x80)
                                  ? script.bytes(1 + script.byte() % tg.key_max)
                                  : keys[script.byte() % keys.size()];
        if (k.size() > tg.key_max) break;
        s.seq.store(s.seq.load() & ~std::uint64_t{1});
        s.hash.store(key_hash(k, t.seed()));
        s.key_len.store(static_cast<std::uint32_t>(k.size()));
        std::memcpy(reinterpret_cast<std::byte*>(&s) + sizeof(CacheSlot), k.data(), k.size());
        s.value_len.store((op & 0x40) ? script.u32() : script.byte() % (tg.value_max + 2));
        s.state.store(static_cast<std::uint32_t>(SlotState::full));
        pristine = false;
        check_lookup(t, k, false, model);
        break;
      }
      case 5: {  // hostile: a slot's seq, state or lengths
        auto& s = slot_at(p, t.geometry(), script.byte());
        switch (script.byte() % 4) {
          case 0:
            s.seq.store(script.u64());
            break;
          case 1:
            s.state.store(script.byte() % 4);
            break;
          case 2:
            s.value_len.store(script.u32());
            break;
          default:
            s.key_len.store(script.u32());
        }
        pristine = false;
        break;
      }
      case 6: {  // a fresh attach of the payload as it is now
        CacheTable again;
        if (attach_checked(again, p)) {
          for (int q = 0; q < 4; ++q)
            check_lookup(again,
                         keys.empty() ? key_of(script.byte()) : keys[script.byte() % keys.size()],
                         false, model);
        }
        break;
      }
      default:  // hostile: the control block (the attached reader keeps its copy)
        if (p.size >= sizeof(CacheControl)) {
          p.p[script.byte() % sizeof(CacheControl)] = static_cast<std::byte>(script.byte());
          pristine = false;
        }
        break;
    }
  }
  return 0;
}

#ifdef RINGWIRE_FUZZ_REPLAY_MAIN
// ---- replay driver for compilers without libFuzzer ----------------------------
#include "fuzz/replay_driver.hpp"

namespace {

ringwire::test::fuzz::ReplayRng g_rng(0x452821E638D01377ull);
std::uint64_t next_rand() {
  return g_rng.next();
}

void put_prefix(std::vector<std::uint8_t>& out, int shape, std::size_t head) {
  out.resize(kPrefix);
  for (std::size_t i = 1; i < 11; ++i)
    out[i] = static_cast<std::uint8_t>(next_rand());
  out[0] = static_cast<std::uint8_t>(shape + 3 * (next_rand() % 80));
  if (next_rand() % 2 == 0) {  // mostly an exact size
    out[9] = 0;
    out[10] = 0;
  }
  if (next_rand() % 3 != 0) out[8] = 0;  // mostly a consistent geometry
  out[11] = static_cast<std::uint8_t>(head & 0xff);
  out[12] = static_cast<std::uint8_t>(head >> 8);
}

// A formatted table's input: entry ops, then a script that mostly reads.
std::vector<std::uint8_t> table_input() {
  std::vector<std::uint8_t> out;
  std::vector<std::uint8_t> entries;
  const std::size_t n = next_rand() % 300;
  for (std::size_t i = 0; i < n; ++i) {
    std::uint8_t op = static_cast<std::uint8_t>(next_rand());
    if (next_rand() % 8 != 0) op &= 0x7f;  // mostly "k<n>" keys
    if (next_rand() % 3 != 0) op &= 0x9f;  // mostly upserts
    entries.push_back(op);
    if (op & 0x80) {
      const std::uint8_t len = static_cast<std::uint8_t>(next_rand() % 40);
      entries.push_back(len);
      for (std::uint8_t k = 0; k < len; ++k)
        entries.push_back(static_cast<std::uint8_t>(next_rand()));
    }
    entries.push_back(static_cast<std::uint8_t>(next_rand()));
  }
  put_prefix(out, 0, entries.size());
  out.insert(out.end(), entries.begin(), entries.end());
  const std::size_t script = next_rand() % 200;
  for (std::size_t i = 0; i < script; ++i) {
    std::uint8_t b = static_cast<std::uint8_t>(next_rand());
    if (i % 2 == 0 && next_rand() % 4 != 0) b = static_cast<std::uint8_t>(b & 0xf8);  // reads
    out.push_back(b);
  }
  return out;
}

std::vector<std::uint8_t> raw_input(int shape) {
  std::vector<std::uint8_t> out;
  std::size_t head = next_rand() % 6000;
  if (shape == 2 && head < sizeof(CacheControl)) head += sizeof(CacheControl);
  put_prefix(out, shape, head);
  for (std::size_t i = 0; i < head + next_rand() % 300; ++i)
    out.push_back(static_cast<std::uint8_t>(next_rand()));
  CacheGeometry g = geometry_from(out.data());
  if (shape == 2 && next_rand() % 2 == 0 && compute_geometry(g)) {
    // The whole payload from the input, but its control block a real one, a few bytes off.
    CacheControl c{};
    ringwire::kv::cache::store_geometry(c, g, next_rand());
    auto* dst = out.data() + kPrefix;
    std::memcpy(dst, &c, sizeof c);
    for (std::uint64_t m = next_rand() % 3; m > 0; --m)
      dst[next_rand() % offsetof(CacheControl, writer_lock)] =
          static_cast<std::uint8_t>(next_rand());
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  const auto plan = ringwire::test::fuzz::replay_plan(argc, argv, 20000);
  if (!plan.files.empty())
    return ringwire::test::fuzz::replay_files("kv_cache_fuzz", plan.files, LLVMFuzzerTestOneInput);
  const std::uint64_t n = plan.inputs;
  std::uint64_t tables = 0;
  for (std::uint64_t i = 0; i < n; ++i) {
    std::vector<std::uint8_t> in;
    if (i % 3 == 0) {
      in = table_input();
      ++tables;
      // Mutate a few bytes: geometry, entries and script alike.
      const std::uint64_t k = next_rand() % 4;
      for (std::uint64_t m = 0; m < k && !in.empty(); ++m)
        in[next_rand() % in.size()] = static_cast<std::uint8_t>(next_rand());
    } else {
      in = raw_input(static_cast<int>(i % 3));
    }
    LLVMFuzzerTestOneInput(in.data(), in.size());
  }
  const auto u = [](std::uint64_t v) { return static_cast<unsigned long long>(v); };
  const Counts& c = g_counts;
  std::printf(
      "kv_cache_fuzz: %llu inputs replayed (%llu formatted tables), no violation; attached "
      "%llu/%llu/%llu, refused %llu/%llu/%llu (by shape); lookups: %llu hits, %llu misses, "
      "%llu busy, %llu checked exactly against the writer\n",
      u(n), u(tables), u(c.attached[0]), u(c.attached[1]), u(c.attached[2]), u(c.refused[0]),
      u(c.refused[1]), u(c.refused[2]), u(c.hits), u(c.misses), u(c.busy), u(c.exact));
  return 0;
}
#endif
