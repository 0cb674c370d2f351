// ShmSegment: create/open round trip, every validation open() performs, the
// lifecycle states (initializing, ready, closed, creator dead), session
// checks, ownership across fork, and the list/inspect/remove helpers.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>

#include "common/shm_fixture.hpp"
#include "common/test_support.hpp"
#include "ringwire/queue/spsc_ring.hpp"
#include "ringwire/shm/shm_segment.hpp"

namespace {

using namespace std::chrono_literals;
using ringwire::ShmSegment;
using ringwire::SpscRing;
using ringwire::core::Errc;
using ringwire::core::errc_name;
using ringwire::core::now_ns;
using ringwire::core::Result;
using ringwire::shm::inspect_segment;
using ringwire::shm::list_segments;
using ringwire::shm::OpenOptions;
using ringwire::shm::PeerRole;
using ringwire::shm::ProcessIdentity;
using ringwire::shm::remove_segment;
using ringwire::shm::SegmentHeader;
using ringwire::shm::SegmentInfo;
using ringwire::shm::SegmentKind;
using ringwire::shm::SegmentSpec;
using ringwire::shm::SegmentState;
using ringwire::test::Child;
using ringwire::test::ring_spec;
using ringwire::test::shm_name_exists;
using ringwire::test::unique_name;
using Ring = SpscRing<std::uint64_t>;

constexpr std::uint64_t kCap = 64;

SegmentSpec spec() {
  return ring_spec<Ring>(kCap);
}

OpenOptions quick() {
  OpenOptions o;
  o.wait_ready_ns = 20'000'000;
  return o;
}

// A segment holding a built SpscRing of type R, marked ready.
template <class R = Ring>
ShmSegment create_ready(const std::string& name, const SegmentSpec& s = spec()) {
  auto seg = ShmSegment::create(name, s);
  EXPECT_TRUE(seg.has_value()) << seg.status().to_string();
  if (!seg) std::abort();
  auto ring = R::create_in(seg->payload(), seg->payload_size(), s.capacity);
  EXPECT_TRUE(ring.has_value()) << ring.status().to_string();
  seg->mark_ready();
  return std::move(seg.value());
}

// Asserts that a Result failed with `code`.
template <class T>
::testing::AssertionResult failed_with(const Result<T>& r, Errc code) {
  if (r.has_value())
    return ::testing::AssertionFailure() << "succeeded, expected " << errc_name(code);
  if (r.status().code() != code) {
    return ::testing::AssertionFailure()
           << "failed with " << r.status().to_string() << ", expected " << errc_name(code);
  }
  return ::testing::AssertionSuccess();
}
::testing::AssertionResult failed_with(const ringwire::core::Status& st, Errc code) {
  if (st.code() != code) {
    return ::testing::AssertionFailure()
           << "got " << st.to_string() << ", expected " << errc_name(code);
  }
  return ::testing::AssertionSuccess();
}

class ShmSegmentTest : public ringwire::test::ShmTest {};

// ---- round trip -----------------------------------------------------------------------------

TEST_F(ShmSegmentTest, CreateThenOpenSharesTheRing) {
  const auto name = unique_name("roundtrip");
  ShmSegment owner = create_ready(name);
  EXPECT_TRUE(owner.is_owner());
  EXPECT_NE(owner.session_id(), 0u);
  EXPECT_EQ(owner.payload_size(), Ring::bytes_for(kCap));
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(owner.payload()) % 4096, 0u);
  EXPECT_TRUE(shm_name_exists(name));

  auto opened = ShmSegment::open(name, spec());
  ASSERT_TRUE(opened.has_value()) << opened.status().to_string();
  EXPECT_FALSE(opened->is_owner());
  EXPECT_EQ(opened->session_id(), owner.session_id());
  EXPECT_EQ(opened->payload_size(), owner.payload_size());
  EXPECT_TRUE(opened->check_session().is_ok());
  EXPECT_TRUE(opened->creator_alive());

  auto producer = Ring::attach(owner.payload(), owner.payload_size());
  auto consumer = Ring::attach(opened->payload(), opened->payload_size());
  ASSERT_TRUE(producer.has_value());
  ASSERT_TRUE(consumer.has_value()) << consumer.status().to_string();
  for (std::uint64_t i = 0; i < 10; ++i)
    ASSERT_TRUE(producer->try_push(i * i));
  for (std::uint64_t i = 0; i < 10; ++i) {
    std::uint64_t v = 0;
    ASSERT_TRUE(consumer->try_pop(v));
    EXPECT_EQ(v, i * i);
  }
}

TEST_F(ShmSegmentTest, OpenWithCapacityZeroAcceptsTheCreatorsCapacity) {
  const auto name = unique_name("anycap");
  ShmSegment owner = create_ready(name);
  SegmentSpec any = spec();
  any.capacity = 0;
  auto opened = ShmSegment::open(name, any);
  ASSERT_TRUE(opened.has_value()) << opened.status().to_string();
  EXPECT_EQ(opened->header().capacity, kCap);
}

TEST_F(ShmSegmentTest, PrefixedAndSlashedNamesReferToTheSameSegment) {
  const auto name = unique_name("alias");
  ShmSegment owner = create_ready(name);
  for (const std::string& alias : {"ringwire." + name, "/" + name, "/ringwire." + name}) {
    auto opened = ShmSegment::open(alias, spec());
    ASSERT_TRUE(opened.has_value()) << alias << ": " << opened.status().to_string();
    EXPECT_EQ(opened->session_id(), owner.session_id());
  }
}

TEST_F(ShmSegmentTest, OwnerDestructionUnlinksAndClosesTheSegment) {
  const auto name = unique_name("lifetime");
  auto owner = std::make_unique<ShmSegment>(create_ready(name));
  auto opened = ShmSegment::open(name, spec());
  ASSERT_TRUE(opened.has_value());
  owner.reset();
  EXPECT_FALSE(shm_name_exists(name));
  EXPECT_TRUE(failed_with(opened->check_session(), Errc::closed));
  EXPECT_TRUE(failed_with(ShmSegment::open(name, spec()), Errc::not_found));
}

TEST_F(ShmSegmentTest, ExplicitUnlinkRemovesTheNameButKeepsTheMapping) {
  const auto name = unique_name("unlink");
  ShmSegment owner = create_ready(name);
  auto ring = Ring::attach(owner.payload(), owner.payload_size());
  ASSERT_TRUE(owner.unlink().is_ok());
  EXPECT_FALSE(shm_name_exists(name));
  EXPECT_TRUE(owner.unlink().is_ok()) << "a second unlink is a no-op";
  ASSERT_TRUE(ring->try_push(3));
  std::uint64_t v = 0;
  ASSERT_TRUE(ring->try_pop(v));
  EXPECT_EQ(v, 3u);
}

// ---- open() refuses mismatches ------------------------------------------------------------------

TEST_F(ShmSegmentTest, OpenRefusesADifferentKind) {
  const auto name = unique_name("kind");
  ShmSegment owner = create_ready(name, ring_spec<Ring>(kCap, SegmentKind::mutex_queue));
  EXPECT_TRUE(failed_with(ShmSegment::open(name, spec()), Errc::kind_mismatch));
}

TEST_F(ShmSegmentTest, OpenRefusesADifferentLayoutHash) {
  const auto name = unique_name("layout");
  ShmSegment owner = create_ready(name);
  SegmentSpec other = spec();
  other.layout_hash ^= 1;
  EXPECT_TRUE(failed_with(ShmSegment::open(name, other), Errc::layout_mismatch));
}

TEST_F(ShmSegmentTest, OpenRefusesADifferentElementSize) {
  const auto name = unique_name("elem");
  ShmSegment owner = create_ready(name);
  SegmentSpec other = spec();
  other.element_size = 4;
  EXPECT_TRUE(failed_with(ShmSegment::open(name, other), Errc::geometry_mismatch));
}

TEST_F(ShmSegmentTest, OpenRefusesADifferentCapacity) {
  const auto name = unique_name("cap");
  ShmSegment owner = create_ready(name);
  SegmentSpec other = spec();
  other.capacity = kCap * 2;
  EXPECT_TRUE(failed_with(ShmSegment::open(name, other), Errc::geometry_mismatch));
}

// A header field scribbled after creation and the error open() must report.
struct Scribble {
  const char* what;
  std::function<void(SegmentHeader&)> apply;
  Errc expected;
};

class ShmSegmentScribble : public ringwire::test::ShmTest,
                           public ::testing::WithParamInterface<Scribble> {};

TEST_P(ShmSegmentScribble, OpenRefusesTheDamagedHeader) {
  const auto name = unique_name("scribble");
  ShmSegment owner = create_ready(name);
  GetParam().apply(owner.header());
  const auto t0 = now_ns();
  EXPECT_TRUE(failed_with(ShmSegment::open(name, spec(), quick()), GetParam().expected))
      << GetParam().what;
  EXPECT_LT(ringwire::test::seconds_since(t0), 1.0);
}

INSTANTIATE_TEST_SUITE_P(
    Fields, ShmSegmentScribble,
    ::testing::Values(
        Scribble{"bad_magic", [](SegmentHeader& h) { h.magic = 0x0123456789abcdefull; },
                 Errc::bad_magic},
        Scribble{"abi_version", [](SegmentHeader& h) { h.abi_version += 1; }, Errc::abi_mismatch},
        Scribble{"header_size", [](SegmentHeader& h) { h.header_size = 128; },
                 Errc::layout_mismatch},
        Scribble{"total_size", [](SegmentHeader& h) { h.total_size += 4096; },
                 Errc::geometry_mismatch},
        Scribble{"payload_offset_past_end",
                 [](SegmentHeader& h) { h.payload_offset = h.total_size + 4096; },
                 Errc::geometry_mismatch},
        Scribble{"payload_offset_inside_header", [](SegmentHeader& h) { h.payload_offset = 8; },
                 Errc::geometry_mismatch},
        Scribble{"payload_size_past_end", [](SegmentHeader& h) { h.payload_size = h.total_size; },
                 Errc::geometry_mismatch},
        Scribble{"payload_size_wraps", [](SegmentHeader& h) { h.payload_size = UINT64_MAX; },
                 Errc::geometry_mismatch},
        Scribble{"kind", [](SegmentHeader& h) { h.kind = 77; }, Errc::kind_mismatch},
        Scribble{"layout_hash", [](SegmentHeader& h) { h.layout_hash ^= 0x10; },
                 Errc::layout_mismatch},
        Scribble{"element_size", [](SegmentHeader& h) { h.element_size = 16; },
                 Errc::geometry_mismatch},
        Scribble{"capacity", [](SegmentHeader& h) { h.capacity = 32; }, Errc::geometry_mismatch},
        Scribble{"invalid_state", [](SegmentHeader& h) { h.state.store(9); }, Errc::corrupted},
        Scribble{"closed_state",
                 [](SegmentHeader& h) {
                   h.state.store(static_cast<std::uint32_t>(SegmentState::closed));
                 },
                 Errc::closed},
        Scribble{"no_magic_yet", [](SegmentHeader& h) { h.magic = 0; }, Errc::not_ready}),
    [](const auto& p) { return std::string(p.param.what); });

TEST_F(ShmSegmentTest, OpenRefusesAFileSizeThatDisagreesWithTheHeader) {
  const auto name = unique_name("filesize");
  ShmSegment owner = create_ready(name);
  const std::string os = "/ringwire." + name;
  const int fd = ::shm_open(os.c_str(), O_RDWR, 0);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::ftruncate(fd, static_cast<off_t>(owner.header().total_size + 4096)), 0);
  ::close(fd);
  EXPECT_TRUE(failed_with(ShmSegment::open(name, spec()), Errc::geometry_mismatch));
}

// ---- names
// ------------------------------------------------------------------------------------------

TEST_F(ShmSegmentTest, MissingNameIsNotFound) {
  const auto name = unique_name("missing");
  EXPECT_TRUE(failed_with(ShmSegment::open(name, spec()), Errc::not_found));
  EXPECT_TRUE(failed_with(inspect_segment(name), Errc::not_found));
  EXPECT_TRUE(failed_with(remove_segment(name), Errc::not_found));
}

TEST_F(ShmSegmentTest, CreatingAnExistingNameFailsAndLeavesTheOriginalIntact) {
  const auto name = unique_name("exists");
  ShmSegment owner = create_ready(name);
  EXPECT_TRUE(failed_with(ShmSegment::create(name, spec()), Errc::already_exists));
  auto opened = ShmSegment::open(name, spec());
  ASSERT_TRUE(opened.has_value()) << opened.status().to_string();
  EXPECT_EQ(opened->session_id(), owner.session_id());
}

TEST_F(ShmSegmentTest, InvalidNamesAreRejectedEverywhere) {
  const std::string bad[] = {
      "",          "/",          "ringwire.", "a/b",      "has space",
      "tab\tname", "semi;colon", "star*",     "\xc3\xa4", std::string(201, 'x')};
  for (const auto& n : bad) {
    SCOPED_TRACE("name '" + n + "'");
    EXPECT_TRUE(failed_with(ShmSegment::create(n, spec()), Errc::invalid_argument));
    EXPECT_TRUE(failed_with(ShmSegment::open(n, spec()), Errc::invalid_argument));
    EXPECT_TRUE(failed_with(inspect_segment(n), Errc::invalid_argument));
    EXPECT_TRUE(failed_with(remove_segment(n), Errc::invalid_argument));
  }
}

TEST_F(ShmSegmentTest, LongestValidNameWorks) {
  std::string name = ringwire::test::name_prefix();
  name += std::string(200 - name.size(), 'n');
  ASSERT_EQ(name.size(), 200u);
  ShmSegment owner = create_ready(name);
  auto opened = ShmSegment::open(name, spec());
  EXPECT_TRUE(opened.has_value()) << opened.status().to_string();
}

// ---- lifecycle states
// ----------------------------------------------------------------------------

TEST_F(ShmSegmentTest, HalfInitialisedSegmentIsNotReadyAfterTheWait) {
  const auto name = unique_name("halfinit");
  auto owner = ShmSegment::create(name, spec());  // never marked ready
  ASSERT_TRUE(owner.has_value());
  OpenOptions o;
  o.wait_ready_ns = 100'000'000;
  const auto t0 = now_ns();
  EXPECT_TRUE(failed_with(ShmSegment::open(name, spec(), o), Errc::not_ready));
  const double s = ringwire::test::seconds_since(t0);
  EXPECT_GE(s, 0.099) << "open gave up before its wait_ready deadline";
  EXPECT_LT(s, 2.0);
}

TEST_F(ShmSegmentTest, OpenWaitsForACreatorThatFinishesInitialising) {
  const auto name = unique_name("lateready");
  auto owner = ShmSegment::create(name, spec());
  ASSERT_TRUE(owner.has_value());
  std::thread creator([&] {
    std::this_thread::sleep_for(50ms);
    ASSERT_TRUE(Ring::create_in(owner->payload(), owner->payload_size(), kCap).has_value());
    owner->mark_ready();
  });
  OpenOptions o;
  o.wait_ready_ns = 5'000'000'000;
  auto opened = ShmSegment::open(name, spec(), o);
  creator.join();
  ASSERT_TRUE(opened.has_value()) << opened.status().to_string();
  EXPECT_TRUE(Ring::attach(opened->payload(), opened->payload_size()).has_value());
}

TEST_F(ShmSegmentTest, ObjectSmallerThanAHeaderIsNotReady) {
  const auto name = unique_name("tiny");
  ringwire::test::NameGuard guard(name);
  const std::string os = "/ringwire." + name;
  const int fd = ::shm_open(os.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::ftruncate(fd, 100), 0);
  ::close(fd);
  EXPECT_TRUE(failed_with(ShmSegment::open(name, spec(), quick()), Errc::not_ready));
  auto info = inspect_segment(name);
  ASSERT_TRUE(info.has_value());
  EXPECT_FALSE(info->header_valid);
  EXPECT_FALSE(info->problem.empty());
}

TEST_F(ShmSegmentTest, SegmentOfADeadCreatorIsRefusedAndCanBeRemoved) {
  const auto name = unique_name("deadcreator");
  ringwire::test::NameGuard guard(name);
  Child child = Child::spawn([&] {
    auto seg = ShmSegment::create(name, spec());
    if (!seg) return 10;
    if (!Ring::create_in(seg->payload(), seg->payload_size(), kCap)) return 11;
    seg->mark_ready();
    seg->release_ownership();  // the name must outlive this process
    return 0;
  });
  ASSERT_EQ(child.exit_code(), 0);
  ASSERT_TRUE(shm_name_exists(name));

  EXPECT_TRUE(failed_with(ShmSegment::open(name, spec()), Errc::creator_dead));
  OpenOptions inspect_only;
  inspect_only.allow_dead_creator = true;
  auto forced = ShmSegment::open(name, spec(), inspect_only);
  ASSERT_TRUE(forced.has_value()) << forced.status().to_string();
  EXPECT_FALSE(forced->creator_alive());
  EXPECT_EQ(forced->header().creator_pid, child.pid());

  auto info = inspect_segment(name);
  ASSERT_TRUE(info.has_value());
  EXPECT_TRUE(info->header_valid);
  EXPECT_FALSE(info->creator_alive);
  EXPECT_EQ(info->creator.pid, child.pid());

  EXPECT_TRUE(remove_segment(name).is_ok());
  EXPECT_FALSE(shm_name_exists(name));
  EXPECT_TRUE(failed_with(ShmSegment::open(name, spec()), Errc::not_found));
}

// ---- sessions
// ----------------------------------------------------------------------------------------

TEST_F(ShmSegmentTest, CheckSessionDetectsAChangedSessionId) {
  const auto name = unique_name("session");
  ShmSegment owner = create_ready(name);
  auto opened = ShmSegment::open(name, spec());
  ASSERT_TRUE(opened.has_value());
  EXPECT_TRUE(opened->check_session().is_ok());
  owner.header().session_id ^= 0xfeed;
  EXPECT_TRUE(failed_with(opened->check_session(), Errc::session_changed));
  EXPECT_TRUE(failed_with(owner.check_session(), Errc::session_changed));
}

TEST_F(ShmSegmentTest, CheckSessionReportsAClosedSegment) {
  const auto name = unique_name("closedsession");
  ShmSegment owner = create_ready(name);
  auto opened = ShmSegment::open(name, spec());
  ASSERT_TRUE(opened.has_value());
  owner.header().state.store(static_cast<std::uint32_t>(SegmentState::closed));
  EXPECT_TRUE(failed_with(opened->check_session(), Errc::closed));
  EXPECT_TRUE(failed_with(ShmSegment::open(name, spec()), Errc::closed));
}

TEST_F(ShmSegmentTest, SessionStillNamedDetectsUnlinkAndRecreate) {
  const auto name = unique_name("renamed");
  ShmSegment first = create_ready(name);
  auto opened = ShmSegment::open(name, spec());
  ASSERT_TRUE(opened.has_value());
  EXPECT_TRUE(opened->session_still_named().is_ok());

  ASSERT_TRUE(first.unlink().is_ok());
  EXPECT_TRUE(failed_with(opened->session_still_named(), Errc::session_changed))
      << "the name is gone";

  ShmSegment second = create_ready(name);
  ASSERT_NE(second.session_id(), first.session_id());
  EXPECT_TRUE(failed_with(opened->session_still_named(), Errc::session_changed))
      << "the name now holds another session";
  EXPECT_TRUE(opened->check_session().is_ok()) << "our own mapping is unchanged";
  auto reopened = ShmSegment::open(name, spec());
  ASSERT_TRUE(reopened.has_value());
  EXPECT_TRUE(reopened->session_still_named().is_ok());
}

// ---- ownership
// ---------------------------------------------------------------------------------------

TEST_F(ShmSegmentTest, ForkedChildsCopyOfTheOwnerDoesNotUnlinkTheParentsSegment) {
  const auto name = unique_name("forkcopy");
  auto owner = std::make_unique<ShmSegment>(create_ready(name));
  ASSERT_TRUE(owner->is_owner());
  Child child = Child::spawn([&] {
    owner.reset();  // the child's copy of the parent's owning handle is destroyed
    return shm_name_exists(name) ? 0 : 1;
  });
  ASSERT_EQ(child.exit_code(), 0) << "the name vanished inside the child";
  EXPECT_TRUE(shm_name_exists(name));
  EXPECT_TRUE(owner->check_session().is_ok()) << "the child marked the parent's segment closed";
  auto opened = ShmSegment::open(name, spec());
  EXPECT_TRUE(opened.has_value()) << opened.status().to_string();
  owner.reset();
  EXPECT_FALSE(shm_name_exists(name)) << "the parent still owns and removes it";
}

// Known library bug: ShmSegment::reset() unlinks by name without checking the
// session, so an owner whose name was removed (`ringwire-shm rm`) and then
// re-created by someone else deletes the newcomer's name when it is destroyed.
TEST_F(ShmSegmentTest, OwnerDestructionDoesNotUnlinkASegmentRecreatedUnderItsName) {
  const auto name = unique_name("stealname");
  auto old_owner = std::make_unique<ShmSegment>(create_ready(name));
  ASSERT_TRUE(remove_segment(name).is_ok());  // an operator removes the name
  ShmSegment newcomer = create_ready(name);
  old_owner.reset();
  EXPECT_TRUE(shm_name_exists(name)) << "destroying the old owner unlinked the new segment";
  auto opened = ShmSegment::open(name, spec());
  EXPECT_TRUE(opened.has_value()) << opened.status().to_string();
}

// The owner must decide that it owns the segment from private state, not from
// header().creator_pid, which any peer can scribble: otherwise the owner
// silently leaks its segment in /dev/shm.
TEST_F(ShmSegmentTest, OwnerStillUnlinksAfterAPeerScribbledTheHeader) {
  const auto name = unique_name("scribbledowner");
  ringwire::test::NameGuard guard(name);  // keeps /dev/shm clean if the check fails
  {
    ShmSegment owner = create_ready(name);
    owner.header().creator_pid = 0;
  }
  EXPECT_FALSE(shm_name_exists(name)) << "owner leaked its segment";
}

// ---- peers
// -------------------------------------------------------------------------------------------

TEST_F(ShmSegmentTest, RegisteredPeersAreAliveUntilTheirProcessDies) {
  const auto name = unique_name("peers");
  ShmSegment owner = create_ready(name);
  EXPECT_FALSE(owner.peer_alive(PeerRole::producer)) << "empty slot";
  EXPECT_TRUE(owner.peer(PeerRole::producer).empty());
  owner.register_peer(PeerRole::consumer);
  EXPECT_EQ(owner.peer(PeerRole::consumer).pid, ::getpid());
  EXPECT_TRUE(owner.peer_alive(PeerRole::consumer));

  ringwire::test::Pipe registered, release;
  Child child = Child::spawn([&] {
    registered.close_read();
    release.close_write();
    auto seg = ShmSegment::open(name, spec());
    if (!seg) return 10;
    seg->register_peer(PeerRole::producer);
    registered.send();
    return release.receive() >= 0 ? 0 : 11;
  });
  registered.close_write();  // EOF instead of a hang if the child fails
  release.close_read();
  ASSERT_GE(registered.receive(), 0) << "child exited with " << child.exit_code();
  EXPECT_EQ(owner.peer(PeerRole::producer).pid, child.pid());
  EXPECT_TRUE(owner.peer_alive(PeerRole::producer));
  release.send();
  ASSERT_TRUE(child.wait_for(5s));
  EXPECT_EQ(child.exit_code(), 0);
  EXPECT_FALSE(owner.peer_alive(PeerRole::producer)) << "a reaped peer is not alive";
}

TEST_F(ShmSegmentTest, HeartbeatAdvances) {
  const auto name = unique_name("heartbeat");
  ShmSegment owner = create_ready(name);
  owner.register_peer(PeerRole::producer);
  const auto first = owner.header().peers[0].heartbeat_ns.load();
  std::this_thread::sleep_for(2ms);
  owner.heartbeat(PeerRole::producer);
  EXPECT_GT(owner.header().peers[0].heartbeat_ns.load(), first);
}

// ---- list / inspect
// ----------------------------------------------------------------------------------

TEST_F(ShmSegmentTest, ListAndInspectReportOurSegments) {
  const auto a_name = unique_name("list_a");
  const auto b_name = unique_name("list_b");
  const auto t0_unix =
      static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count());
  ShmSegment a = create_ready(a_name);
  ShmSegment b =
      create_ready<SpscRing<std::uint32_t>>(b_name, ring_spec<SpscRing<std::uint32_t>>(256));
  a.register_peer(PeerRole::consumer);

  bool saw_a = false, saw_b = false;
  for (const SegmentInfo& info : list_segments()) {
    if (info.name == a_name) {
      saw_a = true;
      EXPECT_TRUE(info.header_valid) << info.problem;
      EXPECT_EQ(info.kind, static_cast<std::uint32_t>(SegmentKind::spsc_ring));
      EXPECT_EQ(info.state, static_cast<std::uint32_t>(SegmentState::ready));
      EXPECT_EQ(info.capacity, kCap);
      EXPECT_EQ(info.element_size, 8u);
      EXPECT_EQ(info.payload_size, Ring::bytes_for(kCap));
      EXPECT_EQ(info.session_id, a.session_id());
      EXPECT_EQ(info.creator.pid, ::getpid());
      EXPECT_TRUE(info.creator_alive);
      EXPECT_EQ(info.peers[1].pid, ::getpid());
      EXPECT_TRUE(info.peer_alive[1]);
      EXPECT_FALSE(info.peer_alive[0]);
      EXPECT_GE(info.created_unix_ns + 1'000'000'000ull, t0_unix);
    } else if (info.name == b_name) {
      saw_b = true;
      EXPECT_EQ(info.capacity, 256u);
      EXPECT_EQ(info.element_size, 4u);
      EXPECT_EQ(info.session_id, b.session_id());
    }
  }
  EXPECT_TRUE(saw_a) << "list_segments() missed " << a_name;
  EXPECT_TRUE(saw_b) << "list_segments() missed " << b_name;

  auto info = inspect_segment(a_name);
  ASSERT_TRUE(info.has_value()) << info.status().to_string();
  EXPECT_EQ(info->name, a_name);
  EXPECT_EQ(info->file_size, a.header().total_size);
  EXPECT_TRUE(info->header_valid);
  EXPECT_EQ(info->session_id, a.session_id());
}

TEST_F(ShmSegmentTest, InspectReportsADamagedHeaderWithoutFailing) {
  const auto name = unique_name("damaged");
  ShmSegment owner = create_ready(name);
  owner.header().magic = 42;
  auto info = inspect_segment(name);
  ASSERT_TRUE(info.has_value());
  EXPECT_FALSE(info->header_valid);
  EXPECT_NE(info->problem.find("magic"), std::string::npos) << info->problem;
}

}  // namespace
