// Fuzz target: the fuzzer's input becomes the initial contents of a
// ByteRing region (geometry, tail, head, data area), followed by a script of
// reads / releases / loans / hostile tail moves; the harness drains the ring
// and checks what ByteRing promises for untrusted shared memory:
//   * read() returns ok / empty / corrupted only; corrupted is sticky;
//   * an ok record lies inside the data area, 1 <= size <= max_message,
//     never a padding record (and every byte is read, so ASan sees a stray
//     span);
//   * a loan lies inside the data area and has the requested size;
//   * nothing is written outside the region (the allocation is exactly
//     bytes_for(capacity), so ASan reports any overflow).
//
// Input layout:
//   [0]      bits 0-2: capacity = 64 << (v % 7); bit 3: indices are raw
//            (else head is a random base and tail = head + delta, the
//            plausible range); bit 4: build with create_in() and scribble
//            the indices afterwards (else write the control block and
//            attach()).
//   [1..2]   max_message = 1 + v % max_message_for(capacity)
//   [3..10]  tail, [11..18] head (little-endian)
//   [19..]   the data area (up to capacity bytes), then the op script.
//
// Built with clang: a libFuzzer target (tests/CMakeLists.txt, `fuzz`
// section). Otherwise RINGWIRE_FUZZ_REPLAY_MAIN adds a main() that replays
// a fixed number of pseudo-random inputs (half of them valid ring images
// with a few bytes mutated) or the files named on the command line.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#include "ringwire/ipc/byte_ring.hpp"

namespace {

using ringwire::ByteRing;
using ringwire::ipc::ByteRingControl;
using ringwire::ipc::kPadType;
using ringwire::ipc::ReadStatus;
using ringwire::ipc::RecordHeader;
using ringwire::ipc::RecordView;

constexpr std::size_t kPrefix = 19;

[[noreturn]] void violation(const char* what) {
  std::fprintf(stderr, "byte_ring_fuzz: invariant violated: %s\n", what);
  std::abort();
}
#define FUZZ_CHECK(cond)           \
  do {                             \
    if (!(cond)) violation(#cond); \
  } while (0)

std::uint64_t load_u64(const std::uint8_t* p) {
  std::uint64_t v = 0;
  std::memcpy(&v, p, sizeof v);
  return v;
}

class Script {
 public:
  Script(const std::uint8_t* p, std::size_t n) : p_(p), n_(n) {}
  bool more() const { return i_ < n_; }
  std::uint8_t byte() { return i_ < n_ ? p_[i_++] : 0; }
  std::uint64_t u64() {
    std::uint64_t v = 0;
    for (int k = 0; k < 8; ++k)
      v |= static_cast<std::uint64_t>(byte()) << (8 * k);
    return v;
  }

 private:
  const std::uint8_t* p_;
  std::size_t n_;
  std::size_t i_ = 0;
};

struct Region {
  explicit Region(std::size_t n)
      : size(n), p(static_cast<std::byte*>(::operator new (n, std::align_val_t{128}))) {
    std::memset(p, 0, n);
  }
  ~Region() { ::operator delete (p, std::align_val_t{128}); }
  Region(const Region&) = delete;
  Region& operator=(const Region&) = delete;
  std::size_t size;
  std::byte* p;
};

volatile std::uint64_t g_sink = 0;

void check_view(const RecordView& v, const std::byte* data, std::uint64_t cap, std::uint64_t max) {
  FUZZ_CHECK(!v.data.empty());
  FUZZ_CHECK(v.data.data() >= data + sizeof(RecordHeader));
  FUZZ_CHECK(v.data.data() + v.data.size() <= data + cap);
  FUZZ_CHECK(v.data.size() <= max);
  FUZZ_CHECK(v.type != kPadType);
  std::uint64_t s = 0;
  for (std::byte b : v.data)
    s += std::to_integer<std::uint64_t>(b);
  g_sink = g_sink + s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* in, std::size_t size) {
  if (size < kPrefix) return 0;
  const std::uint8_t flags = in[0];
  const std::uint64_t cap = std::uint64_t{64} << ((flags & 7) % 7);
  const std::uint64_t max =
      1 + (static_cast<std::uint64_t>(in[1]) | static_cast<std::uint64_t>(in[2]) << 8) %
              ByteRing::max_message_for(cap);
  std::uint64_t tail = load_u64(in + 3), head = load_u64(in + 11);
  if ((flags & 8) == 0) {  // plausible: head anywhere (aligned), tail near it
    head = (head & 0xFFFFFFFFull) << 3;
    tail = head + (tail % (cap + 24));
  }
  const bool attach_path = (flags & 16) == 0;
  const std::size_t body = size - kPrefix;
  const std::size_t data_bytes = body < cap ? body : static_cast<std::size_t>(cap);
  Script script(in + kPrefix + data_bytes, body - data_bytes);

  Region region(ByteRing::bytes_for(cap));
  std::byte* data = region.p + ByteRing::data_offset();
  auto* control = reinterpret_cast<ByteRingControl*>(region.p);

  ringwire::core::Result<ByteRing> made =
      ringwire::core::Result<ByteRing>(ringwire::core::Errc::invalid_argument, "unset");
  if (attach_path) {
    new (region.p) ByteRingControl();
    control->capacity = cap;
    control->max_message = max;
    control->tail.store(tail);
    control->head.store(head);
    std::memcpy(data, in + kPrefix, data_bytes);
    made = ByteRing::attach(region.p, region.size);
    if (!made) {
      const auto code = made.status().code();
      FUZZ_CHECK(code == ringwire::core::Errc::corrupted ||
                 code == ringwire::core::Errc::geometry_mismatch);
      return 0;
    }
  } else {
    made = ByteRing::create_in(region.p, region.size, cap, max);
    FUZZ_CHECK(made.has_value());
    std::memcpy(data, in + kPrefix, data_bytes);
    control->tail.store(tail);
    control->head.store(head);
  }
  ByteRing& ring = made.value();
  FUZZ_CHECK(ring.capacity() == cap && ring.max_message() == max);

  bool corrupted = false;
  const std::uint64_t steps = 4 * cap / 8 + 64;
  for (std::uint64_t step = 0; step < steps; ++step) {
    const std::uint8_t op = script.more() ? script.byte() : static_cast<std::uint8_t>(step % 3);
    switch (op % 8) {
      case 5:
        ring.release();
        break;
      case 6: {
        const std::size_t n = 1 + script.byte() % max;
        auto span = ring.loan(n);
        if (!span.empty()) {
          FUZZ_CHECK(span.size() == n);
          FUZZ_CHECK(span.data() >= data + sizeof(RecordHeader));
          FUZZ_CHECK(span.data() + span.size() <= data + cap);
          std::memset(span.data(), 0x5A, n);
          ring.commit(n, 1);
          ring.publish();
        }
        break;
      }
      case 7:
        control->tail.store(script.more() ? control->tail.load() + (script.byte() % 64) * 8 - 256
                                          : control->tail.load());
        break;
      default: {
        RecordView v;
        const ReadStatus st = ring.read(v);
        if (corrupted) FUZZ_CHECK(st == ReadStatus::corrupted);
        if (st == ReadStatus::ok) {
          check_view(v, data, cap, max);
        } else if (st == ReadStatus::corrupted) {
          FUZZ_CHECK(!ring.corruption().empty());
          FUZZ_CHECK(ring.readable());
          corrupted = true;
        } else {
          FUZZ_CHECK(st == ReadStatus::empty);
        }
      }
    }
  }
  (void)ring.used_bytes();
  return 0;
}

#ifdef RINGWIRE_FUZZ_REPLAY_MAIN
// ---- replay driver for compilers without libFuzzer ----------------------------
#include "fuzz/replay_driver.hpp"

namespace {

ringwire::test::fuzz::ReplayRng g_rng(0x243F6A8885A308D3ull);
std::uint64_t next_rand() {
  return g_rng.next();
}

// A valid ring image: a real producer and consumer ran on it for a while.
std::vector<std::uint8_t> valid_image() {
  const unsigned exp = static_cast<unsigned>(next_rand() % 7);
  const std::uint64_t cap = std::uint64_t{64} << exp;
  const std::uint64_t max = 1 + next_rand() % ByteRing::max_message_for(cap);
  Region r(ByteRing::bytes_for(cap));
  auto made = ByteRing::create_in(r.p, r.size, cap, max);
  ByteRing& ring = made.value();
  const std::uint64_t ops = next_rand() % 400;
  for (std::uint64_t i = 0; i < ops; ++i) {
    if (next_rand() % 2 == 0) {
      const std::size_t n = 1 + next_rand() % max;
      auto span = ring.loan(n);
      if (!span.empty()) {
        std::memset(span.data(), static_cast<int>(i), n);
        ring.commit(n, static_cast<std::uint16_t>(i % 0xFFFF));
        if (next_rand() % 3 != 0) ring.publish();
      }
    } else {
      RecordView v;
      if (ring.read(v) == ReadStatus::ok && next_rand() % 2 == 0) ring.release();
    }
  }
  ring.publish();
  std::vector<std::uint8_t> out(kPrefix + cap);
  out[0] = static_cast<std::uint8_t>(exp | 8 | (next_rand() % 4 == 0 ? 16 : 0));  // raw indices
  const std::uint64_t sel = max - 1;
  out[1] = static_cast<std::uint8_t>(sel & 0xFF);
  out[2] = static_cast<std::uint8_t>(sel >> 8);
  const std::uint64_t tail = ring.control().tail.load(), head = ring.control().head.load();
  std::memcpy(out.data() + 3, &tail, 8);
  std::memcpy(out.data() + 11, &head, 8);
  std::memcpy(out.data() + kPrefix, r.p + ByteRing::data_offset(), cap);
  // An op script.
  const std::size_t script = next_rand() % 64;
  for (std::size_t i = 0; i < script; ++i)
    out.push_back(static_cast<std::uint8_t>(next_rand()));
  return out;
}

std::vector<std::uint8_t> random_input() {
  std::vector<std::uint8_t> out(next_rand() % 5000);
  for (auto& b : out)
    b = static_cast<std::uint8_t>(next_rand());
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  const auto plan = ringwire::test::fuzz::replay_plan(argc, argv, 20000);
  if (!plan.files.empty())
    return ringwire::test::fuzz::replay_files("byte_ring_fuzz", plan.files, LLVMFuzzerTestOneInput);
  const std::uint64_t n = plan.inputs;
  std::uint64_t structured = 0;
  for (std::uint64_t i = 0; i < n; ++i) {
    std::vector<std::uint8_t> in;
    if (i % 2 == 0) {
      in = valid_image();
      ++structured;
      // Mutate a few bytes: indices, headers, payload alike.
      const std::uint64_t k = next_rand() % 9;
      for (std::uint64_t m = 0; m < k && !in.empty(); ++m)
        in[next_rand() % in.size()] = static_cast<std::uint8_t>(next_rand());
    } else {
      in = random_input();
    }
    LLVMFuzzerTestOneInput(in.data(), in.size());
  }
  std::printf("byte_ring_fuzz: %llu inputs replayed (%llu from valid ring images), no violation\n",
              static_cast<unsigned long long>(n), static_cast<unsigned long long>(structured));
  return 0;
}
#endif
