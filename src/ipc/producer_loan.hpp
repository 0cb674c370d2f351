// The producer's loan under a full policy, shared by Channel and
// MailboxProducer: try the ring, else fail / drop / wait as the policy says.
#pragma once

#include <cstddef>
#include <cstring>
#include <span>
#include <string>

#include "ringwire/core/status.hpp"
#include "ringwire/ipc/byte_ring.hpp"
#include "ringwire/ipc/channel.hpp"

namespace ringwire::ipc::detail {

// `publish()` publishes pending commits and wakes the consumer; `wait(ready)`
// waits until ready() or fails with the reason. `what` names the transport
// in messages ("channel", "mailbox lane").
template <class Publish, class Wait>
core::Result<std::span<std::byte>> loan_with_policy(ByteRing& ring, FullPolicy full, std::size_t n,
                                                    const char* what, Publish publish, Wait wait) {
  using core::Errc;
  using core::Status;
  if (n == 0 || n > ring.max_message()) {
    return Status(Errc::invalid_argument, "message of " + std::to_string(n) + " bytes; this " +
                                              what + " carries 1 to " +
                                              std::to_string(ring.max_message()));
  }
  auto span = ring.loan(n);
  if (!span.empty()) return span;
  if (ring.producer_corrupted()) return Status(Errc::corrupted, "consumer index is corrupt");
  if (full == FullPolicy::fail) return Status(Errc::would_block, std::string(what) + " full");
  if (full == FullPolicy::drop) {
    ring.count_drop();
    return Status(Errc::would_block, std::string(what) + " full: message dropped");
  }
  // Commits not yet published may be what the consumer needs to make room:
  // publish them before waiting.
  publish();
  if (auto st = wait([&] { return ring.writable(n) || ring.producer_corrupted(); }); !st) {
    return st;
  }
  span = ring.loan(n);
  if (span.empty()) {
    return Status(ring.producer_corrupted() ? Errc::corrupted : Errc::timed_out,
                  "no room after waiting");
  }
  return span;
}

// Copying send over any producer with loan / commit / publish.
template <class Producer>
core::Status send_copy(Producer& p, std::span<const std::byte> data, std::uint16_t type,
                       core::Deadline deadline) {
  auto span = p.loan(data.size(), deadline);
  if (!span) return span.status();
  std::memcpy(span->data(), data.data(), data.size());
  p.commit(data.size(), type);
  p.publish();
  return {};
}

}  // namespace ringwire::ipc::detail
