// Snapshot files snap/<term 16 hex>-<index 16 hex>.snap, written atomically and validated on
// read (magic, version, CRC32C over the body, bounds of every count and length, name == body).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "ringwire/core/status.hpp"
#include "ringwire/raft/types.hpp"

namespace ringwire::kv::storage {

struct SnapshotFile {
  std::uint64_t term = 0;
  std::uint64_t index = 0;
  std::filesystem::path path;
  std::uint64_t size = 0;
};

std::string snapshot_file_name(std::uint64_t term, std::uint64_t index);

// The snapshot files in `snap_dir`, oldest first (by index, then term). Leftover *.tmp files
// of an interrupted write are removed; names that are not ours are ignored.
core::Result<std::vector<SnapshotFile>> list_snapshot_files(const std::filesystem::path& snap_dir);

// tmp, fsync, rename, fsync dir. Returns the file written.
core::Result<SnapshotFile> write_snapshot_file(const std::filesystem::path& snap_dir,
                                               const raft::Snapshot& snapshot);

// Errc::corrupted (naming the file and the problem) for anything that does not validate.
core::Result<raft::Snapshot> read_snapshot_file(const SnapshotFile& file);

// Removes all but the newest `keep` of `files` (oldest first), then fsyncs the directory.
core::Status prune_snapshot_files(const std::filesystem::path& snap_dir,
                                  std::vector<SnapshotFile>* files, std::size_t keep);

}  // namespace ringwire::kv::storage
