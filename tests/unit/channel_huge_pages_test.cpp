// ChannelOptions::huge_pages: the advice is asked for; whether the kernel takes it depends on
// /sys/kernel/mm/transparent_hugepage/shmem_enabled. Either way the channel must work and say
// truthfully what happened.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <string>

#include "common/test_support.hpp"
#include "ringwire/ipc/channel.hpp"

namespace {

using namespace std::chrono_literals;
using ringwire::core::Deadline;
using ringwire::ipc::Channel;
using ringwire::ipc::ChannelControl;
using ringwire::ipc::ChannelOptions;
using ringwire::ipc::ChannelRole;
namespace test = ringwire::test;

std::string shmem_thp_setting() {
  std::ifstream f("/sys/kernel/mm/transparent_hugepage/shmem_enabled");
  std::string s;
  std::getline(f, s);
  return s;
}

TEST(ChannelHugePages, AskedForOnALargeRingAndTheRingStillWorks) {
  test::NameGuard guard(test::unique_name("huge"));
  ChannelOptions o;
  o.capacity = std::uint64_t{8} << 20;  // several whole 2 MiB extents
  o.huge_pages = true;
  auto ch = Channel::create(guard.name(), ChannelRole::consumer, o);
  ASSERT_TRUE(ch) << ch.status().to_string();
  const auto* ctl = static_cast<const ChannelControl*>(ch->segment().payload());
  const std::string setting = shmem_thp_setting();
  std::printf("[ huge     ] shmem_enabled: '%s'; madvise(MADV_HUGEPAGE) %s\n", setting.c_str(),
              ctl->huge_pages ? "took: huge pages mapped" : "not honoured: normal pages");
  if (setting.find("[never]") != std::string::npos || setting.find("[deny]") != std::string::npos) {
    EXPECT_EQ(ctl->huge_pages, 0u) << "the kernel denies huge shmem pages, yet we claim them";
  }
  auto prod = Channel::open(guard.name(), ChannelRole::producer);
  ASSERT_TRUE(prod) << prod.status().to_string();
  std::string big(1 << 20, 'h');
  for (int i = 0; i < 20; ++i) {
    big[0] = static_cast<char>('a' + i);
    ASSERT_TRUE(prod->send(std::as_bytes(std::span(big)), 1, Deadline::after(1s)));
    auto m = ch->receive(Deadline::after(1s));
    ASSERT_TRUE(m) << m.status().to_string();
    ASSERT_EQ(m->data.size(), big.size());
    EXPECT_EQ(std::memcmp(m->data.data(), big.data(), big.size()), 0);
    ch->release();
  }
}

TEST(ChannelHugePages, NotAskedForMeansNotClaimed) {
  test::NameGuard guard(test::unique_name("nohuge"));
  ChannelOptions o;
  o.capacity = std::uint64_t{4} << 20;
  auto ch = Channel::create(guard.name(), ChannelRole::consumer, o);
  ASSERT_TRUE(ch) << ch.status().to_string();
  EXPECT_EQ(static_cast<const ChannelControl*>(ch->segment().payload())->huge_pages, 0u);
}

}  // namespace
