// Shared helpers for the ringwire test suite: unique segment names, a
// self-verifying message, stress sizing from the environment, forked child
// processes that can never outlive the test, and /dev/shm leak checks.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "ringwire/core/clock.hpp"
#include "ringwire/core/cpu.hpp"
#include "ringwire/core/status.hpp"
#include "ringwire/shm/segment_header.hpp"
#include "ringwire/shm/shm_segment.hpp"

#if defined(__SANITIZE_THREAD__)
#define RINGWIRE_TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define RINGWIRE_TEST_TSAN 1
#endif
#endif

namespace ringwire::test {

// A hang fails the test (SIGALRM's default action kills the process) instead of eating the
// whole CTest timeout.
class Watchdog {
 public:
  explicit Watchdog(unsigned seconds) { ::alarm(seconds); }
  ~Watchdog() { ::alarm(0); }
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;
};

// ---- sizing -----------------------------------------------------------------

// True when RINGWIRE_STRESS_SCALE=tsan is set or the binary is built with TSan.
inline bool running_under_tsan() {
  const char* s = std::getenv("RINGWIRE_STRESS_SCALE");
  if (s != nullptr && std::string(s) == "tsan") return true;
#ifdef RINGWIRE_TEST_TSAN
  return true;
#else
  return false;
#endif
}

// Message count for one stress variant: RINGWIRE_STRESS_MESSAGES when set
// (to run longer or shorter), else `release_default`, divided by 10 under TSan.
inline std::uint64_t stress_messages(std::uint64_t release_default) {
  if (const char* s = std::getenv("RINGWIRE_STRESS_MESSAGES"); s != nullptr && *s != '\0') {
    const std::uint64_t v = std::strtoull(s, nullptr, 10);
    if (v > 0) return v;
  }
  return running_under_tsan() ? release_default / 10 : release_default;
}

// Scales a round count (crash tests) the same way, never below `minimum`.
inline std::uint64_t scaled_rounds(std::uint64_t release_default, std::uint64_t minimum) {
  const std::uint64_t v = running_under_tsan() ? release_default / 4 : release_default;
  return v < minimum ? minimum : v;
}

// What a side does when the ring is full/empty in a busy loop: a few pause
// instructions, then yield the core (the test machine may have only two, and
// ctest runs binaries in parallel). should_check() turns true every 1024
// idle calls, when the caller consults its watchdog / peer liveness, so a
// broken peer fails the test instead of hanging it.
class Idle {
 public:
  void operator()() {
    if (++n_ < 64) {
      core::cpu_relax();
    } else {
      std::this_thread::yield();
    }
  }
  void reset() { n_ = 0; }
  // True every 1024th idle call: time to look at the clock / peer.
  bool should_check() const { return (n_ & 1023) == 1023; }

 private:
  std::uint32_t n_ = 0;
};

// ---- names and /dev/shm -------------------------------------------------------

// Every segment this test process creates starts with this prefix, so a leak
// check only ever looks at our own objects (ctest runs binaries in parallel).
inline std::string name_prefix() {
  return "rwtest." + std::to_string(::getpid()) + ".";
}

inline std::string unique_name(const std::string& tag) {
  static std::atomic<std::uint32_t> counter{0};
  return name_prefix() + tag + "." + std::to_string(counter.fetch_add(1));
}

// Names (without the "ringwire." prefix) in /dev/shm that start with `prefix`.
inline std::vector<std::string> shm_entries_with_prefix(const std::string& prefix) {
  std::vector<std::string> out;
  const std::string full = std::string(shm::kNamePrefix) + prefix;
  DIR* d = ::opendir("/dev/shm");
  if (d == nullptr) return out;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n.compare(0, full.size(), full) == 0) out.push_back(n.substr(shm::kNamePrefix.size()));
  }
  ::closedir(d);
  return out;
}

inline bool shm_name_exists(const std::string& name) {
  return ::access(("/dev/shm/" + std::string(shm::kNamePrefix) + name).c_str(), F_OK) == 0;
}

// Removes whatever this process left behind; returns the names it removed.
inline std::vector<std::string> remove_our_leftovers() {
  auto left = shm_entries_with_prefix(name_prefix());
  for (const auto& n : left)
    (void)shm::remove_segment(n);
  return left;
}

inline std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v)
    s += (s.empty() ? "" : ", ") + x;
  return s;
}

// Removes a name on scope exit, for segments whose ShmSegment gave up
// ownership (or lives in a child process).
class NameGuard {
 public:
  explicit NameGuard(std::string name) : name_(std::move(name)) {}
  ~NameGuard() { (void)shm::remove_segment(name_); }
  NameGuard(const NameGuard&) = delete;
  NameGuard& operator=(const NameGuard&) = delete;
  const std::string& name() const { return name_; }

 private:
  std::string name_;
};

// ---- segment specs ------------------------------------------------------------

inline constexpr std::uint64_t kTestLayoutHash = shm::layout_fingerprint(0x7e57ull, 1ull, 2ull);

// A spec for an SpscRing<T> payload of `capacity` slots.
template <class Ring>
shm::SegmentSpec ring_spec(std::uint64_t capacity,
                           shm::SegmentKind kind = shm::SegmentKind::spsc_ring) {
  shm::SegmentSpec s;
  s.kind = kind;
  s.layout_hash = shm::layout_fingerprint(kTestLayoutHash, sizeof(typename Ring::value_type));
  s.capacity = capacity;
  s.element_size = static_cast<std::uint32_t>(sizeof(typename Ring::value_type));
  s.payload_size = Ring::bytes_for(capacity);
  return s;
}

// ---- a message that verifies itself -------------------------------------------

// 32 bytes: sequence number, two payload words derived from it, and a
// checksum over all three. A receiver checks the sequence (loss, duplicate,
// reorder), that the payload is what the sender wrote for that sequence, and
// that the checksum matches the bytes (torn or corrupted slot).
struct Msg {
  std::uint64_t seq;
  std::uint64_t a;
  std::uint64_t b;
  std::uint64_t sum;
};
static_assert(sizeof(Msg) == 32);

inline std::uint64_t mix64(std::uint64_t x) noexcept {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return x;
}

inline std::uint64_t checksum_of(const Msg& m) noexcept {
  return mix64(m.seq * 0x9e3779b97f4a7c15ull ^ mix64(m.a) ^ (m.b + 0x632be59bd9b4e019ull));
}

inline Msg make_msg(std::uint64_t seq) noexcept {
  Msg m;
  m.seq = seq;
  m.a = mix64(seq + 1);
  m.b = ~m.a ^ (seq << 7);
  m.sum = checksum_of(m);
  return m;
}

// Checks messages in arrival order against the expected sequence 0, 1, 2...
struct Verifier {
  std::uint64_t next = 0;  // the sequence number expected next
  std::uint64_t received = 0;
  std::uint64_t out_of_sequence = 0;  // lost, duplicated or reordered
  std::uint64_t corrupt = 0;          // checksum or payload mismatch
  std::string first_error;

  void check(const Msg& m) {
    ++received;
    if (m.sum != checksum_of(m) || m.a != mix64(m.seq + 1) || m.b != (~m.a ^ (m.seq << 7))) {
      if (corrupt++ == 0 && first_error.empty())
        first_error = "corrupt message at position " + std::to_string(received - 1);
    }
    if (m.seq != next) {
      if (out_of_sequence++ == 0 && first_error.empty()) {
        first_error = "expected seq " + std::to_string(next) + ", got " + std::to_string(m.seq);
      }
      next = m.seq + 1;  // resynchronise so one gap counts once
    } else {
      ++next;
    }
  }
  bool clean() const { return out_of_sequence == 0 && corrupt == 0; }
};

// ---- child processes ------------------------------------------------------------

// A forked child that runs `body` and _exits with its return value. It dies
// with the parent (PR_SET_PDEATHSIG) and is killed and reaped on destruction,
// so no test can leave a process behind.
class Child {
 public:
  Child() = default;
  template <class F>
  static Child spawn(F&& body) {
    std::fflush(nullptr);  // do not duplicate buffered output in the child
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) {
      std::perror("fork");
      std::abort();
    }
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(120);
      int rc = 121;
      try {
        rc = body();
      } catch (...) {
        rc = 122;
      }
      ::_exit(rc);
    }
    Child c;
    c.pid_ = pid;
    return c;
  }
  Child(Child&& o) noexcept
      : pid_(std::exchange(o.pid_, -1)),
        status_(o.status_),
        reaped_(std::exchange(o.reaped_, false)) {}
  Child& operator=(Child&& o) noexcept {
    if (this != &o) {
      cleanup();
      pid_ = std::exchange(o.pid_, -1);
      status_ = o.status_;
      reaped_ = std::exchange(o.reaped_, false);
    }
    return *this;
  }
  ~Child() { cleanup(); }

  pid_t pid() const { return pid_; }
  void kill(int sig = SIGKILL) const {
    if (pid_ > 0 && !reaped_) ::kill(pid_, sig);
  }
  // Waits for the child; returns the raw wait status.
  int wait() {
    if (pid_ > 0 && !reaped_) {
      while (::waitpid(pid_, &status_, 0) < 0 && errno == EINTR) {
      }
      reaped_ = true;
    }
    return status_;
  }
  // Waits at most `timeout`; false if the child is still running.
  bool wait_for(std::chrono::milliseconds timeout) {
    const auto until = core::now_ns() + static_cast<std::uint64_t>(timeout.count()) * 1'000'000ull;
    while (pid_ > 0 && !reaped_) {
      const pid_t r = ::waitpid(pid_, &status_, WNOHANG);
      if (r == pid_) {
        reaped_ = true;
        break;
      }
      if (core::now_ns() >= until) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return true;
  }
  // Exit code, or -signal when killed by a signal.
  int exit_code() {
    const int st = wait();
    if (WIFEXITED(st)) return WEXITSTATUS(st);
    if (WIFSIGNALED(st)) return -WTERMSIG(st);
    return -1000;
  }

 private:
  void cleanup() {
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      wait();
    }
  }
  pid_t pid_ = -1;
  int status_ = 0;
  bool reaped_ = false;
};

// A one-shot pipe for "I am ready" / "go" handshakes between parent and child.
class Pipe {
 public:
  Pipe() {
    if (::pipe2(fds_, O_CLOEXEC) != 0) std::abort();
  }
  ~Pipe() {
    close_read();
    close_write();
  }
  Pipe(const Pipe&) = delete;
  Pipe& operator=(const Pipe&) = delete;
  void close_read() {
    if (fds_[0] >= 0) ::close(fds_[0]);
    fds_[0] = -1;
  }
  void close_write() {
    if (fds_[1] >= 0) ::close(fds_[1]);
    fds_[1] = -1;
  }
  bool send(char c = '!') { return ::write(fds_[1], &c, 1) == 1; }
  // Returns the byte read, or -1 on EOF/error.
  int receive() {
    char c;
    ssize_t n;
    do {
      n = ::read(fds_[0], &c, 1);
    } while (n < 0 && errno == EINTR);
    return n == 1 ? c : -1;
  }

 private:
  int fds_[2] = {-1, -1};
};

// Polls `pred` until it holds or `timeout` passes.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout) {
  const auto until = core::now_ns() + static_cast<std::uint64_t>(timeout.count()) * 1'000'000ull;
  for (;;) {
    if (pred()) return true;
    if (core::now_ns() >= until) return false;
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
}

inline double seconds_since(std::uint64_t start_ns) {
  return static_cast<double>(core::now_ns() - start_ns) / 1e9;
}

}  // namespace ringwire::test
