// The segmented write-ahead log: record encoding, segment scanning with the torn-tail rule,
// and the appending writer. What the records mean for the Raft log is log_rebuild.hpp's job.
//
// Record = 16-byte header + payload, little-endian:
//   [0, 4)   u32 payload length (<= kMaxPayloadBytes)
//   [4, 8)   u32 crc32c of the payload
//   [8]      u8 type (RecordType)
//   [9]      u8 flags (kEndOfBatch on the last record of one save())
//   [10, 12) reserved, zero
//   [12, 16) u32 crc32c of bytes [0, 12): a corrupted length or type is caught before use
// Payloads: entry = u64 term, u64 index, u8 EntryType, data (to the end of the payload);
//   hard state = u64 term, u64 vote, u64 commit; snapshot mark = u64 index, u64 term, u8 kind.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ringwire/core/status.hpp"
#include "ringwire/raft/types.hpp"
#include "storage/posix_io.hpp"

namespace ringwire::kv::storage {

inline constexpr std::size_t kRecordHeaderBytes = 16;
inline constexpr std::uint32_t kMaxPayloadBytes = 64u << 20;
inline constexpr std::size_t kEntryOverheadBytes = 17;  // term, index, type
inline constexpr std::size_t kMaxEntryDataBytes = kMaxPayloadBytes - kEntryOverheadBytes;

enum class RecordType : std::uint8_t { kEntry = 1, kHardState = 2, kSnapshotMark = 3 };
inline constexpr std::uint8_t kEndOfBatch = 0x01;

// "Entries <= index are in the snapshot file snap/<term>-<index>.snap."
struct SnapshotMark {
  std::uint64_t index = 0;
  std::uint64_t term = 0;
  // Installed from the leader: the snapshot replaces the whole log, so every entry before the
  // mark is superseded. A compaction mark (false) leaves the entries after index in force.
  bool replaces_log = false;
};

struct Record {
  RecordType type = RecordType::kEntry;
  std::uint64_t offset = 0;  // of the header within its segment
  raft::Entry entry;
  raft::HardState hard_state;
  SnapshotMark mark;
};

// The records of one save(), encoded into one buffer so it goes out in one write. Replay
// applies a batch only once its last record (the one flagged kEndOfBatch) is intact, so a
// crash mid-write never leaves half a Ready (say, entries of a new term without that term's
// hard state) in the recovered log.
class BatchEncoder {
 public:
  void add_entry(const raft::Entry& e);  // caller checks data.size() <= kMaxEntryDataBytes
  void add_hard_state(const raft::HardState& hs);
  void add_mark(const SnapshotMark& m);
  bool empty() const { return buf_.empty(); }
  // Flags the last record as the end of the batch; the buffer is then ready to append.
  std::string_view finish();

 private:
  void begin(RecordType type, std::size_t payload_bytes);
  void end();
  std::string buf_;
  std::size_t last_header_ = 0;
};

struct Segment {
  std::uint64_t seq = 0;
  std::uint64_t first_index = 0;  // last index saved before the segment was created, plus one
  std::filesystem::path path;
  std::uint64_t size = 0;
};

std::string segment_file_name(std::uint64_t seq, std::uint64_t first_index);

// The segments in `wal_dir` in seq order. A hole in the seq numbers (a lost middle segment)
// is corrupted: segments are only ever deleted oldest first.
core::Result<std::vector<Segment>> list_segments(const std::filesystem::path& wal_dir);

// Called once per complete batch, in log order.
using BatchVisitor = std::function<core::Status(const Segment&, const std::vector<Record>&)>;

// Replays every segment. A torn tail of the last segment is truncated away (the segment's
// size is updated and a note added); any other bad record fails with Errc::corrupted,
// "WAL corrupted: <path> at offset <n>: <what>".
core::Status replay_segments(std::vector<Segment>* segments, const BatchVisitor& visit,
                             std::vector<std::string>* notes);

class WalWriter {
 public:
  // Appends to the last segment, or creates the first one (starting at next_index).
  static core::Result<std::unique_ptr<WalWriter>> open(const std::filesystem::path& wal_dir,
                                                       std::vector<Segment> segments,
                                                       std::uint64_t next_index);

  // One write() (looping on short writes), then one fdatasync when `sync`. Any failure
  // leaves the writer unusable: after a failed fdatasync the page cache may have dropped the
  // dirty pages, so nothing written since the last good sync can be trusted.
  core::Status append(std::string_view batch, bool sync,
                      const std::function<void(double)>& fsync_observer);

  std::uint64_t current_size() const { return segments_.back().size; }
  // Starts a new segment whose entries will begin at first_index (file and dir fsynced).
  core::Status roll(std::uint64_t first_index);
  // Deletes the oldest segments whose live entries are all <= index: segment k is dead when
  // segment k+1 starts at or before index + 1 (an entry written into k+1 or later at an index
  // already in k supersedes k's copy). The current segment is never deleted.
  core::Status release_through(std::uint64_t index);
  std::uint64_t bytes() const;

 private:
  WalWriter(std::filesystem::path wal_dir, std::vector<Segment> segments, UniqueFd fd);
  std::filesystem::path wal_dir_;
  std::vector<Segment> segments_;  // never empty; back() is being written
  UniqueFd fd_;
  bool broken_ = false;
};

}  // namespace ringwire::kv::storage
