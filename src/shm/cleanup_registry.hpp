// Process-wide list of segment names this process must unlink if it is told
// to stop by a signal. Fixed-size and lock-free so the signal handler only
// touches async-signal-safe state.
#pragma once

#include <string_view>

namespace ringwire::shm::detail {

void register_owned(std::string_view os_name);
void unregister_owned(std::string_view os_name);

}  // namespace ringwire::shm::detail
