// File layout (little-endian):
//   [0, 8)   magic "RWKVSNAP"
//   [8, 12)  u32 version (1)
//   [12, 16) u32 crc32c of the body, i.e. of every byte from offset 16 to the end
//   body:    u64 index, u64 term, u32 n_voters, n_voters * u64, u32 n_learners,
//            n_learners * u64, u64 data_len, data (exactly to the end of the file)
#include "storage/snapshot_file.hpp"

#include <fcntl.h>

#include <algorithm>
#include <cctype>
#include <cinttypes>
#include <cstdio>
#include <string_view>
#include <system_error>

#include "ringwire/kv/storage/crc32c.hpp"
#include "storage/posix_io.hpp"

namespace ringwire::kv::storage {
namespace {

constexpr std::string_view kMagic = "RWKVSNAP";
constexpr std::uint32_t kVersion = 1;
constexpr std::size_t kHeaderBytes = 16;

core::Status corrupt(const SnapshotFile& f, const std::string& what) {
  return {core::Errc::corrupted, "snapshot file " + f.path.string() + ": " + what};
}

bool parse_name(const std::string& name, std::uint64_t* term, std::uint64_t* index) {
  // Exactly 16 hex digits, '-', 16 hex digits, ".snap": sscanf alone would accept sloppier
  // names, so the length and the separators are checked first.
  if (name.size() != 16 + 1 + 16 + 5 || name[16] != '-' || name.substr(33) != ".snap") {
    return false;
  }
  for (std::size_t i = 0; i < 33; ++i) {
    if (i == 16) continue;
    if (!std::isxdigit(static_cast<unsigned char>(name[i]))) return false;
  }
  *term = std::stoull(name.substr(0, 16), nullptr, 16);
  *index = std::stoull(name.substr(17, 16), nullptr, 16);
  return true;
}

void put_ids(std::string& buf, const std::vector<raft::NodeId>& ids) {
  put_le(buf, ids.size(), 4);
  for (raft::NodeId id : ids)
    put_le(buf, id, 8);
}

bool get_ids(Reader& r, std::vector<raft::NodeId>* ids) {
  std::uint32_t n = 0;
  if (!r.u32(&n)) return false;
  // Check the count against the bytes actually present before reserving anything.
  if (static_cast<std::uint64_t>(n) * 8 > r.remaining()) return false;
  ids->resize(n);
  for (auto& id : *ids)
    r.u64(&id);
  return true;
}

}  // namespace

std::string snapshot_file_name(std::uint64_t term, std::uint64_t index) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%016" PRIx64 "-%016" PRIx64 ".snap", term, index);
  return buf;
}

core::Result<std::vector<SnapshotFile>> list_snapshot_files(const std::filesystem::path& snap_dir) {
  std::vector<SnapshotFile> out;
  std::error_code ec;
  bool removed = false;
  for (const auto& de : std::filesystem::directory_iterator(snap_dir, ec)) {
    const std::string name = de.path().filename().string();
    if (name.size() > 4 && name.substr(name.size() - 4) == ".tmp") {
      // An interrupted write_snapshot_file: the rename never happened, so nothing refers to it.
      std::filesystem::remove(de.path(), ec);
      removed = true;
      continue;
    }
    SnapshotFile f;
    if (!parse_name(name, &f.term, &f.index)) continue;
    f.path = de.path();
    f.size = static_cast<std::uint64_t>(std::filesystem::file_size(de.path(), ec));
    if (ec) return errno_status("stat", de.path(), ec.value());
    out.push_back(std::move(f));
  }
  if (ec) return errno_status("list", snap_dir, ec.value());
  if (removed) {
    if (auto s = fsync_dir(snap_dir); !s) return s;
  }
  std::sort(out.begin(), out.end(), [](const SnapshotFile& a, const SnapshotFile& b) {
    return a.index != b.index ? a.index < b.index : a.term < b.term;
  });
  return out;
}

core::Result<SnapshotFile> write_snapshot_file(const std::filesystem::path& snap_dir,
                                               const raft::Snapshot& snapshot) {
  std::string body;
  body.reserve(64 + snapshot.data.size() +
               8 * (snapshot.conf.voters.size() + snapshot.conf.learners.size()));
  put_le(body, snapshot.index, 8);
  put_le(body, snapshot.term, 8);
  put_ids(body, snapshot.conf.voters);
  put_ids(body, snapshot.conf.learners);
  put_le(body, snapshot.data.size(), 8);
  body += snapshot.data;

  std::string file(kMagic);
  put_le(file, kVersion, 4);
  put_le(file, crc32c(body), 4);
  file += body;

  SnapshotFile f;
  f.term = snapshot.term;
  f.index = snapshot.index;
  f.path = snap_dir / snapshot_file_name(snapshot.term, snapshot.index);
  f.size = file.size();
  if (auto s = write_file_atomic(f.path, file); !s) return s;
  return f;
}

core::Result<raft::Snapshot> read_snapshot_file(const SnapshotFile& f) {
  std::string file;
  if (auto s = read_file(f.path, &file); !s) return s;
  if (file.size() < kHeaderBytes || std::string_view(file).substr(0, 8) != kMagic) {
    return corrupt(f, "bad magic");
  }
  const auto version = static_cast<std::uint32_t>(get_le(file.data() + 8, 4));
  if (version != kVersion) return corrupt(f, "unknown version " + std::to_string(version));
  const auto want_crc = static_cast<std::uint32_t>(get_le(file.data() + 12, 4));
  const std::string_view body = std::string_view(file).substr(kHeaderBytes);
  if (crc32c(body) != want_crc) return corrupt(f, "checksum mismatch");

  raft::Snapshot snap;
  Reader r(body);
  std::uint64_t data_len = 0;
  std::string_view data;
  if (!r.u64(&snap.index) || !r.u64(&snap.term) || !get_ids(r, &snap.conf.voters) ||
      !get_ids(r, &snap.conf.learners) || !r.u64(&data_len) || data_len != r.remaining() ||
      !r.bytes(static_cast<std::size_t>(data_len), &data)) {
    return corrupt(f, "malformed body");
  }
  // A renamed or copied file must not masquerade as another snapshot.
  if (snap.index != f.index || snap.term != f.term) {
    return corrupt(f, "body says index " + std::to_string(snap.index) + " term " +
                          std::to_string(snap.term) + ", name disagrees");
  }
  snap.data.assign(data);
  return snap;
}

core::Status prune_snapshot_files(const std::filesystem::path& snap_dir,
                                  std::vector<SnapshotFile>* files, std::size_t keep) {
  if (files->size() <= keep) return {};
  const std::size_t drop = files->size() - keep;
  for (std::size_t i = 0; i < drop; ++i) {
    if (::unlink((*files)[i].path.c_str()) != 0 && errno != ENOENT) {
      return errno_status("unlink", (*files)[i].path, errno);
    }
  }
  files->erase(files->begin(), files->begin() + static_cast<std::ptrdiff_t>(drop));
  return fsync_dir(snap_dir);
}

}  // namespace ringwire::kv::storage
