// ShmSegment: a named POSIX shared-memory object with a validated header.
//
// Lifecycle:
//   create  shm_open(O_CREAT|O_EXCL, 0600) -> ftruncate -> mmap -> header
//           written with state=initializing -> caller builds the payload ->
//           mark_ready() (release store of state=ready)
//   open    shm_open -> fstat -> mmap -> every header field checked against
//           what the caller expects; a half-initialised segment is waited for
//           (bounded) and a dead creator's segment is refused
//   close   the creating process unlinks on destruction, on SIGINT/SIGTERM
//           (install_cleanup_handlers) and marks the state closed; stale
//           segments whose creator died are found by list_segments() and
//           removed by remove_segment() / `ringwire-shm gc`.
// Names: the user's name N maps to /dev/shm/ringwire.N so that our tools only
// ever list or remove our own objects.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ringwire/core/status.hpp"
#include "ringwire/shm/process_identity.hpp"
#include "ringwire/shm/segment_header.hpp"

namespace ringwire::shm {

// What the caller expects to find (open) or asks to build (create).
struct SegmentSpec {
  SegmentKind kind = SegmentKind::raw;
  std::uint64_t layout_hash = 0;   // of the payload's layout; combined with the header's
  std::uint64_t capacity = 0;      // open: 0 accepts whatever the creator chose
  std::uint32_t element_size = 0;  // open: 0 accepts whatever the creator chose
  std::size_t payload_size = 0;    // create only; open reads it from the header
};

struct OpenOptions {
  std::uint64_t wait_ready_ns = 1'000'000'000;  // how long to wait for a half-built segment
  bool allow_dead_creator = false;              // inspection tools only
};

// A copy of the header fields, for tools and error messages.
struct SegmentInfo {
  std::string name;  // user-facing name, without the "ringwire." prefix
  std::uint64_t file_size = 0;
  bool header_valid = false;  // magic and ABI recognised
  std::string problem;        // why not, when !header_valid
  std::uint32_t kind = 0;
  std::uint32_t state = 0;
  std::uint64_t capacity = 0;
  std::uint32_t element_size = 0;
  std::uint64_t payload_size = 0;
  std::uint64_t session_id = 0;
  ProcessIdentity creator;
  bool creator_alive = false;
  ProcessIdentity peers[kPeerSlots];
  bool peer_alive[kPeerSlots] = {false, false};
  std::uint64_t created_unix_ns = 0;
};

class ShmSegment {
 public:
  static core::Result<ShmSegment> create(std::string_view name, const SegmentSpec& spec);
  static core::Result<ShmSegment> open(std::string_view name, const SegmentSpec& expected,
                                       const OpenOptions& options = {});

  ShmSegment(ShmSegment&& other) noexcept;
  ShmSegment& operator=(ShmSegment&& other) noexcept;
  ShmSegment(const ShmSegment&) = delete;
  ShmSegment& operator=(const ShmSegment&) = delete;
  ~ShmSegment();

  const std::string& name() const noexcept { return name_; }
  SegmentHeader& header() const noexcept { return *static_cast<SegmentHeader*>(base_); }
  void* payload() const noexcept;
  std::size_t payload_size() const noexcept { return payload_size_; }
  bool is_owner() const noexcept { return owner_; }
  std::uint64_t session_id() const noexcept { return session_id_; }

  // Creator: payload is built, attachers may proceed.
  void mark_ready() noexcept;
  // Registers this process in a role slot (liveness for the other side).
  void register_peer(PeerRole role) noexcept;
  void heartbeat(PeerRole role) noexcept;
  ProcessIdentity peer(PeerRole role) const noexcept;
  bool peer_alive(PeerRole role) const;
  bool creator_alive() const;
  // ok while the header still carries the session seen at attach and the
  // state is ready; session_changed / closed otherwise. The check reads our
  // own mapping; a segment unlinked and re-created under the same name is
  // caught by session_still_named(), which re-opens the name.
  core::Status check_session() const;
  core::Status session_still_named() const;

  // Owner: unlink the name now (the mapping stays valid until destruction).
  core::Status unlink();
  // Keep the name after destruction (hand-over to another process).
  void release_ownership() noexcept;
  // The other half of a hand-over: an opener whose creator is gone becomes the owner (the
  // header names this process as creator, the name is unlinked when this object goes).
  // The caller must make sure no other process takes over at the same time (kv_cache does
  // it under a process-shared robust mutex in the payload).
  void take_ownership();

 private:
  ShmSegment() = default;
  void reset() noexcept;

  std::string name_;
  void* base_ = nullptr;
  std::size_t size_ = 0;
  std::size_t payload_size_ = 0;
  std::uint64_t session_id_ = 0;
  bool owner_ = false;
  bool unlinked_ = false;
  // Kept privately, not read back from the (writable, shared) header: only
  // this process may close and unlink, never a forked child's copy.
  std::int32_t owner_pid_ = 0;
  // Identity of the object we created or opened (inode), to tell whether the
  // name still refers to it without trusting bytes a peer can write.
  std::uint64_t inode_ = 0;
  std::uint64_t device_ = 0;
  bool name_still_ours() const;
};

// Name handling: "foo" -> "/ringwire.foo". Rejects empty names, names over
// 200 bytes and anything outside [A-Za-z0-9._-].
core::Result<std::string> os_name_for(std::string_view name);
inline constexpr std::string_view kNamePrefix = "ringwire.";

// Every ringwire segment in /dev/shm, with its header decoded defensively.
std::vector<SegmentInfo> list_segments();
core::Result<SegmentInfo> inspect_segment(std::string_view name);
core::Status remove_segment(std::string_view name);

// Installs SIGINT/SIGTERM/SIGHUP handlers that unlink every segment this
// process created and still owns, then re-raise the signal. Idempotent.
void install_cleanup_handlers();

// Combined fingerprint stored in the header: header layout + payload layout.
constexpr std::uint64_t combined_layout_hash(std::uint64_t payload_hash) noexcept {
  return fnv1a(kHeaderLayoutHash, payload_hash);
}

}  // namespace ringwire::shm

namespace ringwire {
using shm::ShmSegment;
}
