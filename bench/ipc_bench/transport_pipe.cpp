// `pipe`: anonymous pipes (pipe2), one per direction, default 64 KiB buffer;
// blocking read() / write().
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "fd_stream.hpp"

namespace ipcb {
namespace {

class Pipe final : public FdStreamTransport {
 public:
  const char* name() const override { return "pipe"; }
  Kind kind() const override { return Kind::kernel; }
  std::string description() const override {
    return "anonymous pipe per direction, blocking write() per message, read() up to 64 KiB";
  }
  std::string prepare(const CellSpec& c) override {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) return std::string("pipe2: ") + std::strerror(errno);
    fds_.b_rx = p[0];
    fds_.a_tx = p[1];
    if (c.workload == Workload::latency) {
      if (::pipe2(p, O_CLOEXEC) != 0) return std::string("pipe2: ") + std::strerror(errno);
      fds_.a_rx = p[0];
      fds_.b_tx = p[1];
    }
    return {};
  }
};

}  // namespace

TransportPtr make_pipe() {
  return std::make_unique<Pipe>();
}

}  // namespace ipcb
