// A GoogleTest fixture for tests that touch shared memory: after every test,
// pass or fail, nothing this process named may remain in /dev/shm.
#pragma once

#include <gtest/gtest.h>

#include "common/test_support.hpp"

namespace ringwire::test {

class ShmTest : public ::testing::Test {
 protected:
  void TearDown() override {
    const auto left = remove_our_leftovers();
    EXPECT_TRUE(left.empty()) << "segments left behind in /dev/shm (now removed): " << join(left);
  }
};

}  // namespace ringwire::test
