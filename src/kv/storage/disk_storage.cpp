// The storage front end: directory ownership (LOCK, meta), recovery, and the two write paths.
//
// Crash-safety invariants:
//  * A save() is one WAL batch, applied on replay all or nothing; it is acknowledged (the
//    caller sends messages) only after its fdatasync returned.
//  * A snapshot file is complete and durable (rename + dir fsync) before any WAL record
//    refers to it, and WAL segments are deleted only after the mark naming it is durable.
//  * Segments are deleted only right after a synced batch in the current segment that carries
//    the latest hard state, so deleting old segments never loses the term or vote.
#include "ringwire/kv/storage/disk_storage.hpp"

#include <fcntl.h>
#include <sys/file.h>

#include <algorithm>
#include <atomic>
#include <system_error>

#include "storage/log_rebuild.hpp"
#include "storage/posix_io.hpp"
#include "storage/snapshot_file.hpp"
#include "storage/wal.hpp"

namespace ringwire::kv::storage {
namespace {

constexpr std::string_view kMetaHeader = "ringwire-kv-storage 1\n";
constexpr std::uint64_t kMetaLimit = 1 << 16;
constexpr std::size_t kKeepSnapshots = 2;

core::Result<UniqueFd> lock_dir(const std::filesystem::path& dir) {
  const auto path = dir / "LOCK";
  auto fd = open_fd(path, O_RDWR | O_CREAT);
  if (!fd) return fd.status();
  // flock locks belong to the open file description, so a second open() of the same dir in
  // this process conflicts just like another process does.
  if (::flock(fd->get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      return core::Status(core::Errc::invalid_argument,
                          "data dir " + dir.string() + " is in use by another kv_server");
    }
    return errno_status("flock", path, errno);
  }
  return fd;
}

core::Status check_meta(const std::filesystem::path& dir, const std::string& identity) {
  const auto path = dir / "meta";
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    // A WAL without meta is not a directory we created (or someone deleted meta): adopting
    // it under a new identity could splice two members' histories.
    if (!std::filesystem::is_empty(dir / "wal", ec) && !ec) {
      return {core::Errc::corrupted,
              "data dir " + dir.string() + " has a WAL but no meta file; refusing to adopt it"};
    }
    std::string content(kMetaHeader);
    content += identity;
    content += '\n';
    return write_file_atomic(path, content);
  }
  std::string content;
  if (auto s = read_file(path, &content, kMetaLimit); !s) return s;
  const std::string_view c(content);
  if (c.substr(0, kMetaHeader.size()) != kMetaHeader || c.empty() || c.back() != '\n') {
    return {core::Errc::corrupted, "meta file " + path.string() + " is not valid"};
  }
  const std::string_view on_disk = c.substr(kMetaHeader.size(), c.size() - kMetaHeader.size() - 1);
  if (on_disk != identity) {
    return {core::Errc::invalid_argument, "data dir " + dir.string() + " belongs to '" +
                                              std::string(on_disk) + "', not to '" + identity +
                                              "'"};
  }
  return {};
}

core::Status ensure_tree(const std::filesystem::path& dir) {
  std::error_code ec;
  if (!std::filesystem::exists(dir, ec)) {
    std::filesystem::create_directories(dir, ec);
    if (ec) return errno_status("mkdir", dir, ec.value());
    if (auto s = fsync_dir(dir.parent_path().empty() ? "." : dir.parent_path()); !s) return s;
  }
  return ensure_dir(dir);
}

}  // namespace

struct DiskStorage::Impl {
  Options opt;
  std::filesystem::path snap_dir;
  UniqueFd lock;
  std::unique_ptr<WalWriter> wal;
  std::vector<SnapshotFile> snaps;  // oldest first
  std::optional<raft::HardState> hard_state;
  std::uint64_t last_index = 0;
  std::function<void(double)> fsync_observer;
  std::atomic<std::uint64_t> bytes{0};

  void update_bytes() {
    std::uint64_t total = wal->bytes();
    for (const auto& s : snaps)
      total += s.size;
    bytes.store(total, std::memory_order_relaxed);
  }

  core::Status add_snapshot_file(const raft::Snapshot& snap) {
    auto f = write_snapshot_file(snap_dir, snap);
    if (!f) return f.status();
    std::erase_if(snaps, [&](const SnapshotFile& s) { return s.path == f->path; });
    snaps.push_back(std::move(*f));
    std::sort(snaps.begin(), snaps.end(), [](const SnapshotFile& a, const SnapshotFile& b) {
      return a.index != b.index ? a.index < b.index : a.term < b.term;
    });
    return {};
  }

  core::Status append(BatchEncoder& batch) {
    auto s = wal->append(batch.finish(), opt.sync, fsync_observer);
    update_bytes();
    return s;
  }

  // Recovery: newest readable snapshot, then the WAL on top of it.
  core::Status recover(Recovered* out) {
    auto listed = list_snapshot_files(snap_dir);
    if (!listed) return listed.status();
    snaps = std::move(*listed);
    for (auto it = snaps.rbegin(); it != snaps.rend(); ++it) {
      auto snap = read_snapshot_file(*it);
      if (snap) {
        out->snapshot = std::move(*snap);
        break;
      }
      if (snap.status().code() != core::Errc::corrupted) return snap.status();
      out->notes.push_back(snap.status().message() + (std::next(it) != snaps.rend()
                                                          ? "; falling back to an older snapshot"
                                                          : "; no older snapshot"));
    }

    const auto wal_dir = opt.dir / "wal";
    auto segs = list_segments(wal_dir);
    if (!segs) return segs.status();
    LogRebuilder log;
    auto visit = [&](const Segment& seg, const std::vector<Record>& batch) {
      return log.apply(seg, batch);
    };
    if (auto s = replay_segments(&*segs, visit, &out->notes); !s) return s;
    if (auto s = log.finish(out->snapshot, &out->entries, &out->notes); !s) return s;
    out->hard_state = log.hard_state();

    hard_state = out->hard_state;
    last_index = !out->entries.empty() ? out->entries.back().index
                 : out->snapshot       ? out->snapshot->index
                                       : 0;
    auto writer = WalWriter::open(wal_dir, std::move(*segs), last_index + 1);
    if (!writer) return writer.status();
    wal = std::move(*writer);
    update_bytes();
    return {};
  }
};

DiskStorage::DiskStorage(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
DiskStorage::~DiskStorage() = default;

core::Result<std::unique_ptr<DiskStorage>> DiskStorage::open(const Options& options,
                                                             Recovered* out) {
  if (options.dir.empty()) return core::Status(core::Errc::invalid_argument, "empty data dir");
  *out = Recovered{};
  auto impl = std::make_unique<Impl>();
  impl->opt = options;
  impl->snap_dir = options.dir / "snap";
  if (auto s = ensure_tree(options.dir); !s) return s;
  auto lock = lock_dir(options.dir);
  if (!lock) return lock.status();
  impl->lock = std::move(*lock);
  if (auto s = check_meta(options.dir, options.identity); !s) return s;
  if (auto s = ensure_dir(options.dir / "wal"); !s) return s;
  if (auto s = ensure_dir(impl->snap_dir); !s) return s;
  Recovered rec;
  if (auto s = impl->recover(&rec); !s) return s;
  *out = std::move(rec);
  return std::unique_ptr<DiskStorage>(new DiskStorage(std::move(impl)));
}

core::Status DiskStorage::save(const std::optional<raft::Snapshot>& snapshot,
                               const std::vector<raft::Entry>& entries,
                               const std::optional<raft::HardState>& hard_state) {
  Impl& m = *impl_;
  if (!snapshot && entries.empty() && !hard_state) return {};
  for (std::size_t i = 0; i < entries.size(); ++i) {
    if (entries[i].data.size() > kMaxEntryDataBytes) {
      return {core::Errc::invalid_argument,
              "entry " + std::to_string(entries[i].index) + " exceeds the WAL record limit"};
    }
    if (i > 0 && entries[i].index != entries[i - 1].index + 1) {
      return {core::Errc::invalid_argument, "entries of one save must be contiguous"};
    }
  }
  const std::uint64_t log_end = snapshot ? snapshot->index : m.last_index;
  if (!entries.empty() && entries.front().index > log_end + 1) {
    // Written as asked, this would be a gap that refuses the next open.
    return {core::Errc::invalid_argument, "entries start at " +
                                              std::to_string(entries.front().index) +
                                              " but the log ends at " + std::to_string(log_end)};
  }
  // Roll only here, between saves, so a batch never spans two segments.
  if (m.wal->current_size() >= m.opt.segment_bytes) {
    if (auto s = m.wal->roll(m.last_index + 1); !s) return s;
  }
  BatchEncoder batch;
  if (snapshot) {
    // The file first: once the mark below is durable, replay depends on it.
    if (auto s = m.add_snapshot_file(*snapshot); !s) return s;
    batch.add_mark({snapshot->index, snapshot->term, true});
    // The batch below may enable deleting every older segment: it must carry the hard state.
    if (!hard_state && m.hard_state) batch.add_hard_state(*m.hard_state);
  }
  for (const auto& e : entries)
    batch.add_entry(e);
  if (hard_state) batch.add_hard_state(*hard_state);
  if (auto s = m.append(batch); !s) return s;

  if (hard_state) m.hard_state = hard_state;
  if (snapshot) m.last_index = snapshot->index;
  if (!entries.empty()) m.last_index = entries.back().index;
  if (snapshot) {
    // The installed snapshot supersedes the whole log before it.
    if (auto s = m.wal->release_through(snapshot->index); !s) return s;
    if (auto s = prune_snapshot_files(m.snap_dir, &m.snaps, kKeepSnapshots); !s) return s;
    m.update_bytes();
  }
  return {};
}

core::Status DiskStorage::save_snapshot(const raft::Snapshot& snapshot) {
  Impl& m = *impl_;
  if (auto s = m.add_snapshot_file(snapshot); !s) return s;
  BatchEncoder batch;
  if (m.hard_state) batch.add_hard_state(*m.hard_state);
  batch.add_mark({snapshot.index, snapshot.term, false});
  if (auto s = m.append(batch); !s) return s;
  if (auto s = m.wal->release_through(snapshot.index); !s) return s;
  if (auto s = prune_snapshot_files(m.snap_dir, &m.snaps, kKeepSnapshots); !s) return s;
  m.update_bytes();
  return {};
}

void DiskStorage::set_fsync_observer(std::function<void(double)> observer) {
  impl_->fsync_observer = std::move(observer);
}

std::uint64_t DiskStorage::bytes_on_disk() const {
  return impl_->bytes.load(std::memory_order_relaxed);
}

const std::filesystem::path& DiskStorage::dir() const {
  return impl_->opt.dir;
}

}  // namespace ringwire::kv::storage
