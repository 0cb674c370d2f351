// Helpers for the ByteRing / Channel tests: variable-length messages that
// verify themselves byte for byte, a seeded stream of message sizes both
// sides can replay, sizing for the TSan scale, and an alarm watchdog that
// turns a hang into a failed test *and* removes our shared-memory names and
// kills our children on the way out.
//
// Message layout for sequence number `seq` and size `n` (any n >= 1):
//   bytes [0, 8)   seq (little-endian)
//   bytes [8, 16)  checksum: word-wise FNV-1a over (seq, n, body)
//   bytes [16, n)  body: a keyed stream derived from seq
// truncated to n bytes, so even a 1-byte message has defined contents. The
// receiver rebuilds the expected header and body from the sequence number it
// expects next and compares every byte; a lost, duplicated or reordered
// message (or one of the wrong size) fails that comparison.
#pragma once

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "common/test_support.hpp"

namespace ringwire::test {

// ---- sizing -----------------------------------------------------------------

// `release_default` divided by 20 under TSan (RINGWIRE_STRESS_SCALE=tsan or
// a TSan build), never below `minimum`. For unit tests.
inline std::uint64_t tsan_scaled(std::uint64_t release_default, std::uint64_t minimum = 1) {
  const std::uint64_t v = running_under_tsan() ? release_default / 20 : release_default;
  return v < minimum ? minimum : v;
}

// Message count for a channel stress test: RINGWIRE_STRESS_MESSAGES when
// set, else tsan_scaled(release_default); never below `minimum`.
inline std::uint64_t channel_messages(std::uint64_t release_default, std::uint64_t minimum = 1) {
  std::uint64_t v = running_under_tsan() ? release_default / 20 : release_default;
  if (const char* s = std::getenv("RINGWIRE_STRESS_MESSAGES"); s != nullptr && *s != '\0') {
    const std::uint64_t e = std::strtoull(s, nullptr, 10);
    if (e > 0) v = e;
  }
  return v < minimum ? minimum : v;
}

// ---- self-verifying variable-length messages ------------------------------------

inline constexpr std::uint64_t kFnvOffset = 0xcbf29ce484222325ull;
inline constexpr std::uint64_t kFnvPrime = 0x100000001b3ull;
inline constexpr std::size_t kMsgHeader = 16;

inline std::uint64_t body_word(std::uint64_t seq, std::uint64_t i) noexcept {
  return mix64(seq * 0x9e3779b97f4a7c15ull + i * 0xbf58476d1ce4e5b9ull + 0x94d049bb133111ebull);
}
inline std::uint64_t low_bytes(std::uint64_t w, std::size_t k) noexcept {
  return k >= 8 ? w : (w & ((std::uint64_t{1} << (8 * k)) - 1));
}
inline std::uint64_t checksum_start(std::uint64_t seq, std::size_t n) noexcept {
  std::uint64_t h = kFnvOffset;
  h = (h ^ seq) * kFnvPrime;
  h = (h ^ static_cast<std::uint64_t>(n)) * kFnvPrime;
  return h;
}

// The message type carried in the record header: never kPadType (0xFFFF).
inline std::uint16_t msg_type(std::uint64_t seq) noexcept {
  return static_cast<std::uint16_t>(seq % 0xFFFFu);
}

// Writes message `seq` of `n` bytes to p[0, n).
inline void fill_message(std::byte* p, std::size_t n, std::uint64_t seq) noexcept {
  std::uint64_t h = checksum_start(seq, n);
  if (n > kMsgHeader) {
    std::byte* body = p + kMsgHeader;
    const std::size_t len = n - kMsgHeader;
    for (std::size_t i = 0, off = 0; off < len; ++i, off += 8) {
      const std::size_t k = std::min<std::size_t>(8, len - off);
      const std::uint64_t w = low_bytes(body_word(seq, i), k);
      std::memcpy(body + off, &w, k);
      h = (h ^ w) * kFnvPrime;
    }
  }
  const std::uint64_t head[2] = {seq, h};
  std::memcpy(p, head, std::min(n, kMsgHeader));
}

// True when p[0, n) is exactly message `seq` of size n: every body byte is
// compared with the generator, and the stored checksum with one recomputed
// over the received body (so both the sender's and the receiver's view agree).
inline bool message_ok(const std::byte* p, std::size_t n, std::uint64_t seq) noexcept {
  std::uint64_t h = checksum_start(seq, n);
  bool ok = true;
  if (n > kMsgHeader) {
    const std::byte* body = p + kMsgHeader;
    const std::size_t len = n - kMsgHeader;
    for (std::size_t i = 0, off = 0; off < len; ++i, off += 8) {
      const std::size_t k = std::min<std::size_t>(8, len - off);
      std::uint64_t got = 0;
      std::memcpy(&got, body + off, k);
      ok &= got == low_bytes(body_word(seq, i), k);
      h = (h ^ got) * kFnvPrime;
    }
  }
  const std::uint64_t head[2] = {seq, h};
  return ok && std::memcmp(p, head, std::min(n, kMsgHeader)) == 0;
}

// Where message `seq` (size n) differs from what arrived, for failure reports.
inline std::string describe_mismatch(const std::byte* p, std::size_t got_n, std::uint64_t seq,
                                     std::size_t want_n) {
  std::string s = "message seq " + std::to_string(seq) + ": ";
  if (got_n != want_n) {
    s += "size " + std::to_string(got_n) + ", expected " + std::to_string(want_n);
  } else {
    std::string expected(want_n, '\0');
    fill_message(reinterpret_cast<std::byte*>(expected.data()), want_n, seq);
    for (std::size_t i = 0; i < want_n; ++i) {
      const auto g = static_cast<unsigned>(std::to_integer<unsigned char>(p[i]));
      const auto e = static_cast<unsigned>(static_cast<unsigned char>(expected[i]));
      if (g != e) {
        s += "byte " + std::to_string(i) + " of " + std::to_string(want_n) + " is " +
             std::to_string(g) + ", expected " + std::to_string(e);
        break;
      }
    }
  }
  if (got_n >= 8) {
    std::uint64_t carried = 0;
    std::memcpy(&carried, p, 8);
    s += " (the message carries seq " + std::to_string(carried) + ")";
  }
  return s;
}

// ---- message sizes ------------------------------------------------------------

// A seeded stream of sizes in [1, max]. `small` mode: mostly tiny messages
// (90% <= 32 bytes, ~10% <= 512), with one in 1024 drawn from the whole
// range, so every size up to max occurs but the average stays ~60 bytes.
// `uniform` mode: uniform over [1, max].
class SizeStream {
 public:
  enum class Mix { small, uniform };
  SizeStream(std::uint64_t seed, std::uint64_t max, Mix mix = Mix::small)
      : s_(seed), max_(max), mix_(mix) {}
  std::size_t next() noexcept {
    s_ += 0x9e3779b97f4a7c15ull;
    std::uint64_t r = mix64(s_);
    if (mix_ == Mix::uniform) return static_cast<std::size_t>(1 + r % max_);
    const std::uint64_t sel = r & 1023;
    r >>= 10;
    if (sel == 0) return static_cast<std::size_t>(1 + r % max_);
    if (sel < 100) return static_cast<std::size_t>(1 + r % std::min<std::uint64_t>(512, max_));
    return static_cast<std::size_t>(1 + r % std::min<std::uint64_t>(32, max_));
  }

 private:
  std::uint64_t s_;
  std::uint64_t max_;
  Mix mix_;
};

// ---- alarm watchdog -------------------------------------------------------------

// Arms alarm(seconds). If it fires, the handler (async-signal-safe only)
// unlinks every shared-memory name registered with watch_name(), SIGKILLs
// every PID registered with watch_pid() (only children this test forked),
// prints `what` and _exits with 3: a hang fails the test instead of a ctest
// timeout, and leaves nothing behind in /dev/shm.
namespace detail {
inline constexpr int kWatchSlots = 8;
inline char g_watch_names[kWatchSlots][256];
inline std::atomic<int> g_watch_name_used[kWatchSlots];
inline std::atomic<int> g_watch_pids[kWatchSlots];
inline char g_watch_what[256];

inline void on_watchdog_alarm(int) {
  for (int i = 0; i < kWatchSlots; ++i) {
    const int pid = g_watch_pids[i].load();
    if (pid > 0) ::kill(pid, SIGKILL);
  }
  for (int i = 0; i < kWatchSlots; ++i) {
    if (g_watch_name_used[i].load() != 0) ::shm_unlink(g_watch_names[i]);
  }
  const char pre[] = "\n[ watchdog ] alarm fired: ";
  ssize_t r = ::write(2, pre, sizeof pre - 1);
  r = ::write(2, g_watch_what, std::strlen(g_watch_what));
  r = ::write(2, "\n", 1);
  (void)r;
  ::_exit(3);
}
}  // namespace detail

class AlarmWatchdog {
 public:
  AlarmWatchdog(const std::string& what, unsigned seconds) {
    std::snprintf(detail::g_watch_what, sizeof detail::g_watch_what, "%s (%u s)", what.c_str(),
                  seconds);
    for (int i = 0; i < detail::kWatchSlots; ++i) {
      detail::g_watch_name_used[i].store(0);
      detail::g_watch_pids[i].store(0);
    }
    struct sigaction sa {};
    sa.sa_handler = detail::on_watchdog_alarm;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGALRM, &sa, nullptr);
    ::alarm(seconds);
  }
  ~AlarmWatchdog() {
    ::alarm(0);
    for (int i = 0; i < detail::kWatchSlots; ++i) {
      detail::g_watch_name_used[i].store(0);
      detail::g_watch_pids[i].store(0);
    }
  }
  AlarmWatchdog(const AlarmWatchdog&) = delete;
  AlarmWatchdog& operator=(const AlarmWatchdog&) = delete;

  // `name` as given to Channel::create (without the "/ringwire." prefix).
  void watch_name(const std::string& name) {
    for (int i = 0; i < detail::kWatchSlots; ++i) {
      if (detail::g_watch_name_used[i].load() == 0) {
        std::snprintf(detail::g_watch_names[i], sizeof detail::g_watch_names[i], "/%.*s%s",
                      static_cast<int>(shm::kNamePrefix.size()), shm::kNamePrefix.data(),
                      name.c_str());
        detail::g_watch_name_used[i].store(1);
        return;
      }
    }
  }
  void forget_names() {
    for (int i = 0; i < detail::kWatchSlots; ++i)
      detail::g_watch_name_used[i].store(0);
  }
  void watch_pid(pid_t pid) {
    for (int i = 0; i < detail::kWatchSlots; ++i) {
      int expected = 0;
      if (detail::g_watch_pids[i].compare_exchange_strong(expected, pid)) return;
    }
  }
  void forget_pid(pid_t pid) {
    for (int i = 0; i < detail::kWatchSlots; ++i) {
      int expected = pid;
      detail::g_watch_pids[i].compare_exchange_strong(expected, 0);
    }
  }
};

}  // namespace ringwire::test
