#include "storage/wal.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <system_error>

#include "ringwire/kv/storage/crc32c.hpp"

namespace ringwire::kv::storage {
namespace {

constexpr std::size_t kHeaderCrcCovers = 12;

std::string at(const std::filesystem::path& p, std::uint64_t offset) {
  return p.string() + " at offset " + std::to_string(offset);
}

core::Status corrupt(const Segment& seg, std::uint64_t offset, const std::string& what) {
  return {core::Errc::corrupted, "WAL corrupted: " + at(seg.path, offset) + ": " + what};
}

bool decode_payload(RecordType type, std::string_view payload, Record* r) {
  Reader in(payload);
  switch (type) {
    case RecordType::kEntry: {
      std::uint8_t t = 0;
      if (!in.u64(&r->entry.term) || !in.u64(&r->entry.index) || !in.u8(&t)) return false;
      if (t > static_cast<std::uint8_t>(raft::EntryType::kConfChange)) return false;
      r->entry.type = static_cast<raft::EntryType>(t);
      std::string_view data;
      in.bytes(in.remaining(), &data);
      r->entry.data.assign(data);
      return true;
    }
    case RecordType::kHardState:
      return in.u64(&r->hard_state.term) && in.u64(&r->hard_state.vote) &&
             in.u64(&r->hard_state.commit) && in.remaining() == 0;
    case RecordType::kSnapshotMark: {
      std::uint8_t kind = 0;
      if (!in.u64(&r->mark.index) || !in.u64(&r->mark.term) || !in.u8(&kind)) return false;
      if (kind > 1 || in.remaining() != 0) return false;
      r->mark.replaces_log = kind == 1;
      return true;
    }
  }
  return false;
}

bool all_zero(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c == 0; });
}

// Cuts the last segment back to `offset` (the start of the batch that did not finish) and
// makes the shorter size durable, so the next append does not follow garbage.
core::Status truncate_tail(Segment* seg, std::uint64_t offset, std::vector<std::string>* notes) {
  auto fd = open_fd(seg->path, O_WRONLY);
  if (!fd) return fd.status();
  if (::ftruncate(fd->get(), static_cast<off_t>(offset)) != 0) {
    return errno_status("ftruncate", seg->path, errno);
  }
  if (auto s = fsync_fd(fd->get(), seg->path, false); !s) return s;
  seg->size = offset;
  notes->push_back("torn tail record truncated: " + at(seg->path, offset));
  return {};
}

// Scans one segment. Records are staged until the end of their batch; `torn_at` receives the
// offset of the first batch that did not finish when the damage may be a torn append.
core::Status scan_segment(const Segment& seg, bool last, const BatchVisitor& visit,
                          std::optional<std::uint64_t>* torn_at) {
  std::string file;
  if (auto s = read_file(seg.path, &file); !s) return s;
  const std::string_view all(file);
  const std::uint64_t n = all.size();
  std::uint64_t off = 0;
  std::uint64_t batch_start = 0;
  std::vector<Record> batch;

  // In the last segment, damage that reaches EOF is what an interrupted append looks like;
  // everywhere else it is corruption.
  auto tail_or_corrupt = [&](const std::string& what) -> core::Status {
    if (last) {
      *torn_at = batch_start;
      return {};
    }
    return corrupt(seg, off, what);
  };

  while (off < n) {
    const std::string_view rest = all.substr(off);
    if (rest.size() < kRecordHeaderBytes) return tail_or_corrupt("incomplete record header");
    const char* h = rest.data();
    if (all_zero(rest.substr(0, kRecordHeaderBytes))) {
      // Zero fill (preallocation, or a size extended before the data reached the disk) is the
      // end of the log only if nothing but zeros follows.
      if (all_zero(rest)) return tail_or_corrupt("zero-filled tail");
      return corrupt(seg, off, "zeroed record header");
    }
    if (crc32c(h, kHeaderCrcCovers) != static_cast<std::uint32_t>(get_le(h + 12, 4))) {
      return corrupt(seg, off, "header checksum mismatch");
    }
    const auto len = static_cast<std::uint32_t>(get_le(h, 4));
    const auto payload_crc = static_cast<std::uint32_t>(get_le(h + 4, 4));
    const auto type = static_cast<std::uint8_t>(h[8]);
    const auto flags = static_cast<std::uint8_t>(h[9]);
    if (len > kMaxPayloadBytes) {
      return corrupt(seg, off, "record length " + std::to_string(len) + " exceeds the limit");
    }
    if (type < 1 || type > 3) {
      return corrupt(seg, off, "unknown record type " + std::to_string(type));
    }
    if ((flags & ~kEndOfBatch) != 0 || h[10] != 0 || h[11] != 0) {
      return corrupt(seg, off, "unknown record flags");
    }
    if (len > rest.size() - kRecordHeaderBytes) {
      return tail_or_corrupt("record extends past the end of the file");
    }
    const std::string_view payload = rest.substr(kRecordHeaderBytes, len);
    const std::uint64_t end = off + kRecordHeaderBytes + len;
    if (crc32c(payload) != payload_crc) {
      if (end == n) return tail_or_corrupt("payload checksum mismatch");
      return corrupt(seg, off, "payload checksum mismatch");
    }
    Record r;
    r.type = static_cast<RecordType>(type);
    r.offset = off;
    if (!decode_payload(r.type, payload, &r)) {
      return corrupt(seg, off, "malformed record of type " + std::to_string(type));
    }
    batch.push_back(std::move(r));
    off = end;
    if (flags & kEndOfBatch) {
      if (auto s = visit(seg, batch); !s) return s;
      batch.clear();
      batch_start = off;
    }
  }
  // Every record intact but the batch's last one never written: still an unfinished save.
  if (!batch.empty()) return tail_or_corrupt("segment ends inside a batch");
  return {};
}

bool parse_segment_name(const std::string& name, std::uint64_t* seq, std::uint64_t* first) {
  if (name.size() != 16 + 1 + 16 + 4 || name[16] != '-' || name.substr(33) != ".wal") {
    return false;
  }
  for (std::size_t i = 0; i < 33; ++i) {
    if (i != 16 && !std::isxdigit(static_cast<unsigned char>(name[i]))) return false;
  }
  *seq = std::stoull(name.substr(0, 16), nullptr, 16);
  *first = std::stoull(name.substr(17, 16), nullptr, 16);
  return true;
}

core::Result<UniqueFd> create_segment(const std::filesystem::path& wal_dir, Segment* seg) {
  seg->path = wal_dir / segment_file_name(seg->seq, seg->first_index);
  seg->size = 0;
  auto fd = open_fd(seg->path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND);
  if (!fd) return fd.status();
  // The new name must survive a crash before any record in it is acknowledged.
  if (auto s = fsync_dir(wal_dir); !s) return s;
  return fd;
}

}  // namespace

void BatchEncoder::begin(RecordType type, std::size_t payload_bytes) {
  last_header_ = buf_.size();
  buf_.append(kRecordHeaderBytes, '\0');
  buf_[last_header_ + 8] = static_cast<char>(type);
  buf_.reserve(buf_.size() + payload_bytes);
}

// Fills in length, payload CRC and header CRC once the payload is in place.
void BatchEncoder::end() {
  const std::size_t payload_at = last_header_ + kRecordHeaderBytes;
  const std::size_t len = buf_.size() - payload_at;
  std::string field;
  put_le(field, len, 4);
  put_le(field, crc32c(buf_.data() + payload_at, len), 4);
  buf_.replace(last_header_, 8, field);
  field.clear();
  put_le(field, crc32c(buf_.data() + last_header_, kHeaderCrcCovers), 4);
  buf_.replace(last_header_ + 12, 4, field);
}

void BatchEncoder::add_entry(const raft::Entry& e) {
  begin(RecordType::kEntry, kEntryOverheadBytes + e.data.size());
  put_le(buf_, e.term, 8);
  put_le(buf_, e.index, 8);
  put_le(buf_, static_cast<std::uint8_t>(e.type), 1);
  buf_ += e.data;
  end();
}

void BatchEncoder::add_hard_state(const raft::HardState& hs) {
  begin(RecordType::kHardState, 24);
  put_le(buf_, hs.term, 8);
  put_le(buf_, hs.vote, 8);
  put_le(buf_, hs.commit, 8);
  end();
}

void BatchEncoder::add_mark(const SnapshotMark& m) {
  begin(RecordType::kSnapshotMark, 17);
  put_le(buf_, m.index, 8);
  put_le(buf_, m.term, 8);
  put_le(buf_, m.replaces_log ? 1 : 0, 1);
  end();
}

std::string_view BatchEncoder::finish() {
  if (buf_.empty()) return {};
  buf_[last_header_ + 9] = static_cast<char>(kEndOfBatch);
  std::string field;
  put_le(field, crc32c(buf_.data() + last_header_, kHeaderCrcCovers), 4);
  buf_.replace(last_header_ + 12, 4, field);
  return buf_;
}

std::string segment_file_name(std::uint64_t seq, std::uint64_t first_index) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%016" PRIx64 "-%016" PRIx64 ".wal", seq, first_index);
  return buf;
}

core::Result<std::vector<Segment>> list_segments(const std::filesystem::path& wal_dir) {
  std::vector<Segment> out;
  std::error_code ec;
  for (const auto& de : std::filesystem::directory_iterator(wal_dir, ec)) {
    Segment s;
    if (!parse_segment_name(de.path().filename().string(), &s.seq, &s.first_index)) continue;
    s.path = de.path();
    s.size = static_cast<std::uint64_t>(std::filesystem::file_size(de.path(), ec));
    if (ec) return errno_status("stat", de.path(), ec.value());
    out.push_back(std::move(s));
  }
  if (ec) return errno_status("list", wal_dir, ec.value());
  std::sort(out.begin(), out.end(),
            [](const Segment& a, const Segment& b) { return a.seq < b.seq; });
  for (std::size_t i = 1; i < out.size(); ++i) {
    if (out[i].seq != out[i - 1].seq + 1) {
      return core::Status(core::Errc::corrupted, "WAL corrupted: segment missing between " +
                                                     out[i - 1].path.string() + " and " +
                                                     out[i].path.string());
    }
  }
  return out;
}

core::Status replay_segments(std::vector<Segment>* segments, const BatchVisitor& visit,
                             std::vector<std::string>* notes) {
  for (std::size_t i = 0; i < segments->size(); ++i) {
    const bool last = i + 1 == segments->size();
    std::optional<std::uint64_t> torn_at;
    if (auto s = scan_segment((*segments)[i], last, visit, &torn_at); !s) return s;
    if (torn_at) {
      if (auto s = truncate_tail(&(*segments)[i], *torn_at, notes); !s) return s;
    }
  }
  return {};
}

WalWriter::WalWriter(std::filesystem::path wal_dir, std::vector<Segment> segments, UniqueFd fd)
    : wal_dir_(std::move(wal_dir)), segments_(std::move(segments)), fd_(std::move(fd)) {}

core::Result<std::unique_ptr<WalWriter>> WalWriter::open(const std::filesystem::path& wal_dir,
                                                         std::vector<Segment> segments,
                                                         std::uint64_t next_index) {
  UniqueFd fd;
  if (segments.empty()) {
    Segment first;
    first.first_index = next_index;
    auto created = create_segment(wal_dir, &first);
    if (!created) return created.status();
    fd = std::move(*created);
    segments.push_back(std::move(first));
  } else {
    auto opened = open_fd(segments.back().path, O_WRONLY | O_APPEND);
    if (!opened) return opened.status();
    fd = std::move(*opened);
  }
  return std::unique_ptr<WalWriter>(new WalWriter(wal_dir, std::move(segments), std::move(fd)));
}

core::Status WalWriter::append(std::string_view batch, bool sync,
                               const std::function<void(double)>& fsync_observer) {
  Segment& seg = segments_.back();
  if (broken_) {
    return {core::Errc::system_error,
            "WAL " + seg.path.string() + " is unusable after an earlier write failure"};
  }
  if (auto s = write_all(fd_.get(), batch, seg.path); !s) {
    // Best effort: cut the partial batch so a retry after restart is not refused as
    // corruption. Replay would treat it as a torn tail anyway if nothing follows it.
    if (::ftruncate(fd_.get(), static_cast<off_t>(seg.size)) != 0) { /* already failing */
    }
    broken_ = true;
    return s;
  }
  seg.size += batch.size();
  if (!sync) return {};
  const auto t0 = std::chrono::steady_clock::now();
  if (auto s = fsync_fd(fd_.get(), seg.path, true); !s) {
    broken_ = true;
    return s;
  }
  if (fsync_observer) {
    fsync_observer(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return {};
}

core::Status WalWriter::roll(std::uint64_t first_index) {
  if (broken_) {
    return {core::Errc::system_error, "WAL is unusable after an earlier write failure"};
  }
  Segment next;
  next.seq = segments_.back().seq + 1;
  next.first_index = first_index;
  auto fd = create_segment(wal_dir_, &next);
  if (!fd) return fd.status();
  fd_ = std::move(*fd);
  segments_.push_back(std::move(next));
  return {};
}

core::Status WalWriter::release_through(std::uint64_t index) {
  std::size_t dead = 0;
  while (dead + 1 < segments_.size() && segments_[dead + 1].first_index <= index + 1)
    ++dead;
  if (dead == 0) return {};
  // Oldest first, so a crash part-way leaves a contiguous run of seq numbers.
  for (std::size_t i = 0; i < dead; ++i) {
    if (::unlink(segments_[i].path.c_str()) != 0 && errno != ENOENT) {
      auto s = errno_status("unlink", segments_[i].path, errno);
      segments_.erase(segments_.begin(), segments_.begin() + static_cast<std::ptrdiff_t>(i));
      return s;
    }
  }
  segments_.erase(segments_.begin(), segments_.begin() + static_cast<std::ptrdiff_t>(dead));
  return fsync_dir(wal_dir_);
}

std::uint64_t WalWriter::bytes() const {
  std::uint64_t total = 0;
  for (const auto& s : segments_)
    total += s.size;
  return total;
}

}  // namespace ringwire::kv::storage
