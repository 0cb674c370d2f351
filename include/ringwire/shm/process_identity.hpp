// Who a process is, robustly against PID reuse: the PID plus the kernel's
// record of when it started (field 22 of /proc/PID/stat, in clock ticks since
// boot). A PID whose start time differs is a different process.
#pragma once

#include <sys/types.h>

#include <cstdint>

namespace ringwire::shm {

struct ProcessIdentity {
  std::int32_t pid = 0;
  std::uint64_t start_time = 0;

  static ProcessIdentity self();
  static ProcessIdentity of(pid_t pid);  // start_time 0 when the process is gone
  bool empty() const noexcept { return pid <= 0; }
  bool is_alive() const;  // exists and is the same process
};

// Start time of `pid` from /proc, or 0 when it does not exist (or is a zombie
// already reaped). Zombies count as dead: they will never touch the ring again.
std::uint64_t process_start_time(pid_t pid);

}  // namespace ringwire::shm
