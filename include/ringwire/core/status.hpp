// Error values shared by the library and every tool, and the exit codes the
// tools map them to (documented in docs/exit-codes.md).
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace ringwire::core {

enum class Errc {
  ok = 0,
  invalid_argument,   // caller passed something unusable
  not_found,          // named object does not exist
  already_exists,     // O_EXCL create hit an existing name
  permission_denied,  // the OS refused access
  bad_magic,          // not a ringwire segment
  abi_mismatch,       // built from an incompatible ringwire version
  layout_mismatch,    // sizes/offsets differ between the two builds
  kind_mismatch,      // a different queue type lives in the segment
  geometry_mismatch,  // capacity / element size / total size disagree
  not_ready,          // creator has not finished initialising
  closed,             // segment was closed by its owner
  creator_dead,       // segment left behind by a crashed process
  peer_dead,          // the other side died while we were talking
  session_changed,    // segment was re-created under us
  corrupted,          // shared bytes failed a bounds or sanity check
  timed_out,          // a bounded wait ran out
  would_block,        // full / empty and the caller's policy is not to wait
  system_error,       // unexpected errno
};

const char* errc_name(Errc e) noexcept;

// Exit codes used by every ringwire tool.
enum ExitCode : int {
  kExitOk = 0,
  kExitNegative = 1,      // a negative answer, e.g. key not found
  kExitInvalid = 2,       // invalid input or unavailable IPC resource
  kExitVerifyFailed = 3,  // loss, duplicate, reorder or corruption detected
  kExitPeerDied = 4,      // the peer process died before the run completed
};

inline int exit_code_for(Errc e) noexcept {
  switch (e) {
    case Errc::ok:
      return kExitOk;
    case Errc::peer_dead:
      return kExitPeerDied;
    case Errc::corrupted:
      return kExitVerifyFailed;
    default:
      return kExitInvalid;
  }
}

class Status {
 public:
  Status() = default;
  Status(Errc code, std::string message) : code_(code), message_(std::move(message)) {}
  static Status ok() { return {}; }

  bool is_ok() const noexcept { return code_ == Errc::ok; }
  explicit operator bool() const noexcept { return is_ok(); }
  Errc code() const noexcept { return code_; }
  const std::string& message() const noexcept { return message_; }
  std::string to_string() const {
    return is_ok() ? std::string("ok") : std::string(errc_name(code_)) + ": " + message_;
  }

 private:
  Errc code_ = Errc::ok;
  std::string message_;
};

// A value or the Status that explains why there is none.
template <class T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}         // NOLINT: implicit on purpose
  Result(Status status) : v_(std::move(status)) {}  // NOLINT
  Result(Errc code, std::string message) : v_(Status(code, std::move(message))) {}

  bool has_value() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return has_value(); }
  T& value() & { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  const T& value() const& { return std::get<0>(v_); }
  T* operator->() { return &std::get<0>(v_); }
  T& operator*() & { return std::get<0>(v_); }
  const Status& status() const {
    static const Status kOk;
    return has_value() ? kOk : std::get<1>(v_);
  }

 private:
  std::variant<T, Status> v_;
};

inline const char* errc_name(Errc e) noexcept {
  switch (e) {
    case Errc::ok:
      return "ok";
    case Errc::invalid_argument:
      return "invalid argument";
    case Errc::not_found:
      return "not found";
    case Errc::already_exists:
      return "already exists";
    case Errc::permission_denied:
      return "permission denied";
    case Errc::bad_magic:
      return "bad magic";
    case Errc::abi_mismatch:
      return "ABI version mismatch";
    case Errc::layout_mismatch:
      return "layout mismatch";
    case Errc::kind_mismatch:
      return "queue kind mismatch";
    case Errc::geometry_mismatch:
      return "geometry mismatch";
    case Errc::not_ready:
      return "not ready";
    case Errc::closed:
      return "closed";
    case Errc::creator_dead:
      return "creator dead";
    case Errc::peer_dead:
      return "peer dead";
    case Errc::session_changed:
      return "session changed";
    case Errc::corrupted:
      return "corrupted";
    case Errc::timed_out:
      return "timed out";
    case Errc::would_block:
      return "would block";
    case Errc::system_error:
      return "system error";
  }
  return "unknown";
}

}  // namespace ringwire::core
