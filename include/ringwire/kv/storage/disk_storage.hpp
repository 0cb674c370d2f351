// Durable Raft storage for one kv_server member: a segmented write-ahead log and snapshot
// files in the member's data directory.
//
// Layout of DIR:
//   LOCK                      flock()ed while a server owns the directory
//   meta                      identity line (cluster and member), checked on every open
//   wal/<seq>-<first>.wal     WAL segments: records of entries, hard states, snapshot marks
//   snap/<term>-<index>.snap  snapshots (written to a temp file, fsynced, renamed, dir fsynced)
//
// Every WAL record carries a CRC32C of its header and of its payload. Recovery on open:
// newest valid snapshot, then every record in segment order. A torn record at the very end
// of the last segment (an interrupted append) is truncated away and reported in
// Recovered::notes; a bad record anywhere else refuses the open with the file and offset.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ringwire/core/status.hpp"
#include "ringwire/raft/types.hpp"

namespace ringwire::kv::storage {

struct Options {
  std::filesystem::path dir;
  std::string identity;                       // e.g. "cluster=... member=..."; checked on open
  std::uint64_t segment_bytes = 64ull << 20;  // roll to a new segment past this size
  bool sync = true;                           // fdatasync on save (off only for tests/benches)
};

// What open() found on disk: hand it to raft::Node::restart (and restore the store from
// snapshot->data). Empty (no hard state) for a fresh directory.
struct Recovered {
  std::optional<raft::HardState> hard_state;
  std::optional<raft::Snapshot> snapshot;
  std::vector<raft::Entry> entries;  // contiguous, from snapshot index + 1
  std::vector<std::string> notes;    // e.g. "torn tail truncated: wal/...: offset 4096"
};

class DiskStorage {
 public:
  // Creates DIR if absent. Errors: identity mismatch or directory locked by another process
  // (invalid_argument), corruption before the tail (corrupted, message names file and offset),
  // I/O errors (system_error).
  static core::Result<std::unique_ptr<DiskStorage>> open(const Options& options, Recovered* out);
  ~DiskStorage();
  DiskStorage(const DiskStorage&) = delete;
  DiskStorage& operator=(const DiskStorage&) = delete;

  // The durable part of one raft::Ready, with one write and one fdatasync for everything
  // (group commit): an installed snapshot (its file first; it replaces every entry), then the
  // entries (the log's suffix from entries.front().index is replaced), then the hard state.
  core::Status save(const std::optional<raft::Snapshot>& snapshot,
                    const std::vector<raft::Entry>& entries,
                    const std::optional<raft::HardState>& hard_state);

  // After raft::Node::compact: write the snapshot file atomically, then drop WAL segments
  // whose entries are all <= snapshot.index and all but the newest two snapshot files.
  core::Status save_snapshot(const raft::Snapshot& snapshot);

  // Called with the duration of every fdatasync, in seconds (metrics histogram).
  void set_fsync_observer(std::function<void(double)> observer);

  std::uint64_t bytes_on_disk() const;
  const std::filesystem::path& dir() const;

 private:
  struct Impl;
  explicit DiskStorage(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ringwire::kv::storage
