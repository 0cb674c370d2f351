#include "cleanup_registry.hpp"

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstring>

#include "ringwire/shm/shm_segment.hpp"

namespace ringwire::shm {
namespace detail {
namespace {

constexpr int kSlots = 64;
constexpr int kNameMax = 256;

// A slot is claimed by CAS on `owner` (0 = free), filled, then published by
// `ready`. The handler reads only published slots whose owner is this PID: a
// forked child inherits the table but must not unlink its parent's segments.
struct Slot {
  std::atomic<pid_t> owner{0};
  std::atomic<bool> ready{false};
  char name[kNameMax];
};
Slot g_slots[kSlots];

void on_signal(int sig) {
  const pid_t self = ::getpid();
  for (auto& s : g_slots) {
    if (s.ready.load(std::memory_order_acquire) &&
        s.owner.load(std::memory_order_relaxed) == self) {
      ::shm_unlink(s.name);
    }
  }
  // Default action (terminate) with the original signal, so the exit status
  // still tells the parent what happened.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  ::sigaction(sig, &dfl, nullptr);
  ::raise(sig);
}

}  // namespace

void register_owned(std::string_view os_name) {
  if (os_name.size() >= kNameMax) return;
  const pid_t self = ::getpid();
  for (auto& s : g_slots) {
    pid_t expected = 0;
    if (s.owner.compare_exchange_strong(expected, self, std::memory_order_acq_rel)) {
      std::memcpy(s.name, os_name.data(), os_name.size());
      s.name[os_name.size()] = '\0';
      s.ready.store(true, std::memory_order_release);
      return;
    }
  }
}

void unregister_owned(std::string_view os_name) {
  const pid_t self = ::getpid();
  for (auto& s : g_slots) {
    if (s.ready.load(std::memory_order_acquire) &&
        s.owner.load(std::memory_order_relaxed) == self && os_name == s.name) {
      s.ready.store(false, std::memory_order_release);
      s.owner.store(0, std::memory_order_release);
      return;
    }
  }
}

}  // namespace detail

void install_cleanup_handlers() {
  static std::atomic<bool> installed{false};
  if (installed.exchange(true)) return;
  struct sigaction sa {};
  sa.sa_handler = detail::on_signal;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGINT, SIGTERM, SIGHUP})
    ::sigaction(sig, &sa, nullptr);
}

}  // namespace ringwire::shm
