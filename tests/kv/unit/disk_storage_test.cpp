// DiskStorage: what goes in comes back after reopen, across segments and snapshots, and every
// kind of damage is either repaired as a torn tail (with a note) or refused with the file and
// offset named.
#include "ringwire/kv/storage/disk_storage.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "ringwire/kv/storage/crc32c.hpp"
#include "storage/snapshot_file.hpp"
#include "storage/wal.hpp"

namespace ringwire::kv::storage {
namespace {

namespace fs = std::filesystem;
using core::Errc;
using raft::Entry;
using raft::HardState;
using raft::Snapshot;

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/rw_disk_storage_XXXXXX";
    const char* p = ::mkdtemp(tmpl);
    if (p == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = p;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// Fixed-size data (8 bytes) so every single-entry save is a 41-byte record.
constexpr std::uint64_t kRecordBytes = kRecordHeaderBytes + kEntryOverheadBytes + 8;

Entry ent(std::uint64_t term, std::uint64_t index) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "d%07llu", static_cast<unsigned long long>(index));
  return Entry{term, index, buf};
}

std::vector<Entry> ents(std::uint64_t term, std::uint64_t from, std::uint64_t to) {
  std::vector<Entry> out;
  for (std::uint64_t i = from; i <= to; ++i)
    out.push_back(ent(term, i));
  return out;
}

Options opts(const fs::path& dir, std::uint64_t segment_bytes = 64ull << 20) {
  Options o;
  o.dir = dir / "data";
  o.identity = "cluster=c1 member=m1";
  o.segment_bytes = segment_bytes;
  return o;
}

std::unique_ptr<DiskStorage> must_open(const Options& o, Recovered* r) {
  auto s = DiskStorage::open(o, r);
  EXPECT_TRUE(s.has_value()) << s.status().to_string();
  if (!s) return nullptr;
  return std::move(s).value();
}

core::Status open_status(const Options& o, Recovered* r) {
  auto s = DiskStorage::open(o, r);
  return s ? core::Status{} : s.status();
}

std::vector<fs::path> files_in(const fs::path& dir, const std::string& ext) {
  std::vector<fs::path> out;
  for (const auto& de : fs::directory_iterator(dir))
    if (de.path().extension() == ext) out.push_back(de.path());
  std::sort(out.begin(), out.end());
  return out;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void spit(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

void flip_byte(const fs::path& p, std::uint64_t offset) {
  std::string b = slurp(p);
  ASSERT_LT(offset, b.size());
  b[offset] = static_cast<char>(b[offset] ^ 0x5A);
  spit(p, b);
}

bool has_note(const Recovered& r, const std::string& needle) {
  return std::any_of(r.notes.begin(), r.notes.end(),
                     [&](const std::string& n) { return n.find(needle) != std::string::npos; });
}

// 20 single-entry saves, then one hard state: a 21-record segment with known offsets.
void write_twenty(const Options& o) {
  Recovered r;
  auto st = must_open(o, &r);
  ASSERT_TRUE(st);
  for (std::uint64_t i = 1; i <= 20; ++i)
    ASSERT_TRUE(st->save(std::nullopt, {ent(1, i)}, std::nullopt));
}

Snapshot snap_at(std::uint64_t index, std::uint64_t term, std::string data) {
  Snapshot s;
  s.index = index;
  s.term = term;
  s.data = std::move(data);
  s.conf.voters = {1, 2, 3};
  s.conf.learners = {9};
  return s;
}

TEST(DiskStorage, FreshDirRecoversNothing) {
  TempDir t;
  Recovered r;
  r.notes.push_back("stale");
  auto st = must_open(opts(t.path()), &r);
  ASSERT_TRUE(st);
  EXPECT_FALSE(r.hard_state);
  EXPECT_FALSE(r.snapshot);
  EXPECT_TRUE(r.entries.empty());
  EXPECT_TRUE(r.notes.empty());
  EXPECT_TRUE(fs::is_directory(t.path() / "data" / "wal"));
  EXPECT_TRUE(fs::is_directory(t.path() / "data" / "snap"));
  EXPECT_TRUE(fs::exists(t.path() / "data" / "meta"));
  EXPECT_EQ(st->dir(), t.path() / "data");
}

TEST(DiskStorage, RoundTripAcrossReopen) {
  TempDir t;
  const auto o = opts(t.path());
  std::vector<Entry> written = ents(1, 1, 5);
  written[2].type = raft::EntryType::kConfChange;
  written[3].data = std::string("\0binary\xFF\0", 9);
  written[4].data.clear();  // a leader's no-op
  {
    Recovered r;
    auto st = must_open(o, &r);
    ASSERT_TRUE(st);
    int fsyncs = 0;
    st->set_fsync_observer([&](double s) {
      EXPECT_GE(s, 0.0);
      ++fsyncs;
    });
    ASSERT_TRUE(st->save(std::nullopt, written, HardState{1, 2, 3}));
    ASSERT_TRUE(st->save(std::nullopt, {}, HardState{2, 0, 5}));
    EXPECT_EQ(fsyncs, 2);  // one per save: the group commit
    EXPECT_GT(st->bytes_on_disk(), 5 * kRecordHeaderBytes);
  }
  Recovered r;
  auto st = must_open(o, &r);
  ASSERT_TRUE(st);
  ASSERT_TRUE(r.hard_state);
  EXPECT_EQ(*r.hard_state, (HardState{2, 0, 5}));
  EXPECT_EQ(r.entries, written);
  EXPECT_FALSE(r.snapshot);
  EXPECT_TRUE(r.notes.empty());
}

TEST(DiskStorage, ConflictingEntriesReplaceTheSuffix) {
  TempDir t;
  const auto o = opts(t.path());
  {
    Recovered r;
    auto st = must_open(o, &r);
    ASSERT_TRUE(st);
    ASSERT_TRUE(st->save(std::nullopt, ents(1, 1, 5), HardState{1, 1, 2}));
    ASSERT_TRUE(st->save(std::nullopt, ents(2, 3, 4), HardState{2, 2, 2}));
  }
  Recovered r;
  auto st = must_open(o, &r);
  ASSERT_TRUE(st);
  std::vector<Entry> want = ents(1, 1, 2);
  want.push_back(ent(2, 3));
  want.push_back(ent(2, 4));
  EXPECT_EQ(r.entries, want);  // 5 (term 1) is gone with the replaced suffix
  // Appending after reopen continues from the replaced log.
  ASSERT_TRUE(st->save(std::nullopt, {ent(2, 5)}, std::nullopt));
  st.reset();
  ASSERT_TRUE(must_open(o, &r));
  want.push_back(ent(2, 5));
  EXPECT_EQ(r.entries, want);
}

TEST(DiskStorage, RefusesEntriesThatWouldLeaveAGap) {
  TempDir t;
  Recovered r;
  auto st = must_open(opts(t.path()), &r);
  ASSERT_TRUE(st);
  ASSERT_TRUE(st->save(std::nullopt, ents(1, 1, 3), std::nullopt));
  EXPECT_EQ(st->save(std::nullopt, {ent(1, 5)}, std::nullopt).code(), Errc::invalid_argument);
  EXPECT_EQ(st->save(std::nullopt, {ent(1, 4), ent(1, 6)}, std::nullopt).code(),
            Errc::invalid_argument);
}

TEST(DiskStorage, RollsSegmentsAndRecoversAcrossThem) {
  TempDir t;
  const auto o = opts(t.path(), 256);
  std::vector<Entry> all;
  {
    Recovered r;
    auto st = must_open(o, &r);
    ASSERT_TRUE(st);
    for (std::uint64_t i = 1; i <= 200; ++i) {
      all.push_back(ent(1 + i / 50, i));
      ASSERT_TRUE(
          st->save(std::nullopt, {all.back()},
                   i % 10 == 0 ? std::optional(HardState{1 + i / 50, 1, i - 5}) : std::nullopt));
    }
    // A replacement that lands in a later segment than the entries it replaces.
    for (std::uint64_t i = 150; i <= 160; ++i)
      all[i - 1] = ent(9, i);
    all.resize(160);
    ASSERT_TRUE(st->save(std::nullopt, ents(9, 150, 160), HardState{9, 2, 140}));
  }
  const auto segs = files_in(o.dir / "wal", ".wal");
  EXPECT_GT(segs.size(), 20u);
  // Names: <seq>-<first index>, seq contiguous from 0.
  EXPECT_EQ(segs.front().filename().string(), segment_file_name(0, 1));
  for (const auto& p : segs)
    EXPECT_LT(fs::file_size(p), 256u + kRecordBytes * 12) << p;  // rolled between saves only

  Recovered r;
  auto st = must_open(o, &r);
  ASSERT_TRUE(st);
  EXPECT_EQ(r.entries, all);
  ASSERT_TRUE(r.hard_state);
  EXPECT_EQ(*r.hard_state, (HardState{9, 2, 140}));
  EXPECT_TRUE(r.notes.empty());
}

TEST(DiskStorage, SaveSnapshotDeletesCoveredSegments) {
  TempDir t;
  const auto o = opts(t.path(), 200);
  Recovered r;
  auto st = must_open(o, &r);
  ASSERT_TRUE(st);
  // The only hard state comes first: segment deletion must not lose it.
  ASSERT_TRUE(st->save(std::nullopt, {}, HardState{1, 1, 0}));
  for (std::uint64_t i = 1; i <= 100; ++i)
    ASSERT_TRUE(st->save(std::nullopt, {ent(1, i)}, std::nullopt));
  const auto before = files_in(o.dir / "wal", ".wal");
  const std::uint64_t bytes_before = st->bytes_on_disk();

  ASSERT_TRUE(st->save_snapshot(snap_at(60, 1, "state@60")));
  const auto after = files_in(o.dir / "wal", ".wal");
  EXPECT_LT(after.size(), before.size());
  EXPECT_LT(st->bytes_on_disk(), bytes_before);
  // Every surviving segment but the first starts past the snapshot; the first may hold 60.
  ASSERT_FALSE(after.empty());
  EXPECT_EQ(after.back(), before.back());  // the segment being written is kept

  // bytes_on_disk is exactly the WAL and snapshot files.
  std::uint64_t on_disk = 0;
  for (const auto& p : files_in(o.dir / "wal", ".wal"))
    on_disk += fs::file_size(p);
  for (const auto& p : files_in(o.dir / "snap", ".snap"))
    on_disk += fs::file_size(p);
  EXPECT_EQ(st->bytes_on_disk(), on_disk);

  st.reset();
  st = must_open(o, &r);
  ASSERT_TRUE(st);
  ASSERT_TRUE(r.snapshot);
  EXPECT_EQ(*r.snapshot, snap_at(60, 1, "state@60"));
  EXPECT_EQ(r.entries, ents(1, 61, 100));
  ASSERT_TRUE(r.hard_state);
  EXPECT_EQ(*r.hard_state, (HardState{1, 1, 0}));

  // Only the newest two snapshot files are kept.
  ASSERT_TRUE(st->save_snapshot(snap_at(80, 1, "state@80")));
  ASSERT_TRUE(st->save_snapshot(snap_at(95, 1, "state@95")));
  const auto snaps = files_in(o.dir / "snap", ".snap");
  ASSERT_EQ(snaps.size(), 2u);
  EXPECT_EQ(snaps[0].filename().string(), snapshot_file_name(1, 80));
  EXPECT_EQ(snaps[1].filename().string(), snapshot_file_name(1, 95));
  st.reset();
  st = must_open(o, &r);
  ASSERT_TRUE(st);
  EXPECT_EQ(r.snapshot->index, 95u);
  EXPECT_EQ(r.entries, ents(1, 96, 100));
}

// Three single-entry records per segment: 1-3, 4-6, 7-9, ... Segment k may go only when
// segment k+1 starts at or before snapshot index + 1.
TEST(DiskStorage, SegmentDeletionBoundaryIsExact) {
  TempDir t;
  const auto o = opts(t.path(), 3 * kRecordBytes);
  Recovered r;
  auto st = must_open(o, &r);
  ASSERT_TRUE(st);
  for (std::uint64_t i = 1; i <= 20; ++i)
    ASSERT_TRUE(st->save(std::nullopt, {ent(1, i)}, std::nullopt));
  ASSERT_EQ(files_in(o.dir / "wal", ".wal")[1].filename().string(), segment_file_name(1, 4));

  ASSERT_TRUE(st->save_snapshot(snap_at(5, 1, "s5")));  // 4-6 still holds 6
  auto segs = files_in(o.dir / "wal", ".wal");
  EXPECT_EQ(segs.front().filename().string(), segment_file_name(1, 4));
  ASSERT_TRUE(st->save_snapshot(snap_at(6, 1, "s6")));  // now 4-6 is all in the snapshot
  segs = files_in(o.dir / "wal", ".wal");
  EXPECT_EQ(segs.front().filename().string(), segment_file_name(2, 7));
  st.reset();

  // Recovering from the older snapshot still works only while its entries are on disk.
  fs::remove(o.dir / "snap" / snapshot_file_name(1, 6));
  const auto s = open_status(o, &r);
  EXPECT_EQ(s.code(), Errc::corrupted) << s.to_string();
  ASSERT_TRUE(write_snapshot_file(o.dir / "snap", snap_at(6, 1, "s6")));
  ASSERT_TRUE(must_open(o, &r));
  EXPECT_EQ(r.snapshot->index, 6u);
  EXPECT_EQ(r.entries, ents(1, 7, 20));
}

// Truncating the tail at several points inside the last record: open repairs it, says so,
// and keeps every earlier record; the repair itself is durable.
TEST(DiskStorage, TornTailIsTruncatedAndReported) {
  const std::uint64_t cuts[] = {1, 3, 8, 24, kRecordBytes - 17, kRecordBytes - 1};
  for (std::uint64_t cut : cuts) {
    SCOPED_TRACE("cut " + std::to_string(cut));
    TempDir t;
    const auto o = opts(t.path());
    write_twenty(o);
    const auto seg = files_in(o.dir / "wal", ".wal").back();
    const auto full = fs::file_size(seg);
    ASSERT_EQ(full, 20 * kRecordBytes);
    fs::resize_file(seg, full - cut);

    Recovered r;
    auto st = must_open(o, &r);
    ASSERT_TRUE(st);
    EXPECT_EQ(r.entries, ents(1, 1, 19));
    const std::string where = seg.filename().string();
    EXPECT_TRUE(has_note(r, "torn tail record truncated"));
    EXPECT_TRUE(has_note(r, where + " at offset " + std::to_string(19 * kRecordBytes)));
    EXPECT_EQ(fs::file_size(seg), 19 * kRecordBytes);
    ASSERT_TRUE(st->save(std::nullopt, {ent(2, 20)}, std::nullopt));
    st.reset();

    st = must_open(o, &r);
    ASSERT_TRUE(st);
    EXPECT_TRUE(r.notes.empty());
    auto want = ents(1, 1, 19);
    want.push_back(ent(2, 20));
    EXPECT_EQ(r.entries, want);
  }
}

TEST(DiskStorage, ZeroFilledTailIsEndOfLog) {
  for (std::size_t zeros : {5u, 16u, 4096u}) {
    SCOPED_TRACE("zeros " + std::to_string(zeros));
    TempDir t;
    const auto o = opts(t.path());
    write_twenty(o);
    const auto seg = files_in(o.dir / "wal", ".wal").back();
    spit(seg, slurp(seg) + std::string(zeros, '\0'));
    Recovered r;
    auto st = must_open(o, &r);
    ASSERT_TRUE(st);
    EXPECT_EQ(r.entries, ents(1, 1, 20));
    EXPECT_TRUE(has_note(r, "at offset " + std::to_string(20 * kRecordBytes)));
    EXPECT_EQ(fs::file_size(seg), 20 * kRecordBytes);
  }
}

// One save is all or nothing: a torn multi-record batch leaves the state of the save before.
TEST(DiskStorage, TornBatchIsDroppedWhole) {
  TempDir t;
  const auto o = opts(t.path());
  {
    Recovered r;
    auto st = must_open(o, &r);
    ASSERT_TRUE(st);
    ASSERT_TRUE(st->save(std::nullopt, ents(1, 1, 3), HardState{1, 1, 1}));
    ASSERT_TRUE(st->save(std::nullopt, ents(2, 4, 6), HardState{2, 2, 5}));
  }
  const auto seg = files_in(o.dir / "wal", ".wal").back();
  fs::resize_file(seg, fs::file_size(seg) - 2);  // only the hard state record is damaged
  Recovered r;
  ASSERT_TRUE(must_open(o, &r));
  EXPECT_EQ(r.entries, ents(1, 1, 3));
  EXPECT_EQ(*r.hard_state, (HardState{1, 1, 1}));
  EXPECT_TRUE(has_note(r, "at offset " + std::to_string(3 * kRecordBytes + 40)));
}

void expect_corrupted(const Options& o, const fs::path& file, std::uint64_t offset) {
  Recovered r;
  const auto s = open_status(o, &r);
  EXPECT_EQ(s.code(), Errc::corrupted) << s.to_string();
  EXPECT_NE(s.message().find("WAL corrupted: "), std::string::npos) << s.message();
  EXPECT_NE(s.message().find(file.filename().string() + " at offset " + std::to_string(offset)),
            std::string::npos)
      << s.message();
}

TEST(DiskStorage, PayloadCorruptionInsideLastSegmentRefusesOpen) {
  TempDir t;
  const auto o = opts(t.path());
  write_twenty(o);
  const auto seg = files_in(o.dir / "wal", ".wal").back();
  flip_byte(seg, 5 * kRecordBytes + kRecordHeaderBytes + 20);  // record 6's data
  expect_corrupted(o, seg, 5 * kRecordBytes);
  EXPECT_EQ(fs::file_size(seg), 20 * kRecordBytes);  // refused, not "repaired"
}

TEST(DiskStorage, LengthCorruptionInsideLastSegmentRefusesOpen) {
  TempDir t;
  const auto o = opts(t.path());
  write_twenty(o);
  const auto seg = files_in(o.dir / "wal", ".wal").back();
  flip_byte(seg, 7 * kRecordBytes + 1);  // record 8's length
  expect_corrupted(o, seg, 7 * kRecordBytes);
  // The very last record's length, too: a complete header whose CRC fails is not a torn tail.
  TempDir t2;
  const auto o2 = opts(t2.path());
  write_twenty(o2);
  const auto seg2 = files_in(o2.dir / "wal", ".wal").back();
  flip_byte(seg2, 19 * kRecordBytes);
  expect_corrupted(o2, seg2, 19 * kRecordBytes);
}

TEST(DiskStorage, CorruptionInAnEarlierSegmentRefusesOpen) {
  // Flipping the last payload byte of an earlier segment: its end is that file's EOF, which
  // would pass for a torn append in the last segment but not here.
  for (bool length : {false, true}) {
    SCOPED_TRACE(length ? "length" : "payload");
    TempDir t;
    const auto o = opts(t.path(), 3 * kRecordBytes);
    write_twenty(o);
    const auto segs = files_in(o.dir / "wal", ".wal");
    ASSERT_GT(segs.size(), 3u);
    const auto& seg = segs[1];
    const std::uint64_t size = fs::file_size(seg);
    ASSERT_EQ(size % kRecordBytes, 0u);
    const std::uint64_t last_rec = size - kRecordBytes;
    flip_byte(seg, length ? last_rec + 2 : size - 1);
    expect_corrupted(o, seg, last_rec);
  }
}

TEST(DiskStorage, TruncatedEarlierSegmentRefusesOpen) {
  TempDir t;
  const auto o = opts(t.path(), 3 * kRecordBytes);
  write_twenty(o);
  const auto segs = files_in(o.dir / "wal", ".wal");
  fs::resize_file(segs[0], fs::file_size(segs[0]) - 3);
  expect_corrupted(o, segs[0], fs::file_size(segs[0]) / kRecordBytes * kRecordBytes);
}

TEST(DiskStorage, ImplausibleLengthRefusesOpenBeforeAllocating) {
  TempDir t;
  const auto o = opts(t.path());
  write_twenty(o);
  const auto seg = files_in(o.dir / "wal", ".wal").back();
  // A header with a valid header CRC but a 4 GiB length, appended at the tail.
  std::string b = slurp(seg);
  std::string h(kRecordHeaderBytes, '\0');
  h[0] = h[1] = h[2] = h[3] = '\xF0';
  h[8] = static_cast<char>(RecordType::kEntry);
  h[9] = static_cast<char>(kEndOfBatch);
  const std::uint32_t hc = crc32c(h.data(), 12);
  for (int i = 0; i < 4; ++i)
    h[12 + static_cast<std::size_t>(i)] = static_cast<char>((hc >> (8 * i)) & 0xFF);
  spit(seg, b + h);
  Recovered r;
  const auto s = open_status(o, &r);
  EXPECT_EQ(s.code(), Errc::corrupted);
  EXPECT_NE(s.message().find("exceeds the limit"), std::string::npos) << s.message();
}

TEST(DiskStorage, GapInTheLogRefusesOpen) {
  TempDir t;
  const auto o = opts(t.path());
  write_twenty(o);
  const auto seg = files_in(o.dir / "wal", ".wal").back();
  BatchEncoder b;
  b.add_entry(ent(1, 23));
  spit(seg, slurp(seg) + std::string(b.finish()));
  Recovered r;
  const auto s = open_status(o, &r);
  EXPECT_EQ(s.code(), Errc::corrupted);
  EXPECT_NE(s.message().find("at offset " + std::to_string(20 * kRecordBytes)), std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("gap"), std::string::npos) << s.message();
}

TEST(DiskStorage, CorruptNewestSnapshotFallsBackToOlder) {
  TempDir t;
  const auto o = opts(t.path());
  {
    Recovered r;
    auto st = must_open(o, &r);
    ASSERT_TRUE(st);
    ASSERT_TRUE(st->save(std::nullopt, ents(1, 1, 50), HardState{1, 1, 50}));
    ASSERT_TRUE(st->save_snapshot(snap_at(20, 1, "state@20")));
    ASSERT_TRUE(st->save_snapshot(snap_at(40, 1, "state@40")));
  }
  const auto newest = o.dir / "snap" / snapshot_file_name(1, 40);
  flip_byte(newest, fs::file_size(newest) - 2);
  Recovered r;
  ASSERT_TRUE(must_open(o, &r));
  ASSERT_TRUE(r.snapshot);
  EXPECT_EQ(*r.snapshot, snap_at(20, 1, "state@20"));
  EXPECT_EQ(r.entries, ents(1, 21, 50));  // the entries the newer snapshot covered are still here
  EXPECT_TRUE(has_note(r, newest.filename().string()));
  EXPECT_TRUE(has_note(r, "falling back"));
}

TEST(DiskStorage, MissingSnapshotTheWalNeedsRefusesOpen) {
  TempDir t;
  const auto o = opts(t.path(), 3 * kRecordBytes);
  {
    Recovered r;
    auto st = must_open(o, &r);
    ASSERT_TRUE(st);
    for (std::uint64_t i = 1; i <= 30; ++i)
      ASSERT_TRUE(st->save(std::nullopt, {ent(1, i)}, HardState{1, 1, i}));
    ASSERT_TRUE(st->save_snapshot(snap_at(25, 1, "state@25")));  // deletes segments <= 25
  }
  flip_byte(o.dir / "snap" / snapshot_file_name(1, 25), 20);
  Recovered r;
  const auto s = open_status(o, &r);
  EXPECT_EQ(s.code(), Errc::corrupted) << s.to_string();
  EXPECT_NE(s.message().find("index 25"), std::string::npos) << s.message();
}

TEST(DiskStorage, IdentityMismatchRefusesOpen) {
  TempDir t;
  auto o = opts(t.path());
  {
    Recovered r;
    ASSERT_TRUE(must_open(o, &r));
  }
  o.identity = "cluster=c2 member=m7";
  Recovered r;
  const auto s = open_status(o, &r);
  EXPECT_EQ(s.code(), Errc::invalid_argument);
  EXPECT_NE(s.message().find("cluster=c1 member=m1"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("cluster=c2 member=m7"), std::string::npos) << s.message();
}

TEST(DiskStorage, LockedDirRefusesSecondOpen) {
  TempDir t;
  const auto o = opts(t.path());
  Recovered r;
  auto st = must_open(o, &r);
  ASSERT_TRUE(st);
  const auto s = open_status(o, &r);
  EXPECT_EQ(s.code(), Errc::invalid_argument);
  EXPECT_EQ(s.message(), "data dir " + o.dir.string() + " is in use by another kv_server");

  // Another process is refused the same way.
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    Recovered cr;
    auto c = DiskStorage::open(o, &cr);
    ::_exit(!c && c.status().code() == Errc::invalid_argument ? 0 : 1);
  }
  int wstatus = 0;
  ASSERT_EQ(::waitpid(pid, &wstatus, 0), pid);
  EXPECT_TRUE(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0);

  st.reset();  // released on destruction
  EXPECT_TRUE(must_open(o, &r));
}

TEST(DiskStorage, InstalledSnapshotReplacesTheLog) {
  TempDir t;
  const auto o = opts(t.path());
  {
    Recovered r;
    auto st = must_open(o, &r);
    ASSERT_TRUE(st);
    ASSERT_TRUE(st->save(std::nullopt, ents(1, 1, 30), HardState{1, 1, 10}));
    // Installed from a leader at an index the local log already has (with another history):
    // nothing of the old log survives, not even 21..30.
    ASSERT_TRUE(st->save(snap_at(20, 3, "leader@20"), {}, HardState{3, 0, 20}));
  }
  Recovered r;
  auto st = must_open(o, &r);
  ASSERT_TRUE(st);
  ASSERT_TRUE(r.snapshot);
  EXPECT_EQ(*r.snapshot, snap_at(20, 3, "leader@20"));
  EXPECT_TRUE(r.entries.empty());
  EXPECT_EQ(*r.hard_state, (HardState{3, 0, 20}));

  ASSERT_TRUE(st->save(std::nullopt, ents(3, 21, 25), std::nullopt));
  ASSERT_TRUE(st->save(snap_at(100, 4, "leader@100"), ents(4, 101, 102), HardState{4, 2, 100}));
  st.reset();
  st = must_open(o, &r);
  ASSERT_TRUE(st);
  EXPECT_EQ(r.snapshot->index, 100u);
  EXPECT_EQ(r.entries, ents(4, 101, 102));
  EXPECT_EQ(*r.hard_state, (HardState{4, 2, 100}));
}

// A crash after an installed snapshot's file was renamed but before its WAL mark: the file is
// used, and the old entries past it (another history) are not appended to it.
TEST(DiskStorage, SnapshotFileWithoutMarkDropsEntriesThatDoNotFollowIt) {
  TempDir t;
  const auto o = opts(t.path());
  {
    Recovered r;
    auto st = must_open(o, &r);
    ASSERT_TRUE(st);
    ASSERT_TRUE(st->save(std::nullopt, ents(1, 1, 30), HardState{1, 1, 10}));
  }
  ASSERT_TRUE(write_snapshot_file(o.dir / "snap", snap_at(20, 3, "leader@20")));
  Recovered r;
  ASSERT_TRUE(must_open(o, &r));
  EXPECT_EQ(r.snapshot->index, 20u);
  EXPECT_TRUE(r.entries.empty());
  EXPECT_TRUE(has_note(r, "do not follow"));
}

TEST(DiskStorage, SnapshotFileIsValidatedAgainstItsName) {
  TempDir t;
  const auto dir = t.path();
  auto f = write_snapshot_file(dir, snap_at(7, 2, "x"));
  ASSERT_TRUE(f);
  auto back = read_snapshot_file(*f);
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, snap_at(7, 2, "x"));
  SnapshotFile renamed = *f;
  renamed.index = 8;
  EXPECT_EQ(read_snapshot_file(renamed).status().code(), Errc::corrupted);
  // A truncated file fails the checksum, not the allocator.
  fs::resize_file(f->path, 30);
  EXPECT_EQ(read_snapshot_file(*f).status().code(), Errc::corrupted);
}

}  // namespace
}  // namespace ringwire::kv::storage
