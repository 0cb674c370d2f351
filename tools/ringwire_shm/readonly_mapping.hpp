// A read-only view of a whole segment for the inspection code. Whatever it
// shows is untrusted: callers bounds-check every offset against size().
#pragma once

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <string>

#include "ringwire/shm/shm_segment.hpp"

namespace ringwire::tools {

class ReadOnlyMapping {
 public:
  explicit ReadOnlyMapping(const std::string& name) {
    auto os = shm::os_name_for(name);
    if (!os) return;
    int fd = ::shm_open(os->c_str(), O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0) return;
    struct stat st {};
    if (::fstat(fd, &st) == 0 &&
        static_cast<std::size_t>(st.st_size) >= sizeof(shm::SegmentHeader)) {
      size_ = static_cast<std::size_t>(st.st_size);
      void* p = ::mmap(nullptr, size_, PROT_READ, MAP_SHARED, fd, 0);
      base_ = p == MAP_FAILED ? nullptr : static_cast<const std::byte*>(p);
    }
    ::close(fd);
  }
  ~ReadOnlyMapping() {
    if (base_ != nullptr) ::munmap(const_cast<std::byte*>(base_), size_);
  }
  ReadOnlyMapping(const ReadOnlyMapping&) = delete;
  ReadOnlyMapping& operator=(const ReadOnlyMapping&) = delete;

  bool ok() const noexcept { return base_ != nullptr; }
  std::size_t size() const noexcept { return size_; }
  const shm::SegmentHeader& header() const noexcept {
    return *reinterpret_cast<const shm::SegmentHeader*>(base_);
  }
  // A T at `offset`, or nullptr when it would not fit inside the mapping.
  template <class T>
  const T* at(std::size_t offset) const noexcept {
    if (base_ == nullptr || offset > size_ || size_ - offset < sizeof(T)) return nullptr;
    return reinterpret_cast<const T*>(base_ + offset);
  }

 private:
  const std::byte* base_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace ringwire::tools
