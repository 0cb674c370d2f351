// Process-wide settings for the gRPC runtime, applied once by the server and the client
// library before their first channel or server.
//
// Debian's abseil is built with Mutex deadlock detection on: every lock gRPC takes then
// updates a global lock-order graph (absl GraphCycles), which showed up as the top user-space
// cost in kv_server profiles. Lock-order checking belongs in debug builds, not in a server.
#pragma once

#include <absl/synchronization/mutex.h>

#include <mutex>

namespace ringwire::kv {

inline void tune_grpc_runtime() {
  static std::once_flag once;
  std::call_once(once, [] { absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore); });
}

}  // namespace ringwire::kv
