#include "disks.hpp"

#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include <spdlog/spdlog.h>

#include "proc.hpp"

namespace ringwire::tools::kv_faults {

namespace fs = std::filesystem;

namespace {
std::string source_name() {
  return "rwf-" + std::to_string(::getpid()) + "-disk";
}
fs::path filler(const fs::path& root) {
  return root / "filler";
}
}  // namespace

int Disks::cleanup_stale() {
  int removed = 0;
  std::ifstream in("/proc/mounts");
  std::string line;
  std::vector<std::string> stale;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string src, target, type;
    ls >> src >> target >> type;
    if (type != "tmpfs" || src.rfind("rwf-", 0) != 0) continue;
    const long pid = std::strtol(src.c_str() + 4, nullptr, 10);
    if (pid > 0 && !pid_alive(static_cast<pid_t>(pid))) stale.push_back(target);
  }
  for (const auto& t : stale) {
    run_command({"umount", "-l", t});
    spdlog::warn("unmounted stale data-dir tmpfs {}", t);
    ++removed;
  }
  return removed;
}

bool Disks::mount(const std::vector<fs::path>& roots, int size_mb, std::string* error) {
  for (const auto& r : roots) {
    std::error_code ec;
    fs::create_directories(r, ec);
    std::string out;
    if (run_command({"mount", "-t", "tmpfs", "-o", "size=" + std::to_string(size_mb) + "m",
                     source_name(), r.string()},
                    &out) != 0) {
      *error = "mount tmpfs at " + r.string() + ": " + out;
      unmount_all();
      return false;
    }
    roots_.push_back(r);
  }
  return true;
}

void Disks::unmount_all() {
  for (const auto& r : roots_)
    run_command({"umount", "-l", r.string()});  // lazy: a member may still be dying
  roots_.clear();
}

bool Disks::fill(int node, std::string* detail) {
  const fs::path root = roots_.at(static_cast<std::size_t>(node));
  struct statvfs st {};
  if (::statvfs(root.c_str(), &st) != 0) {
    *detail = std::string("statvfs: ") + std::strerror(errno);
    return false;
  }
  const auto avail = static_cast<off_t>(st.f_bavail * st.f_frsize);
  const int fd = ::open(filler(root).c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    *detail = std::string("open filler: ") + std::strerror(errno);
    return false;
  }
  // Whatever fallocate leaves (it may stop short on tmpfs), a write loop takes.
  (void)::posix_fallocate(fd, 0, avail);
  ::lseek(fd, 0, SEEK_END);
  static const std::string block(1 << 16, 'x');
  while (::write(fd, block.data(), block.size()) > 0) {
  }
  ::close(fd);
  ::statvfs(root.c_str(), &st);
  *detail =
      "filled the member's tmpfs (" + std::to_string(st.f_bavail * st.f_frsize) + " bytes left)";
  return true;
}

void Disks::unfill(int node) {
  std::error_code ec;
  fs::remove(filler(roots_.at(static_cast<std::size_t>(node))), ec);
}

}  // namespace ringwire::tools::kv_faults
