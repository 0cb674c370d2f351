// ByteRing in process memory: geometry, the empty / full boundaries, the
// loan -> commit -> publish protocol (nothing visible before publish), batch
// commit and batch release, the padding record at the wrap, every message
// size through many wrap-arounds, attach(), and hostile shared memory
// (scribbled tail / head / record headers) that must be reported as
// `corrupted` without ever forming a span outside the data area.
//
// The region is a heap block of exactly bytes_for(capacity) bytes, so under
// ASan any access past the data area is reported on top of the explicit
// pointer checks.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "common/channel_support.hpp"
#include "ringwire/ipc/byte_ring.hpp"
#include "ringwire/queue/ring_storage.hpp"

namespace {

using ringwire::ByteRing;
using ringwire::core::Errc;
using ringwire::ipc::ByteRingControl;
using ringwire::ipc::kPadType;
using ringwire::ipc::ReadStatus;
using ringwire::ipc::record_bytes;
using ringwire::ipc::RecordHeader;
using ringwire::ipc::RecordView;
using ringwire::queue::OwnedBytes;
using ringwire::test::fill_message;
using ringwire::test::message_ok;

// ---- a ring in heap memory ------------------------------------------------------------

struct Region {
  explicit Region(std::uint64_t capacity) : cap(capacity), mem(ByteRing::bytes_for(capacity)) {
    std::memset(mem.get(), 0xCD, mem.size());
  }
  std::byte* base() const { return static_cast<std::byte*>(mem.get()); }
  std::byte* data() const { return base() + ByteRing::data_offset(); }
  std::byte* data_end() const { return data() + cap; }
  ByteRingControl& control() const { return *reinterpret_cast<ByteRingControl*>(base()); }
  RecordHeader header_at(std::uint64_t offset) const {
    RecordHeader h;
    std::memcpy(&h, data() + offset, sizeof h);
    return h;
  }
  void set_header(std::uint64_t offset, RecordHeader h) const {
    std::memcpy(data() + offset, &h, sizeof h);
  }
  // A payload span must start after a record header inside the data area and
  // end inside it.
  bool inside(std::span<const std::byte> s) const {
    return s.data() >= data() + sizeof(RecordHeader) && s.data() <= data_end() &&
           s.size() <= static_cast<std::size_t>(data_end() - s.data());
  }
  std::uint64_t offset_of(const std::byte* p) const {
    return static_cast<std::uint64_t>(p - data());
  }

  std::uint64_t cap;
  OwnedBytes mem;
};

ByteRing make_ring(Region& r, std::uint64_t max_message) {
  auto res = ByteRing::create_in(r.base(), r.mem.size(), r.cap, max_message);
  EXPECT_TRUE(res.has_value()) << res.status().to_string();
  return std::move(res.value());
}

// Loan, fill with message `seq`, commit (type/flags from seq), no publish.
bool commit_msg(ByteRing& ring, std::size_t n, std::uint64_t seq) {
  auto span = ring.loan(n);
  if (span.size() != n) return false;
  fill_message(span.data(), n, seq);
  ring.commit(n, ringwire::test::msg_type(seq), static_cast<std::uint16_t>(n));
  return true;
}
bool write_msg(ByteRing& ring, std::size_t n, std::uint64_t seq) {
  if (!commit_msg(ring, n, seq)) return false;
  ring.publish();
  return true;
}

// Reads one record and checks it is message `seq` of size n, inside the area.
void expect_msg(ByteRing& ring, const Region& region, std::size_t n, std::uint64_t seq) {
  RecordView v;
  ASSERT_EQ(ring.read(v), ReadStatus::ok) << "seq " << seq << ": " << ring.corruption();
  ASSERT_TRUE(region.inside(v.data)) << "span outside the data area";
  ASSERT_EQ(v.data.size(), n) << "seq " << seq;
  EXPECT_EQ(v.type, ringwire::test::msg_type(seq));
  EXPECT_EQ(v.flags, static_cast<std::uint16_t>(n));
  ASSERT_TRUE(message_ok(v.data.data(), n, seq))
      << ringwire::test::describe_mismatch(v.data.data(), v.data.size(), seq, n);
}

// ---- geometry -------------------------------------------------------------------------

TEST(ByteRingGeometry, CapacityAndMaxMessageAreChecked) {
  EXPECT_EQ(ByteRing::data_offset() % 128, 0u);
  EXPECT_GE(ByteRing::data_offset(), sizeof(ByteRingControl));
  EXPECT_EQ(ByteRing::bytes_for(4096), ByteRing::data_offset() + 4096);
  EXPECT_EQ(ByteRing::max_message_for(64), 24u);
  EXPECT_EQ(ByteRing::max_message_for(1024), 504u);
  EXPECT_EQ(record_bytes(1), 16u);
  EXPECT_EQ(record_bytes(8), 16u);
  EXPECT_EQ(record_bytes(9), 24u);

  struct Case {
    std::uint64_t cap, max;
    bool ok;
  };
  const Case cases[] = {
      {64, 24, true},
      {64, 1, true},
      {1024, 504, true},
      {std::uint64_t{1} << 32, ByteRing::max_message_for(std::uint64_t{1} << 32), true},
      {100, 10, false},                      // not a power of two
      {96, 8, false},                        // not a power of two
      {32, 8, false},                        // below 64
      {16, 1, false},                        // below 64
      {0, 1, false},                         // zero
      {64, 25, false},                       // max message above capacity / 2 - 8
      {64, 0, false},                        // zero max message
      {1024, 505, false},                    // one above the limit
      {std::uint64_t{1} << 33, 100, false},  // above 2^32
  };
  for (const auto& c : cases) {
    const auto st = ByteRing::check_geometry(c.cap, c.max);
    EXPECT_EQ(st.is_ok(), c.ok) << "capacity " << c.cap << " max " << c.max << ": "
                                << st.to_string();
    if (!c.ok) {
      EXPECT_EQ(st.code(), Errc::invalid_argument);
    }
  }
}

TEST(ByteRingGeometry, CreateInRefusesBadGeometryAndSmallRegions) {
  Region r(256);
  auto bad_cap = ByteRing::create_in(r.base(), r.mem.size(), 100, 10);
  ASSERT_FALSE(bad_cap.has_value());
  EXPECT_EQ(bad_cap.status().code(), Errc::invalid_argument);
  auto bad_max = ByteRing::create_in(r.base(), r.mem.size(), 256, 121);
  ASSERT_FALSE(bad_max.has_value());
  EXPECT_EQ(bad_max.status().code(), Errc::invalid_argument);
  auto small = ByteRing::create_in(r.base(), r.mem.size() - 1, 256, 120);
  ASSERT_FALSE(small.has_value());
  EXPECT_EQ(small.status().code(), Errc::geometry_mismatch);
  auto ok = ByteRing::create_in(r.base(), r.mem.size(), 256, 120);
  ASSERT_TRUE(ok.has_value()) << ok.status().to_string();
  EXPECT_EQ(ok->capacity(), 256u);
  EXPECT_EQ(ok->max_message(), 120u);
  EXPECT_EQ(r.control().capacity, 256u);
  EXPECT_EQ(r.control().max_message, 120u);
  EXPECT_EQ(r.control().tail.load(), 0u);
  EXPECT_EQ(r.control().head.load(), 0u);
  // The data area was cleared.
  for (std::uint64_t i = 0; i < r.cap; ++i)
    ASSERT_EQ(std::to_integer<int>(r.data()[i]), 0) << "data byte " << i;
}

TEST(ByteRingGeometry, AttachChecksTheStoredGeometryAgainstTheRegion) {
  Region r(256);
  { auto ring = make_ring(r, 120); }
  ASSERT_TRUE(ByteRing::attach(r.base(), r.mem.size()).has_value());

  auto small = ByteRing::attach(r.base(), r.mem.size() - 1);
  ASSERT_FALSE(small.has_value());
  EXPECT_EQ(small.status().code(), Errc::geometry_mismatch);
  auto tiny = ByteRing::attach(r.base(), sizeof(ByteRingControl) - 1);
  ASSERT_FALSE(tiny.has_value());
  EXPECT_EQ(tiny.status().code(), Errc::geometry_mismatch);

  const std::uint64_t bad_caps[] = {100, 0, 32, 512, std::uint64_t{1} << 40, ~std::uint64_t{0}};
  for (std::uint64_t cap : bad_caps) {
    r.control().capacity = cap;
    auto a = ByteRing::attach(r.base(), r.mem.size());
    ASSERT_FALSE(a.has_value()) << "capacity " << cap;
    EXPECT_EQ(a.status().code(), Errc::geometry_mismatch) << "capacity " << cap;
  }
  r.control().capacity = 256;
  const std::uint64_t bad_max[] = {0, 121, 256, ~std::uint64_t{0}};
  for (std::uint64_t max : bad_max) {
    r.control().max_message = max;
    auto a = ByteRing::attach(r.base(), r.mem.size());
    ASSERT_FALSE(a.has_value()) << "max message " << max;
    EXPECT_EQ(a.status().code(), Errc::geometry_mismatch) << "max message " << max;
  }
}

// ---- empty and full ---------------------------------------------------------------------

TEST(ByteRing, NewRingIsEmpty) {
  Region r(64);
  auto ring = make_ring(r, 24);
  RecordView v;
  EXPECT_EQ(ring.read(v), ReadStatus::empty);
  EXPECT_FALSE(ring.readable());
  EXPECT_FALSE(ring.release());
  EXPECT_FALSE(ring.publish());
  EXPECT_EQ(ring.used_bytes(), 0u);
  EXPECT_TRUE(ring.writable(24));
  EXPECT_FALSE(ring.producer_corrupted());
}

TEST(ByteRing, FullAndEmptyBoundaries) {
  Region r(64);
  auto ring = make_ring(r, 24);
  // Four records of 16 bytes fill the 64-byte ring exactly.
  for (std::uint64_t s = 0; s < 4; ++s)
    ASSERT_TRUE(write_msg(ring, 8, s)) << "message " << s;
  EXPECT_EQ(ring.used_bytes(), 64u);
  EXPECT_EQ(r.control().tail.load(), 64u);
  EXPECT_TRUE(ring.loan(1).empty()) << "a full ring handed out a loan";
  EXPECT_FALSE(ring.writable(1));
  const std::byte one{1};
  EXPECT_FALSE(ring.try_write(&one, 1));

  // Reading without releasing gives nothing back to the producer.
  expect_msg(ring, r, 8, 0);
  EXPECT_TRUE(ring.loan(1).empty());
  EXPECT_EQ(r.control().head.load(), 0u);
  ASSERT_TRUE(ring.release());
  EXPECT_EQ(r.control().head.load(), 16u);
  EXPECT_EQ(ring.used_bytes(), 48u);

  // Exactly one 16-byte record fits again, at offset 0 (the wrap).
  EXPECT_FALSE(ring.writable(9)) << "a 24-byte record does not fit in 16 free bytes";
  auto span = ring.loan(8);
  ASSERT_EQ(span.size(), 8u);
  EXPECT_EQ(span.data(), r.data() + sizeof(RecordHeader));
  fill_message(span.data(), 8, 4);
  ring.commit(8, ringwire::test::msg_type(4), 8);
  ASSERT_TRUE(ring.publish());
  EXPECT_TRUE(ring.loan(1).empty());

  for (std::uint64_t s = 1; s < 5; ++s)
    expect_msg(ring, r, 8, s);
  RecordView v;
  EXPECT_EQ(ring.read(v), ReadStatus::empty);
  ASSERT_TRUE(ring.release());
  EXPECT_EQ(ring.used_bytes(), 0u);
  EXPECT_EQ(r.control().head.load(), r.control().tail.load());

  // The largest message: two of them fill a fresh ring.
  Region r2(64);
  auto ring2 = make_ring(r2, 24);
  ASSERT_TRUE(write_msg(ring2, 24, 5));
  ASSERT_TRUE(write_msg(ring2, 24, 6));
  EXPECT_FALSE(ring2.writable(1));
  EXPECT_EQ(ring2.used_bytes(), 64u);
  expect_msg(ring2, r2, 24, 5);
  expect_msg(ring2, r2, 24, 6);
  ring2.release();
}

// ---- loan / commit / publish ------------------------------------------------------------

TEST(ByteRing, NothingIsVisibleBeforePublish) {
  Region r(256);
  auto ring = make_ring(r, 120);
  RecordView v;
  auto span = ring.loan(20);
  ASSERT_EQ(span.size(), 20u);
  ASSERT_TRUE(r.inside(span));
  fill_message(span.data(), 20, 7);
  EXPECT_EQ(ring.read(v), ReadStatus::empty) << "a loan is visible";
  EXPECT_FALSE(ring.readable());
  ring.commit(20, 0x1234, 0x5678);
  EXPECT_EQ(ring.read(v), ReadStatus::empty) << "a commit is visible before publish";
  EXPECT_FALSE(ring.readable());
  EXPECT_EQ(r.control().tail.load(), 0u);
  EXPECT_EQ(r.control().messages.load(), 0u);
  EXPECT_EQ(ring.used_bytes(), 0u);

  ASSERT_TRUE(ring.publish());
  EXPECT_FALSE(ring.publish()) << "a second publish found something new";
  EXPECT_EQ(r.control().tail.load(), record_bytes(20));
  EXPECT_EQ(r.control().messages.load(), 1u);
  EXPECT_EQ(r.control().bytes.load(), 20u);
  EXPECT_TRUE(ring.readable());
  ASSERT_EQ(ring.read(v), ReadStatus::ok);
  EXPECT_EQ(v.type, 0x1234);
  EXPECT_EQ(v.flags, 0x5678);
  ASSERT_EQ(v.data.size(), 20u);
  EXPECT_EQ(v.data.data(), span.data()) << "zero-copy: the consumer sees the loaned bytes";
  EXPECT_TRUE(message_ok(v.data.data(), 20, 7));
  EXPECT_EQ(ring.read(v), ReadStatus::empty);
}

TEST(ByteRing, BatchCommitThenOnePublish) {
  Region r(1024);
  auto ring = make_ring(r, 504);
  const std::size_t sizes[] = {1, 7, 8, 9, 100, 504, 16, 17};
  std::uint64_t total = 0, payload = 0;
  RecordView v;
  for (std::size_t i = 0; i < std::size(sizes); ++i) {
    ASSERT_TRUE(commit_msg(ring, sizes[i], i));
    total += record_bytes(sizes[i]);
    payload += sizes[i];
    EXPECT_EQ(r.control().tail.load(), 0u);
    EXPECT_EQ(ring.read(v), ReadStatus::empty) << "visible after " << i + 1 << " commits";
  }
  ASSERT_TRUE(ring.publish());
  EXPECT_EQ(r.control().tail.load(), total);
  EXPECT_EQ(r.control().messages.load(), std::size(sizes));
  EXPECT_EQ(r.control().bytes.load(), payload);
  for (std::size_t i = 0; i < std::size(sizes); ++i)
    expect_msg(ring, r, sizes[i], i);
  EXPECT_EQ(ring.read(v), ReadStatus::empty);
}

TEST(ByteRing, BatchReadThenOneRelease) {
  Region r(256);
  auto ring = make_ring(r, 120);
  const std::size_t sizes[] = {10, 33, 1, 64};
  for (std::size_t i = 0; i < std::size(sizes); ++i)
    ASSERT_TRUE(write_msg(ring, sizes[i], i));
  std::vector<RecordView> views;
  for (std::size_t i = 0; i < std::size(sizes); ++i) {
    RecordView v;
    ASSERT_EQ(ring.read(v), ReadStatus::ok);
    views.push_back(v);
    EXPECT_EQ(r.control().head.load(), 0u) << "read() released";
  }
  // Fill the rest: the producer must not reuse the unreleased records.
  std::uint64_t seq = 100;
  while (write_msg(ring, 8, seq))
    ++seq;
  EXPECT_GT(seq, 100u);
  for (std::size_t i = 0; i < views.size(); ++i) {
    ASSERT_EQ(views[i].data.size(), sizes[i]);
    EXPECT_TRUE(message_ok(views[i].data.data(), sizes[i], i))
        << "view " << i << " was overwritten before release";
  }
  const std::uint64_t read_end = [&] {
    std::uint64_t e = 0;
    for (auto n : sizes)
      e += record_bytes(n);
    return e;
  }();
  ASSERT_TRUE(ring.release());
  EXPECT_EQ(r.control().head.load(), read_end);
  EXPECT_FALSE(ring.release()) << "second release found something";
  for (std::uint64_t s = 100; s < seq; ++s)
    expect_msg(ring, r, 8, s);
  ASSERT_TRUE(ring.release());
  EXPECT_EQ(ring.used_bytes(), 0u);
}

// ---- the wrap ---------------------------------------------------------------------------

TEST(ByteRing, PaddingRecordAtTheWrapKeepsTheMessageContiguous) {
  Region r(256);
  auto ring = make_ring(r, 120);
  // Three 64-byte records move the position to offset 192 (64 bytes to the end).
  for (std::uint64_t s = 0; s < 3; ++s)
    ASSERT_TRUE(write_msg(ring, 56, s));
  for (std::uint64_t s = 0; s < 3; ++s)
    expect_msg(ring, r, 56, s);
  ring.release();

  // A 112-byte record does not fit in 64: padding, then offset 0.
  auto span = ring.loan(100);
  ASSERT_EQ(span.size(), 100u);
  EXPECT_EQ(span.data(), r.data() + sizeof(RecordHeader)) << "message not moved to the start";
  const RecordHeader pad = r.header_at(192);
  EXPECT_EQ(pad.type, kPadType);
  EXPECT_EQ(pad.length, 64u - sizeof(RecordHeader));
  fill_message(span.data(), 100, 3);
  ring.commit(100, ringwire::test::msg_type(3), 100);
  ASSERT_TRUE(ring.publish());
  EXPECT_EQ(r.control().tail.load(), 192u + 64u + record_bytes(100));
  EXPECT_EQ(r.control().messages.load(), 4u) << "padding counted as a message";
  expect_msg(ring, r, 100, 3);
  RecordView v;
  EXPECT_EQ(ring.read(v), ReadStatus::empty);
  ring.release();

  // A record that ends exactly at the end of the area needs no padding.
  // Position now 112, 144 bytes to the end: a 120-byte message (128) and
  // then an 8-byte one (16) that ends exactly at the end.
  ASSERT_TRUE(write_msg(ring, 120, 4));
  auto last = ring.loan(8);
  ASSERT_EQ(last.size(), 8u);
  EXPECT_EQ(r.offset_of(last.data()), 240u + sizeof(RecordHeader));
  fill_message(last.data(), 8, 5);
  ring.commit(8, ringwire::test::msg_type(5), 8);
  ring.publish();
  expect_msg(ring, r, 120, 4);
  expect_msg(ring, r, 8, 5);
  ring.release();
  EXPECT_EQ(r.control().tail.load() % 256, 0u);

  // Padding of the smallest kind: 8 bytes (a bare header, length 0).
  ASSERT_TRUE(write_msg(ring, 120, 6));  // offset 0 -> 128
  ASSERT_TRUE(write_msg(ring, 112, 7));  // 128 -> 248
  expect_msg(ring, r, 120, 6);
  expect_msg(ring, r, 112, 7);
  ring.release();
  auto small = ring.loan(1);
  ASSERT_EQ(small.size(), 1u);
  EXPECT_EQ(small.data(), r.data() + sizeof(RecordHeader));
  EXPECT_EQ(r.header_at(248).type, kPadType);
  EXPECT_EQ(r.header_at(248).length, 0u);
  fill_message(small.data(), 1, 8);
  ring.commit(1, ringwire::test::msg_type(8), 1);
  ring.publish();
  expect_msg(ring, r, 1, 8);
  ring.release();
}

// Every size 1..max, in several patterns of fill level, through many wraps.
TEST(ByteRing, EveryMessageSizeThroughManyWrapArounds) {
  Region r(1024);
  auto ring = make_ring(r, 504);
  const std::size_t max = 504;
  std::uint64_t wseq = 0, rseq = 0;
  std::vector<std::size_t> pending;  // sizes written, not yet read
  auto read_one = [&] {
    ASSERT_FALSE(pending.empty());
    expect_msg(ring, r, pending.front(), rseq++);
    pending.erase(pending.begin());
  };
  for (int pass = 0; pass < 4; ++pass) {
    SCOPED_TRACE("pass " + std::to_string(pass));
    for (std::size_t i = 0; i < max; ++i) {
      const std::size_t n = pass == 1 ? max - i : 1 + i;
      switch (pass) {
        case 0:  // ping-pong: the ring holds one message
        case 1:
          ASSERT_TRUE(write_msg(ring, n, wseq));
          pending.push_back(n);
          ++wseq;
          read_one();
          if (HasFatalFailure()) return;
          ring.release();
          break;
        default:  // keep the ring as full as it gets; release in batches
          while (!write_msg(ring, n, wseq)) {
            ASSERT_FALSE(pending.empty()) << "an empty ring refused " << n << " bytes";
            const std::size_t batch = pass == 2 ? 1 : pending.size();
            for (std::size_t k = 0; k < batch; ++k)
              read_one();
            if (HasFatalFailure()) return;
            ring.release();
          }
          pending.push_back(n);
          ++wseq;
      }
    }
  }
  while (!pending.empty()) {
    read_one();
    if (HasFatalFailure()) return;
  }
  ring.release();
  EXPECT_EQ(rseq, wseq);
  EXPECT_GT(r.control().tail.load(), 200 * r.cap) << "not many wrap-arounds";
  EXPECT_EQ(r.control().messages.load(), wseq);
  EXPECT_EQ(ring.used_bytes(), 0u);
}

// ---- misuse of the producer API ------------------------------------------------------------

TEST(ByteRing, LoanOfZeroOrAboveMaxIsRefused) {
  Region r(256);
  auto ring = make_ring(r, 120);
  EXPECT_TRUE(ring.loan(0).empty());
  EXPECT_TRUE(ring.loan(121).empty());
  EXPECT_TRUE(ring.loan(SIZE_MAX).empty());
  EXPECT_FALSE(ring.writable(0));
  EXPECT_FALSE(ring.writable(121));
  const std::byte b[200] = {};
  EXPECT_FALSE(ring.try_write(b, 0));
  EXPECT_FALSE(ring.try_write(b, 121));
  ring.commit(10);  // no loan: nothing happens
  EXPECT_FALSE(ring.publish());
  EXPECT_EQ(r.control().tail.load(), 0u);
  EXPECT_FALSE(ring.producer_corrupted());
  ASSERT_TRUE(write_msg(ring, 120, 0));
  expect_msg(ring, r, 120, 0);
}

TEST(ByteRing, CommitOfFewerBytesThanLoaned) {
  Region r(256);
  auto ring = make_ring(r, 120);
  auto span = ring.loan(100);
  ASSERT_EQ(span.size(), 100u);
  std::memset(span.data(), 0xEE, 100);
  fill_message(span.data(), 40, 0);
  ring.commit(0);             // refused: nothing
  ring.commit(101);           // refused: more than loaned
  ring.commit(40, kPadType);  // refused: reserved type
  EXPECT_FALSE(ring.publish()) << "a refused commit published something";
  ring.commit(40, ringwire::test::msg_type(0), 40);
  ASSERT_TRUE(ring.publish());
  EXPECT_EQ(r.control().tail.load(), record_bytes(40));
  ring.commit(40);  // the loan is used up
  EXPECT_FALSE(ring.publish());
  expect_msg(ring, r, 40, 0);
  // The next record starts right after the 48-byte one.
  auto next = ring.loan(10);
  ASSERT_EQ(next.size(), 10u);
  EXPECT_EQ(r.offset_of(next.data()), record_bytes(40) + sizeof(RecordHeader));
  RecordView v;
  EXPECT_EQ(ring.read(v), ReadStatus::empty);
}

TEST(ByteRing, AbandonedLoanCostsNothing) {
  Region r(256);
  auto ring = make_ring(r, 120);
  auto first = ring.loan(50);
  ASSERT_EQ(first.size(), 50u);
  std::memset(first.data(), 0xEE, 50);
  EXPECT_FALSE(ring.publish()) << "an uncommitted loan was published";
  auto second = ring.loan(20);  // replaces the first
  ASSERT_EQ(second.size(), 20u);
  EXPECT_EQ(second.data(), first.data());
  fill_message(second.data(), 20, 0);
  ring.commit(20, ringwire::test::msg_type(0), 20);
  ASSERT_TRUE(ring.publish());
  expect_msg(ring, r, 20, 0);
  RecordView v;
  EXPECT_EQ(ring.read(v), ReadStatus::empty);
  ring.release();

  // An abandoned loan that needed the padding record: the padding stays
  // (harmless), the next message still lands contiguous at offset 0.
  for (std::uint64_t s = 1; s < 3; ++s) {
    ASSERT_TRUE(write_msg(ring, 72, s));  // two 80-byte records: 32 -> 192
    expect_msg(ring, r, 72, s);
  }
  ring.release();
  ASSERT_EQ(r.control().tail.load(), 192u);
  auto padded = ring.loan(100);
  ASSERT_EQ(padded.size(), 100u);
  EXPECT_EQ(padded.data(), r.data() + sizeof(RecordHeader));
  auto small = ring.loan(10);  // replaces it: also at offset 0
  ASSERT_EQ(small.size(), 10u);
  EXPECT_EQ(small.data(), r.data() + sizeof(RecordHeader));
  fill_message(small.data(), 10, 3);
  ring.commit(10, ringwire::test::msg_type(3), 10);
  ring.publish();
  expect_msg(ring, r, 10, 3);
  EXPECT_EQ(ring.read(v), ReadStatus::empty);
  ring.release();
  EXPECT_EQ(r.control().messages.load(), 4u) << "padding counted as a message";
}

// ---- attach ---------------------------------------------------------------------------------

TEST(ByteRing, AttachPicksUpPublishedAndReleasedPositions) {
  Region r(512);
  auto a = make_ring(r, 248);
  for (std::uint64_t s = 0; s < 4; ++s)
    ASSERT_TRUE(write_msg(a, 30 + s, s));
  expect_msg(a, r, 30, 0);
  a.release();                         // head after message 0
  expect_msg(a, r, 31, 1);             // read, not released
  ASSERT_TRUE(commit_msg(a, 77, 99));  // committed, never published: lost with this handle

  auto b_res = ByteRing::attach(r.base(), r.mem.size());
  ASSERT_TRUE(b_res.has_value()) << b_res.status().to_string();
  ByteRing b = std::move(b_res.value());
  EXPECT_EQ(b.capacity(), 512u);
  EXPECT_EQ(b.max_message(), 248u);
  // The consumer resumes at the released head: message 1 again, then 2, 3.
  expect_msg(b, r, 31, 1);
  expect_msg(b, r, 32, 2);
  expect_msg(b, r, 33, 3);
  RecordView v;
  EXPECT_EQ(b.read(v), ReadStatus::empty) << "an unpublished commit became visible";
  // The producer resumes at the published tail.
  const std::uint64_t tail = r.control().tail.load();
  ASSERT_TRUE(write_msg(b, 40, 4));
  EXPECT_EQ(r.control().tail.load(), tail + record_bytes(40));
  expect_msg(b, r, 40, 4);
  b.release();
  EXPECT_EQ(b.used_bytes(), 0u);
}

TEST(ByteRing, AttachRefusesInconsistentIndices) {
  struct Case {
    const char* what;
    std::uint64_t head, tail;
  };
  const Case cases[] = {
      {"tail behind head", 64, 56},  {"tail more than a ring ahead", 0, 512 + 8},
      {"unaligned tail", 0, 12},     {"unaligned head", 4, 16},
      {"head beyond tail", 1024, 0},
  };
  for (const auto& c : cases) {
    Region r(512);
    { auto ring = make_ring(r, 248); }
    r.control().head.store(c.head);
    r.control().tail.store(c.tail);
    auto a = ByteRing::attach(r.base(), r.mem.size());
    ASSERT_FALSE(a.has_value()) << c.what;
    EXPECT_EQ(a.status().code(), Errc::corrupted) << c.what;
  }
  // A full ring (tail - head == capacity) is consistent.
  Region r(512);
  { auto ring = make_ring(r, 248); }
  r.control().head.store(1024);
  r.control().tail.store(1024 + 512);
  EXPECT_TRUE(ByteRing::attach(r.base(), r.mem.size()).has_value());
}

// ---- hostile shared memory: the consumer --------------------------------------------------

// A ring with `live` records of 16 bytes published after `consumed` that
// were read and released, positioned so the tail reload path is taken next.
struct Hostile {
  explicit Hostile(std::uint64_t cap = 256, std::uint64_t max = 120)
      : region(cap), ring(make_ring(region, max)) {}
  Region region;
  ByteRing ring;

  // Expects `corrupted` now and on every later call, and that nothing was
  // handed out.
  void expect_corrupted(const char* what) {
    RecordView v;
    v.data = {};
    ASSERT_EQ(ring.read(v), ReadStatus::corrupted) << what;
    EXPECT_TRUE(v.data.empty()) << what << ": a span was formed";
    EXPECT_FALSE(ring.corruption().empty()) << what;
    EXPECT_TRUE(ring.readable()) << what << ": a waiter would not wake up to see the error";
    for (int i = 0; i < 3; ++i)
      ASSERT_EQ(ring.read(v), ReadStatus::corrupted) << what << ": not sticky";
  }
};

// Fills the 256-byte ring with 16-byte records and reads them all: every
// 16-byte-aligned offset of the data area now holds a valid record header,
// so a bad tail can only be caught by the index checks themselves (a ring
// that skipped them would find a plausible record and return ok).
void prime_with_valid_records(Hostile& h, bool release) {
  std::uint64_t s = 0;
  while (write_msg(h.ring, 8, s))
    ++s;
  ASSERT_EQ(s, 16u);
  for (std::uint64_t i = 0; i < s; ++i)
    expect_msg(h.ring, h.region, 8, i);
  if (release) h.ring.release();
}

TEST(ByteRingHostile, TailMovedBackwards) {
  for (std::uint64_t back : {16u, 8u, 256u, 4096u}) {
    Hostile h;
    prime_with_valid_records(h, true);
    if (HasFatalFailure()) return;
    const std::uint64_t t = h.region.control().tail.load();
    h.region.control().tail.store(t - back);
    h.expect_corrupted("tail backwards");
    h.region.control().tail.store(t);  // repaired: still corrupted (sticky)
    h.expect_corrupted("after repair");
    EXPECT_EQ(h.region.control().head.load(), t) << "head moved on a corrupt tail";
  }
}

TEST(ByteRingHostile, TailMoreThanARingAhead) {
  {
    Hostile h;
    prime_with_valid_records(h, true);  // read 256, released 256
    if (HasFatalFailure()) return;
    h.region.control().tail.store(256 + 256 + 16);
    h.expect_corrupted("tail > head + capacity");
  }
  {
    // Read but not released: the tail may be at most capacity past the
    // *released* head, even if that is within a ring of the read position.
    Hostile h;
    prime_with_valid_records(h, false);  // read 256, released 0
    if (HasFatalFailure()) return;
    h.region.control().tail.store(256 + 16);
    h.expect_corrupted("tail > released + capacity");
  }
  {
    Hostile h;
    prime_with_valid_records(h, true);
    if (HasFatalFailure()) return;
    h.region.control().tail.store(~std::uint64_t{15});
    h.expect_corrupted("huge tail");
  }
}

TEST(ByteRingHostile, UnalignedTail) {
  for (std::uint64_t extra : {4u, 1u, 7u, 20u}) {
    Hostile h;
    prime_with_valid_records(h, true);
    if (HasFatalFailure()) return;
    // Covers a whole valid record at 256 and then some odd bytes.
    h.region.control().tail.store(256 + 16 + extra);
    h.expect_corrupted("unaligned tail");
  }
}

TEST(ByteRingHostile, RecordLengthZero) {
  Hostile h;
  ASSERT_TRUE(write_msg(h.ring, 8, 0));
  h.region.set_header(0, RecordHeader{0, 1, 0});
  h.expect_corrupted("length 0");
}

TEST(ByteRingHostile, RecordLengthAboveMaxMessage) {
  Hostile h;  // max message 120
  // Publish enough that the length fits the published range but not max.
  for (std::uint64_t s = 0; s < 2; ++s)
    ASSERT_TRUE(write_msg(h.ring, 120, s));
  h.region.set_header(0, RecordHeader{121, 1, 0});
  h.expect_corrupted("length max + 1");

  Hostile h2;
  ASSERT_TRUE(write_msg(h2.ring, 8, 0));
  h2.region.set_header(0, RecordHeader{0xFFFFFFFFu, 1, 0});
  h2.expect_corrupted("length 2^32 - 1");
}

TEST(ByteRingHostile, RecordLengthPastThePublishedRange) {
  Hostile h;
  ASSERT_TRUE(write_msg(h.ring, 8, 0));           // 16 bytes published
  h.region.set_header(0, RecordHeader{9, 1, 0});  // claims 24
  h.expect_corrupted("record past the tail");
}

TEST(ByteRingHostile, RecordLengthPastTheEndOfTheDataArea) {
  Hostile h;  // 256 bytes
  // Move to offset 240 (16 bytes to the end): 120 (128) + 104 (112) bytes.
  ASSERT_TRUE(write_msg(h.ring, 120, 0));
  ASSERT_TRUE(write_msg(h.ring, 104, 1));
  expect_msg(h.ring, h.region, 120, 0);
  expect_msg(h.ring, h.region, 104, 1);
  h.ring.release();
  ASSERT_EQ(h.region.control().tail.load(), 240u);
  ASSERT_TRUE(write_msg(h.ring, 8, 2));   // 240..256, exactly to the end
  ASSERT_TRUE(write_msg(h.ring, 56, 3));  // 0..64 after the wrap
  // The published range (80 bytes) would hold a 24-byte record at 240, but
  // it would run past the end of the area.
  h.region.set_header(240, RecordHeader{16, 1, 0});
  h.expect_corrupted("record across the end");
}

TEST(ByteRingHostile, BadPaddingRecords) {
  // Wrong length in the padding header.
  for (std::uint32_t bad_len : {0u, 55u, 57u, 64u, 0xFFFFFFFFu}) {
    Hostile h;
    for (std::uint64_t s = 0; s < 3; ++s)
      ASSERT_TRUE(write_msg(h.ring, 56, s));  // -> 192
    for (std::uint64_t s = 0; s < 3; ++s)
      expect_msg(h.ring, h.region, 56, s);
    h.ring.release();
    ASSERT_TRUE(write_msg(h.ring, 100, 3));  // padding at 192, record at 0
    ASSERT_EQ(h.region.header_at(192).type, kPadType);
    h.region.set_header(192, RecordHeader{bad_len, kPadType, 0});
    h.expect_corrupted("bad padding length");
  }
  // A correct padding header that the published range does not cover.
  {
    Hostile h;
    for (std::uint64_t s = 0; s < 3; ++s)
      ASSERT_TRUE(write_msg(h.ring, 56, s));
    for (std::uint64_t s = 0; s < 3; ++s)
      expect_msg(h.ring, h.region, 56, s);
    h.ring.release();
    h.region.set_header(192, RecordHeader{56, kPadType, 0});
    h.region.control().tail.store(192 + 16);  // only 16 of the 64 bytes
    h.expect_corrupted("padding beyond the tail");
  }
  // Padding where none is needed (mid-area) claims the rest of the area:
  // fine only if that much is published, otherwise corrupted.
  {
    Hostile h;
    ASSERT_TRUE(write_msg(h.ring, 8, 0));
    h.region.set_header(0, RecordHeader{256 - 8, kPadType, 0});
    h.expect_corrupted("padding over unpublished bytes");
  }
}

TEST(ByteRingHostile, ScribbledGeometryIsIgnored) {
  Hostile h;  // 256 / 120, kept privately
  h.region.control().capacity = std::uint64_t{1} << 40;
  h.region.control().max_message = std::uint64_t{1} << 30;
  for (std::uint64_t s = 0; s < 40; ++s) {
    ASSERT_TRUE(write_msg(h.ring, 1 + (s * 37) % 120, s));
    expect_msg(h.ring, h.region, 1 + (s * 37) % 120, s);
    h.ring.release();
  }
  EXPECT_TRUE(h.ring.loan(121).empty()) << "the scribbled max message was trusted";

  // A 200-byte record fits the published range and the area, and the shared
  // max message says it is fine; the private max (120) says it is not.
  Hostile h2;
  h2.region.control().max_message = std::uint64_t{1} << 30;
  h2.region.control().capacity = std::uint64_t{1} << 40;
  ASSERT_TRUE(write_msg(h2.ring, 120, 0));
  ASSERT_TRUE(write_msg(h2.ring, 120, 1));
  ASSERT_EQ(h2.region.control().tail.load(), 256u);
  h2.region.set_header(0, RecordHeader{200, 1, 0});
  h2.expect_corrupted("length above the private max message");
}

TEST(ByteRingHostile, CorruptionNeverFormsASpanOutsideTheDataArea) {
  // Every header value at every aligned offset, with a full published range:
  // whatever read() returns, an ok span must lie inside the area.
  const std::uint32_t lengths[] = {0, 1, 7, 8, 9, 56, 63, 64, 120, 121, 248, 249, 256, 1u << 31};
  const std::uint16_t types[] = {0, 1, kPadType};
  std::uint64_t oks = 0, corrupt = 0;
  for (std::uint64_t off = 0; off < 256; off += 8) {
    for (auto len : lengths) {
      for (auto type : types) {
        Region r(256);
        auto ring = make_ring(r, 120);
        // Published range: a full ring starting at `off`.
        r.control().head.store(off);
        r.control().tail.store(off + 256);
        auto att = ByteRing::attach(r.base(), r.mem.size());
        ASSERT_TRUE(att.has_value());
        ByteRing a = std::move(att.value());
        r.set_header(off, RecordHeader{len, type, 0});
        RecordView v;
        for (int i = 0; i < 64; ++i) {
          const ReadStatus st = a.read(v);
          if (st == ReadStatus::corrupted) {
            ++corrupt;
            break;
          }
          if (st == ReadStatus::empty) break;  // the range was all padding
          ASSERT_TRUE(r.inside(v.data)) << "offset " << off << " length " << len;
          ASSERT_LE(v.data.size(), 120u);
          ++oks;
        }
      }
    }
  }
  EXPECT_GT(corrupt, 0u);
  EXPECT_GT(oks, 0u);
}

// ---- hostile shared memory: the producer --------------------------------------------------

TEST(ByteRingHostile, ProducerDetectsACorruptHead) {
  struct Case {
    const char* what;
    std::int64_t delta;  // new head = published tail + delta (or absolute when huge)
  };
  const Case cases[] = {
      {"head beyond the published tail", 8},
      {"head far beyond the tail", 1 << 20},
      {"unaligned head", -252},  // tail - 252: inside the range, but not a multiple of 8
      {"head moved backwards", -512},
  };
  for (const auto& c : cases) {
    Region r(256);
    auto ring = make_ring(r, 120);
    // 256 published and the consumer released 0: full; the producer will
    // reload the head on its next loan.
    for (std::uint64_t s = 0; s < 16; ++s)
      ASSERT_TRUE(write_msg(ring, 8, s));
    ASSERT_TRUE(ring.loan(8).empty());
    // Release half so a legitimate head would be at 128, then scribble.
    for (std::uint64_t s = 0; s < 8; ++s)
      expect_msg(ring, r, 8, s);
    ring.release();
    ASSERT_TRUE(write_msg(ring, 8, 16));  // the producer saw head 128
    ASSERT_FALSE(ring.producer_corrupted());
    for (std::uint64_t s = 17; write_msg(ring, 8, s); ++s) {
    }
    const auto tail = static_cast<std::int64_t>(r.control().tail.load());
    r.control().head.store(static_cast<std::uint64_t>(tail + c.delta));
    EXPECT_TRUE(ring.loan(8).empty()) << c.what;
    EXPECT_TRUE(ring.producer_corrupted()) << c.what;
    EXPECT_FALSE(ring.writable(8)) << c.what;
    // Sticky, even after the head is repaired.
    r.control().head.store(static_cast<std::uint64_t>(tail));
    EXPECT_TRUE(ring.loan(8).empty()) << c.what << ": not sticky";
    EXPECT_TRUE(ring.producer_corrupted());
  }
  // A legitimate head move (to the published tail) is accepted.
  Region r(256);
  auto ring = make_ring(r, 120);
  for (std::uint64_t s = 0; write_msg(ring, 8, s); ++s) {
  }
  r.control().head.store(r.control().tail.load());
  EXPECT_EQ(ring.loan(8).size(), 8u);
  EXPECT_FALSE(ring.producer_corrupted());
}

// ---- two threads -------------------------------------------------------------------------

// Producer and consumer threads on one ring, random sizes, batches on both
// sides; under TSan this checks the release/acquire pairing of tail and head.
TEST(ByteRingThreads, ProducerAndConsumerThreadsVerifyEveryByte) {
  const std::uint64_t n = ringwire::test::tsan_scaled(400'000, 5'000);
  Region r(4096);
  auto ring = make_ring(r, ByteRing::max_message_for(4096));
  const std::uint64_t max = ring.max_message();
  std::atomic<bool> failed{false};
  std::string error;
  std::thread producer([&] {
    ringwire::test::SizeStream sizes(42, max);
    ringwire::test::Idle idle;
    for (std::uint64_t seq = 0; seq < n && !failed.load(std::memory_order_relaxed);) {
      const std::size_t sz = sizes.next();
      const bool batch_end = (seq % 7) == 6 || seq + 1 == n;
      while (!commit_msg(ring, sz, seq)) {
        ring.publish();  // the consumer can only free space it can see
        if (failed.load(std::memory_order_relaxed)) return;
        idle();
      }
      idle.reset();
      if (seq < n / 2 || batch_end) ring.publish();
      ++seq;
    }
    ring.publish();
  });
  ringwire::test::SizeStream sizes(42, max);
  ringwire::test::Idle idle;
  std::uint64_t seq = 0;
  while (seq < n && error.empty()) {
    RecordView v;
    const ReadStatus st = ring.read(v);
    if (st == ReadStatus::empty) {
      ring.release();
      idle();
      continue;
    }
    idle.reset();
    if (st == ReadStatus::corrupted) {
      error = "corrupted: " + ring.corruption();
      break;
    }
    const std::size_t want = sizes.next();
    if (!r.inside(v.data)) error = "span outside the area";
    if (error.empty() && (v.data.size() != want || !message_ok(v.data.data(), want, seq)))
      error = ringwire::test::describe_mismatch(v.data.data(), v.data.size(), seq, want);
    ++seq;
    if (seq % 5 == 0 || seq > n / 3) ring.release();
  }
  ring.release();
  if (!error.empty()) failed = true;
  producer.join();
  ASSERT_TRUE(error.empty()) << error << " at seq " << seq;
  EXPECT_EQ(seq, n);
  EXPECT_EQ(r.control().messages.load(), n);
  EXPECT_EQ(ring.used_bytes(), 0u);
}

}  // namespace
