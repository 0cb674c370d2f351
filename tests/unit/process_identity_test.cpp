// ProcessIdentity: liveness by PID plus start time, robust to PID reuse.
#include <sys/prctl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>

#include "common/test_support.hpp"
#include "ringwire/shm/process_identity.hpp"

namespace {

using namespace std::chrono_literals;
using ringwire::shm::process_start_time;
using ringwire::shm::ProcessIdentity;
using ringwire::test::Child;
using ringwire::test::Pipe;

TEST(ProcessIdentity, SelfIsAlive) {
  const auto self = ProcessIdentity::self();
  EXPECT_EQ(self.pid, ::getpid());
  EXPECT_NE(self.start_time, 0u);
  EXPECT_FALSE(self.empty());
  EXPECT_TRUE(self.is_alive());
  const auto of = ProcessIdentity::of(::getpid());
  EXPECT_EQ(of.pid, self.pid);
  EXPECT_EQ(of.start_time, self.start_time);
}

TEST(ProcessIdentity, WrongStartTimeIsNotAlive) {
  const auto self = ProcessIdentity::self();
  EXPECT_FALSE((ProcessIdentity{self.pid, self.start_time + 1}.is_alive()));
  EXPECT_FALSE((ProcessIdentity{self.pid, self.start_time - 1}.is_alive()));
  EXPECT_FALSE((ProcessIdentity{self.pid, 0}.is_alive()));
}

TEST(ProcessIdentity, EmptyAndNonPositivePidsAreNotAlive) {
  EXPECT_TRUE(ProcessIdentity{}.empty());
  EXPECT_FALSE(ProcessIdentity{}.is_alive());
  EXPECT_FALSE((ProcessIdentity{-1, 5}.is_alive()));
  EXPECT_EQ(process_start_time(0), 0u);
  EXPECT_EQ(process_start_time(-5), 0u);
}

TEST(ProcessIdentity, RunningChildIsAliveAndReapedChildIsNot) {
  Pipe release;
  Child child = Child::spawn([&] {
    release.close_write();
    return release.receive() == -1 ? 0 : 1;  // exits when the parent closes its end
  });
  release.close_read();
  const auto id = ProcessIdentity::of(child.pid());
  EXPECT_NE(id.start_time, 0u);
  EXPECT_TRUE(id.is_alive());
  EXPECT_GE(id.start_time, ProcessIdentity::self().start_time) << "child started before us?";
  release.close_write();
  EXPECT_EQ(child.exit_code(), 0);
  EXPECT_FALSE(id.is_alive()) << "reaped child still reported alive";
  EXPECT_EQ(ProcessIdentity::of(child.pid()).start_time, 0u);
}

TEST(ProcessIdentity, ExitedButUnreapedChildCountsAsDead) {
  Child child = Child::spawn([] { return 0; });
  const pid_t pid = child.pid();
  // The zombie stays until waited for; it must read as dead meanwhile.
  EXPECT_TRUE(ringwire::test::eventually([&] { return process_start_time(pid) == 0; }, 5s))
      << "a zombie is still reported alive";
  EXPECT_EQ(child.exit_code(), 0);
}

TEST(ProcessIdentity, StartTimeParsingSurvivesParenthesesAndSpacesInTheName) {
  Pipe go, renamed;
  Child child = Child::spawn([&] {
    go.close_write();
    renamed.close_read();
    if (go.receive() < 0) return 1;
    ::prctl(PR_SET_NAME, "a) 1 2 (x y");
    renamed.send();
    (void)go.receive();  // wait for the parent to finish (EOF)
    return 0;
  });
  go.close_read();
  renamed.close_write();
  const auto before = ProcessIdentity::of(child.pid());
  ASSERT_NE(before.start_time, 0u);
  go.send();
  ASSERT_GE(renamed.receive(), 0);
  const auto after = ProcessIdentity::of(child.pid());
  EXPECT_EQ(after.start_time, before.start_time)
      << "a command name with ') ' confused the /proc/PID/stat parser";
  EXPECT_TRUE(before.is_alive());
  go.close_write();
  EXPECT_EQ(child.exit_code(), 0);
}

}  // namespace
