#include "ringwire/shm/process_identity.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace ringwire::shm {

std::uint64_t process_start_time(pid_t pid) {
  if (pid <= 0) return 0;
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[1024];
  ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return 0;
  buf[n] = '\0';
  // The command name (field 2) may hold spaces and parentheses: fields are
  // counted from the last ')'.
  char* p = std::strrchr(buf, ')');
  if (p == nullptr || p[1] == '\0') return 0;
  p += 2;  // now at field 3, the state
  if (*p == 'Z' || *p == 'X') return 0;
  for (int field = 3; field < 22; ++field) {
    p = std::strchr(p, ' ');
    if (p == nullptr) return 0;
    ++p;
  }
  return std::strtoull(p, nullptr, 10);
}

ProcessIdentity ProcessIdentity::self() {
  ProcessIdentity id;
  id.pid = static_cast<std::int32_t>(::getpid());
  id.start_time = process_start_time(::getpid());
  return id;
}

ProcessIdentity ProcessIdentity::of(pid_t pid) {
  ProcessIdentity id;
  id.pid = static_cast<std::int32_t>(pid);
  id.start_time = process_start_time(pid);
  return id;
}

bool ProcessIdentity::is_alive() const {
  if (pid <= 0) return false;
  const std::uint64_t now = process_start_time(pid);
  return now != 0 && now == start_time;
}

}  // namespace ringwire::shm
