// Thin POSIX file helpers shared by the WAL, snapshot files and the storage front end: every
// failure becomes a Status naming the path and errno, and every fd is owned by a UniqueFd.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>

#include "ringwire/core/status.hpp"

namespace ringwire::kv::storage {

inline core::Status errno_status(const char* what, const std::filesystem::path& p, int err) {
  return {core::Errc::system_error,
          std::string(what) + " " + p.string() + ": " + std::strerror(err)};
}

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

inline core::Result<UniqueFd> open_fd(const std::filesystem::path& p, int flags,
                                      mode_t mode = 0644) {
  int fd;
  do {
    fd = ::open(p.c_str(), flags | O_CLOEXEC, mode);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return errno_status("open", p, errno);
  return UniqueFd(fd);
}

// write() until everything is out: a short write is not an error, just a reason to continue.
inline core::Status write_all(int fd, std::string_view bytes, const std::filesystem::path& p) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_status("write", p, errno);
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return {};
}

inline core::Status fsync_fd(int fd, const std::filesystem::path& p, bool data_only) {
  const int rc = data_only ? ::fdatasync(fd) : ::fsync(fd);
  if (rc != 0) return errno_status(data_only ? "fdatasync" : "fsync", p, errno);
  return {};
}

// A new, renamed or removed directory entry is durable only once the directory is fsynced.
inline core::Status fsync_dir(const std::filesystem::path& dir) {
  auto fd = open_fd(dir, O_RDONLY | O_DIRECTORY);
  if (!fd) return fd.status();
  return fsync_fd(fd->get(), dir, false);
}

// Reads the whole file; `limit` guards the allocation against a file that is not ours.
inline core::Status read_file(const std::filesystem::path& p, std::string* out,
                              std::uint64_t limit = UINT64_MAX) {
  auto fd = open_fd(p, O_RDONLY);
  if (!fd) return fd.status();
  struct stat st {};
  if (::fstat(fd->get(), &st) != 0) return errno_status("fstat", p, errno);
  const auto size = static_cast<std::uint64_t>(st.st_size);
  if (size > limit) {
    return {core::Errc::corrupted, p.string() + ": file of " + std::to_string(size) +
                                       " bytes exceeds the limit of " + std::to_string(limit)};
  }
  out->assign(static_cast<std::size_t>(size), '\0');
  std::size_t got = 0;
  while (got < out->size()) {
    const ssize_t n =
        ::pread(fd->get(), out->data() + got, out->size() - got, static_cast<off_t>(got));
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_status("read", p, errno);
    }
    if (n == 0) break;  // shrank under us; parse what is there
    got += static_cast<std::size_t>(n);
  }
  out->resize(got);
  return {};
}

// Atomic replace: temp file, fsync, rename over the target, fsync the directory. A crash
// leaves either the old file or the new one (plus possibly a stale .tmp), never a mix.
inline core::Status write_file_atomic(const std::filesystem::path& p, std::string_view bytes) {
  std::filesystem::path tmp = p;
  tmp += ".tmp";
  {
    auto fd = open_fd(tmp, O_WRONLY | O_CREAT | O_TRUNC);
    if (!fd) return fd.status();
    if (auto s = write_all(fd->get(), bytes, tmp); !s) return s;
    if (auto s = fsync_fd(fd->get(), tmp, false); !s) return s;
  }
  if (::rename(tmp.c_str(), p.c_str()) != 0) return errno_status("rename", tmp, errno);
  return fsync_dir(p.parent_path());
}

// mkdir that also makes the new entry durable in the parent.
inline core::Status ensure_dir(const std::filesystem::path& dir) {
  if (::mkdir(dir.c_str(), 0755) == 0) return fsync_dir(dir.parent_path());
  if (errno != EEXIST) return errno_status("mkdir", dir, errno);
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) return errno_status("stat", dir, errno);
  if (!S_ISDIR(st.st_mode)) {
    return {core::Errc::invalid_argument, dir.string() + " exists and is not a directory"};
  }
  return {};
}

inline void put_le(std::string& buf, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i)
    buf.push_back(static_cast<char>((v >> (8 * i)) & 0xFFu));
}
inline std::uint64_t get_le(const char* p, int bytes) {
  std::uint64_t v = 0;
  for (int i = 0; i < bytes; ++i)
    v |= static_cast<std::uint64_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  return v;
}

// Bounds-checked little-endian cursor over bytes read from disk.
class Reader {
 public:
  explicit Reader(std::string_view s) : s_(s) {}
  bool u8(std::uint8_t* v) { return take(1, v); }
  bool u32(std::uint32_t* v) { return take(4, v); }
  bool u64(std::uint64_t* v) { return take(8, v); }
  bool bytes(std::size_t n, std::string_view* v) {
    if (n > s_.size()) return false;
    *v = s_.substr(0, n);
    s_.remove_prefix(n);
    return true;
  }
  std::size_t remaining() const { return s_.size(); }

 private:
  template <class T>
  bool take(int n, T* v) {
    if (s_.size() < static_cast<std::size_t>(n)) return false;
    *v = static_cast<T>(get_le(s_.data(), n));
    s_.remove_prefix(static_cast<std::size_t>(n));
    return true;
  }
  std::string_view s_;
};

}  // namespace ringwire::kv::storage
