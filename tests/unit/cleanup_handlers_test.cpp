// install_cleanup_handlers(): SIGINT/SIGTERM/SIGHUP unlink the segments the
// signalled process created and still owns -- and nothing else. Handlers are
// only ever installed in forked children, never in the test process.
#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <optional>
#include <string>

#include "common/shm_fixture.hpp"
#include "common/test_support.hpp"
#include "ringwire/queue/spsc_ring.hpp"
#include "ringwire/shm/shm_segment.hpp"

namespace {

using namespace std::chrono_literals;
using ringwire::ShmSegment;
using ringwire::test::Child;
using ringwire::test::NameGuard;
using ringwire::test::Pipe;
using ringwire::test::shm_name_exists;
using Ring = ringwire::SpscRing<std::uint64_t>;

ringwire::shm::SegmentSpec spec() {
  return ringwire::test::ring_spec<Ring>(16);
}

bool create_ready(const std::string& name, std::optional<ShmSegment>& out) {
  auto seg = ShmSegment::create(name, spec());
  if (!seg) return false;
  if (!Ring::create_in(seg->payload(), seg->payload_size(), 16)) return false;
  seg->mark_ready();
  out.emplace(std::move(seg.value()));
  return true;
}

class CleanupHandlers : public ringwire::test::ShmTest,
                        public ::testing::WithParamInterface<int> {};

TEST_P(CleanupHandlers, SignalUnlinksOwnedSegmentsButNotReleasedOnes) {
  const int sig = GetParam();
  const auto owned_a = ringwire::test::unique_name("sig_a");
  const auto owned_b = ringwire::test::unique_name("sig_b");
  const auto released = ringwire::test::unique_name("sig_released");
  NameGuard ga(owned_a), gb(owned_b), gr(released);
  Pipe ready;
  Child child = Child::spawn([&] {
    ready.close_read();
    ringwire::shm::install_cleanup_handlers();
    ringwire::shm::install_cleanup_handlers();  // idempotent
    std::optional<ShmSegment> a, b, r;
    if (!create_ready(owned_a, a) || !create_ready(owned_b, b) || !create_ready(released, r))
      return 10;
    r->release_ownership();
    ready.send();
    for (;;)
      ::pause();
  });
  ready.close_write();
  ASSERT_GE(ready.receive(), 0) << "child failed: exit " << child.exit_code();
  ASSERT_TRUE(shm_name_exists(owned_a));
  ASSERT_TRUE(shm_name_exists(owned_b));
  child.kill(sig);
  ASSERT_TRUE(child.wait_for(5s));
  EXPECT_EQ(child.exit_code(), -sig) << "the handler must re-raise the original signal";
  EXPECT_FALSE(shm_name_exists(owned_a)) << "owned segment survived the signal";
  EXPECT_FALSE(shm_name_exists(owned_b)) << "owned segment survived the signal";
  EXPECT_TRUE(shm_name_exists(released)) << "a released segment must outlive its creator";
}

INSTANTIATE_TEST_SUITE_P(Signals, CleanupHandlers, ::testing::Values(SIGINT, SIGTERM, SIGHUP),
                         [](const auto& p) {
                           return p.param == SIGINT ? "SIGINT"
                                                    : (p.param == SIGTERM ? "SIGTERM" : "SIGHUP");
                         });

class CleanupHandlersFork : public ringwire::test::ShmTest {};

// A forked child inherits the handlers and the table of owned names, but a
// signal to the child must not unlink its parent's segments.
TEST_F(CleanupHandlersFork, SignalToAForkedChildDoesNotUnlinkTheParentsSegments) {
  const auto name = ringwire::test::unique_name("sig_fork");
  NameGuard guard(name);
  Child owner = Child::spawn([&] {
    ringwire::shm::install_cleanup_handlers();
    std::optional<ShmSegment> seg;
    if (!create_ready(name, seg)) return 10;
    Pipe ready;
    Child grandchild = Child::spawn([&]() -> int {
      ready.close_read();
      ready.send();
      for (;;)
        ::pause();
    });
    ready.close_write();
    if (ready.receive() < 0) return 11;
    grandchild.kill(SIGTERM);
    if (grandchild.exit_code() != -SIGTERM) return 12;
    if (!shm_name_exists(name)) return 13;  // the grandchild unlinked our segment
    seg.reset();                            // the owner itself still cleans up
    return shm_name_exists(name) ? 14 : 0;
  });
  const int rc = owner.exit_code();
  EXPECT_NE(rc, 13) << "SIGTERM to a forked child unlinked its parent's segment";
  EXPECT_EQ(rc, 0);
  EXPECT_FALSE(shm_name_exists(name));
}

}  // namespace
