// Size-limited data dirs for the `disk` fault: each member's data dir lives on its own tmpfs
// mount (source name "rwf-<pid>-disk", so a crashed run's mounts are found and unmounted by
// the next one). The fault fills the member's file system with a filler file (the member's
// next WAL write or fsync fails with ENOSPC, and kv_server stops itself, exit 2, rather than
// acknowledge what it could not persist); healing deletes the filler and restarts it.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace ringwire::tools::kv_faults {

class Disks {
 public:
  static int cleanup_stale();  // unmounts tmpfs mounts of runs whose process is gone

  // Mounts a tmpfs of `size_mb` at each of `roots`; false with *error when one fails (the
  // others are unmounted again).
  bool mount(const std::vector<std::filesystem::path>& roots, int size_mb, std::string* error);
  void unmount_all();
  ~Disks() { unmount_all(); }

  bool active() const { return !roots_.empty(); }
  bool fill(int node, std::string* detail);  // false: the filler could not be written
  void unfill(int node);

 private:
  std::vector<std::filesystem::path> roots_;
};

}  // namespace ringwire::tools::kv_faults
